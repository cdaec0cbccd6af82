# lift3d: the temporal CNN lifts dataset2d.npz to 3D Human3.6M joints (per person and segment
# with person: main / all). On a cluster tracks and dataset2d (seconds, CPU) ride in the lift3d
# job (group "lift") instead of queueing alone.


rule lift3d:
    input:
        dataset2d="results/{video}/dataset2d.npz",
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
        checkpoint=lifter_checkpoint(),
    output:
        npz="results/{video}/pose3d.npz",
        csv="results/{video}/pose3d.csv",
    params:
        version=STAGE_VERSIONS["lift3d"],
        causal=command_options(config["lift3d"], ["causal"]),
        flip=command_options(config["lift3d"], ["flip_augmentation"], flags={"flip_augmentation": "--flip"}),
        # Unset (null) is an omitted option.
        model_fps=command_options(config["lift3d"], ["model_fps"]),
        # Speed only: not tracked, so changing them re-runs nothing.
        speed=untracked_options(device=config["lift3d"]["device"], window=config["lift3d"]["window"], gpu_ids=gpu_ids()),
    log:
        "results/{video}/logs/lift3d.log",
    benchmark:
        "results/{video}/benchmarks/lift3d.tsv"
    group:
        job_group("lift")
    threads: threads_by_length(1, 2)
    resources:
        mem_mb=4000,
        gpu=1,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe with-gpu --ids {params.speed[gpu_ids]} --"
        " python -m posepipe lift3d {input.dataset2d:q} --checkpoint {input.checkpoint:q}"
        " --timeline {input.timeline:q} --out {output.npz:q} --csv {output.csv:q}"
        " {params.causal} {params.flip} {params.model_fps} --device {params.speed[device]} --window {params.speed[window]} > {log:q} 2>&1"
