# world: every person in metres on one floor, in one world frame (posepipe.world): the camera from
# a calibration file, the sample sheet, the config or an assumed field of view; the root trajectory,
# metric scale from heights, floor, foot contacts. Seconds of CPU work per video.

rule world:
    input:
        unpack(world_inputs),
        pose3d="results/{video}/pose3d.npz",
        dataset2d="results/{video}/dataset2d.npz",
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
    output:
        npz="results/{video}/world.npz",
        csv="results/{video}/world.csv",
    params:
        version=STAGE_VERSIONS["world"],
        options=world_options,
    log:
        "results/{video}/logs/world.log",
    benchmark:
        "results/{video}/benchmarks/world.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe world {input.pose3d:q} --dataset2d {input.dataset2d:q} --timeline {input.timeline:q}"
        " --out {output.npz:q} --csv {output.csv:q} {params.options} > {log:q} 2>&1"
