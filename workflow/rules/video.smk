# probe: stream facts, every frame's timestamp and the damage record (frames promised, decoded,
# decode errors); frames: the constant-rate frame timeline, and the verdict on that damage
# (a warning in timeline.json, or a failure with frames.strict).
# On a cluster both run as one job per video (group "timeline"): seconds of work each, which
# should not pay two queue waits.


rule probe:
    input:
        video_input,
    output:
        json="results/{video}/probe.json",
        pts="results/{video}/probe_pts.npy",
    params:
        version=STAGE_VERSIONS["probe"],
        video=video_argument,
    log:
        "results/{video}/logs/probe.log",
    benchmark:
        "results/{video}/benchmarks/probe.tsv"
    group:
        job_group("timeline")
    threads: 2
    resources:
        mem_mb=1000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe probe {params.video:q} --out {output.json:q} --pts {output.pts:q} > {log:q} 2>&1"


rule frames:
    input:
        json="results/{video}/probe.json",
        pts="results/{video}/probe_pts.npy",
    output:
        json="results/{video}/frames/timeline.json",
        csv="results/{video}/frames/timeline.csv",
    params:
        version=STAGE_VERSIONS["frames"],
        options=frames_options,
        max_lost_share=config["frames"]["max_lost_share"],
        strict="--strict" if config["frames"]["strict"] else "--no-strict",
    log:
        "results/{video}/logs/frames.log",
    benchmark:
        "results/{video}/benchmarks/frames.tsv"
    group:
        job_group("timeline")
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe frames {input.json:q} --pts {input.pts:q} --video-id {wildcards.video}"
        " --out {output.json:q} --csv {output.csv:q}"
        " {params.options}"
        " --max-lost-share {params.max_lost_share} {params.strict} > {log:q} 2>&1"


rule frames_jpeg:
    input:
        "results/{video}/frames/timeline.json",
    output:
        directory("results/{video}/frames/jpeg"),
    params:
        quality=config["frames"]["jpeg_quality"],
    log:
        "results/{video}/logs/frames_jpeg.log",
    threads: 2
    resources:
        mem_mb=1000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe frames-jpeg {input:q} --out {output:q} --quality {params.quality} > {log:q} 2>&1"
