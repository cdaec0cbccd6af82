# qc: quality numbers, a per-joint table and a figure per video (results/{video}/qc/), and the
# folder-wide QC table for the report. Seconds of CPU work; reads the stages' own files.


rule qc:
    input:
        **QC_INPUT,
        angles=QC_ANGLES_FIGURE,
        opensim=QC_OPENSIM,
    output:
        json="results/{video}/qc/qc.json",
        table="results/{video}/qc/qc_joints.csv",
        page=report(
            "results/{video}/qc/qc.html",
            caption="../report/qc_table.rst",
            category="QC tables",
            labels={"video": "{video}"},
        ),
        figure=report(
            "results/{video}/qc/qc.png",
            caption="../report/qc_figure.rst",
            category="QC figures",
            labels={"video": "{video}"},
        ),
    params:
        version=STAGE_VERSIONS["qc"],
        tracks=QC_TRACKS,
        thresholds=command_options(config["qc"], config["qc"]),
        # qc.html links the render's preview (written beside it later, by the preview rule).
        preview="--preview ../preview.gif" if config["render"]["enabled"] and config["render"]["preview"] else "",
        # ...and the opensim stage's IK marker errors when it runs (one option string: a default run's
        # command and params stay as they were).
        angles=lambda wildcards, input: qc_angles_opensim_options(input),
        # ...and, for a video with a reference recording, the evaluate stage's figure (written later).
        evaluation=lambda wildcards: "--evaluation ../evaluate/evaluate.png" if wildcards.video in EVALUATED else "",
    log:
        "results/{video}/logs/qc.log",
    benchmark:
        "results/{video}/benchmarks/qc.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe qc {input.timeline:q} --keypoints2d {input.keypoints2d:q} --dataset2d {input.dataset2d:q}"
        f" --pose3d {{input.pose3d:q}} {{params.tracks}} --world {{input.world:q}} --out-dir {QC_OUT_DIR} {{params.thresholds}}"
        " {params.preview} {params.angles} {params.evaluation} --benchmarks {input.benchmarks:q}"
        " > {log:q} 2>&1"


localrules:
    qc_summary,


# Needs every video's QC; after a run where some failed, the workflow's onerror handler writes
# these two files from the videos that completed, naming the others (workflow/rules/summary.smk).
rule qc_summary:
    input:
        lambda wildcards: expand("results/{video}/qc/qc.json", video=run_videos()),
        lambda wildcards: (
            expand("results/{video}/render.mp4", video=run_videos()) if config["render"]["enabled"] else []
        ),
    output:
        csv="results/qc_summary.csv",
        html=report("results/qc_summary.html", caption="../report/qc_summary.rst", category="Summary"),
    params:
        videos=" ".join(VIDEOS),
        stages=" ".join(f"--stage {stage}" for stage in SUMMARY_STAGES),
    log:
        "results/logs/qc_summary.log",
    threads: 1
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe summary {params.videos} {params.stages} --out {output.csv:q} --html {output.html:q}"
        " > {log:q} 2>&1"
