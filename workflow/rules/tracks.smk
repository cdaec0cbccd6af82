# tracks: link each video's detections into person tracks (person: main or all). Reads only
# keypoints2d.npz and the timeline's fps, so imported keypoints work too; seconds of CPU work.


rule tracks:
    input:
        keypoints2d="results/{video}/keypoints2d.npz",
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
    output:
        "results/{video}/tracks.npz",
    params:
        version=STAGE_VERSIONS["tracks"],
        options=tracks_options(),
    log:
        "results/{video}/logs/tracks.log",
    benchmark:
        "results/{video}/benchmarks/tracks.tsv"
    group:
        job_group("lift")
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe tracks {input.keypoints2d:q} --timeline {input.timeline:q} --out {output:q}"
        " {params.options} > {log:q} 2>&1"
