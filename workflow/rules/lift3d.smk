# dataset2d: one person per frame, gaps interpolated, in the VideoPose3D custom format;
# lift3d: the temporal CNN lifts it to 3D Human3.6M joints. On a cluster dataset2d (seconds, CPU)
# rides in the lift3d job (group "lift") instead of queueing alone; the merge runs locally.


localrules:
    merge_dataset2d,


rule dataset2d:
    input:
        "results/{video}/keypoints2d.npz",
    output:
        "results/{video}/dataset2d.npz",
    params:
        version=STAGE_VERSIONS["dataset2d"],
        selection=config["dataset2d"]["selection"],
    log:
        "results/{video}/logs/dataset2d.log",
    benchmark:
        "results/{video}/benchmarks/dataset2d.tsv"
    group:
        "lift"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe dataset2d {input:q} --out {output:q} --video-id {wildcards.video}"
        " --selection {params.selection} > {log:q} 2>&1"


rule merge_dataset2d:
    input:
        expand("results/{video}/dataset2d.npz", video=VIDEOS),
    output:
        "results/dataset2d_custom.npz",
    log:
        "results/logs/merge_dataset2d.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe merge-dataset2d {input:q} --out {output:q} > {log:q} 2>&1"


rule lift3d:
    input:
        dataset2d="results/{video}/dataset2d.npz",
        timeline="results/{video}/frames/timeline.json",
        checkpoint=lifter_checkpoint(),
    output:
        npz="results/{video}/pose3d.npz",
        csv="results/{video}/pose3d.csv",
    params:
        version=STAGE_VERSIONS["lift3d"],
        causal="--causal" if config["lift3d"]["causal"] else "--no-causal",
        flip="--flip" if config["lift3d"]["flip_augmentation"] else "--no-flip",
        device=untracked(config["lift3d"]["device"]),
        window=untracked(config["lift3d"]["window"]),
        gpu_ids=untracked(gpu_ids()),
    log:
        "results/{video}/logs/lift3d.log",
    benchmark:
        "results/{video}/benchmarks/lift3d.tsv"
    group:
        "lift"
    threads: 2
    resources:
        mem_mb=4000,
        gpu=1,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe with-gpu --ids {params.gpu_ids} --"
        " python -m posepipe lift3d {input.dataset2d:q} --checkpoint {input.checkpoint:q}"
        " --timeline {input.timeline:q} --out {output.npz:q} --csv {output.csv:q}"
        " {params.causal} {params.flip} --device {params.device} --window {params.window} > {log:q} 2>&1"
