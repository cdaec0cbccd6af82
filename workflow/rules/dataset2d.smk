# dataset2d: the VideoPose3D custom 2D dataset of each video: one person per frame with gaps
# interpolated (person: top_score, upstream), or one sequence per person track (main / all);
# merge_dataset2d joins every video's subjects into one file, as upstream does for a folder.


localrules:
    merge_dataset2d,


rule dataset2d:
    input:
        unpack(dataset2d_undistort),
        **DATASET2D_INPUT,
    output:
        "results/{video}/dataset2d.npz",
    params:
        version=STAGE_VERSIONS["dataset2d"],
        selection=config["dataset2d"]["selection"],
        person=config["person"],
        options=dataset2d_options(),
        files=DATASET2D_FILES,
        # dataset2d.undistort only: at its default the command and params are today's (nothing re-runs).
        **({"undistort": dataset2d_undistort_options} if config["dataset2d"]["undistort"] else {}),
    log:
        "results/{video}/logs/dataset2d.log",
    benchmark:
        "results/{video}/benchmarks/dataset2d.tsv"
    group:
        job_group("lift")
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe dataset2d {input.keypoints2d:q} --out {output:q} --video-id {wildcards.video}"
        " --selection {params.selection} --person {params.person} {params.options} {params.files}"
        + (" {params.undistort}" if config["dataset2d"]["undistort"] else "")
        + " > {log:q} 2>&1"


# After a run where some videos failed before this, onerror writes the file from the others
# (workflow/rules/summary.smk).
rule merge_dataset2d:
    input:
        lambda wildcards: expand("results/{video}/dataset2d.npz", video=run_videos()),
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
