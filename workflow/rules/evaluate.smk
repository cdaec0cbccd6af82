# evaluate: each video that has a reference recording (sample-sheet column `reference`, or
# <stem>.reference.c3d / .trc / .npz beside the video) against it: results/{video}/evaluate/, and
# the run-wide results/evaluate_summary.csv / evaluate_intervals.csv / .html. Seconds of CPU work.
# Videos without a reference have no evaluate job; evaluate.enabled: false turns it off.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        json="results/{video}/evaluate/metrics.json",
        joints="results/{video}/evaluate/per_joint.csv",
        frames="results/{video}/evaluate/per_frame.csv",
        figure=report(
            "results/{video}/evaluate/evaluate.png",
            caption="../report/evaluate_figure.rst",
            category="Validation",
            labels={"video": "{video}"},
        ),
        page=report(
            "results/{video}/evaluate/evaluate.html",
            caption="../report/evaluate_table.rst",
            category="Validation",
            labels={"video": "{video}", "table": "per video"},
        ),
    params:
        version=STAGE_VERSIONS["evaluate"],
        reference=evaluate_reference,
        offset=evaluate_offset,
        options=EVALUATE_OPTIONS,
    log:
        "results/{video}/logs/evaluate.log",
    benchmark:
        "results/{video}/benchmarks/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe evaluate {input.pose3d:q} --timeline {input.timeline:q} {params.reference}"
        f" --out-dir {EVALUATE_OUT_DIR} --video-id {{wildcards.video}} {{params.offset}} {{params.options}}"
        " > {log:q} 2>&1"


localrules:
    evaluate_summary,


rule evaluate_summary:
    input:
        lambda wildcards: [f"results/{video}/evaluate/metrics.json" for video in run_videos() if video in EVALUATED],
    output:
        csv="results/evaluate_summary.csv",
        intervals="results/evaluate_intervals.csv",
        html=report("results/evaluate_summary.html", caption="../report/evaluate_summary.rst", category="Validation"),
    log:
        "results/logs/evaluate_summary.log",
    threads: 1
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe evaluate-summary {input:q} --out {output.csv:q} --intervals {output.intervals:q}"
        " --html {output.html:q} > {log:q} 2>&1"
