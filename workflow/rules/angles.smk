# angles: 3D joint angles of every person per frame after the ISB conventions (posepipe.angles;
# README, Joint angles), from world.npz when the world stage is in the workflow, else pose3d.npz
# (camera frame). Seconds of CPU work; writes only new files.


rule angles:
    input:
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
        joints=angles_joints_file,
    output:
        npz="results/{video}/angles.npz",
        csv="results/{video}/angles.csv",
        summary="results/{video}/angles_summary.csv",
        **ANGLES_FIGURE,
    params:
        version=STAGE_VERSIONS["angles"],
        source=lambda wildcards, input: f"--{angles_source()} {shlex.quote(input.joints)}",
        options=command_options(config["angles"], ["figure"]),
    log:
        "results/{video}/logs/angles.log",
    benchmark:
        "results/{video}/benchmarks/angles.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        f"python -m posepipe angles {{input.timeline:q}} {{params.source}} --out-dir {ANGLES_OUT_DIR}"
        " {params.options} > {log:q} 2>&1"
