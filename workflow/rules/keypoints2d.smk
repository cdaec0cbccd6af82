# keypoints2d: every person in every frame of the timeline, from the configured 2D source
# (posepipe.registry.SOURCES2D: detectron2 Keypoint R-CNN on a GPU, or another tool's file).
# With `shard_frames`, the rule below runs once per shard (keypoints2d_shard) and a local rule
# joins the shards into the same keypoints2d.npz (README, Long videos).


KEYPOINTS2D_PARAMS = dict(
    version=STAGE_VERSIONS["keypoints2d"],
    # Only what changes the output: the source's registered options.
    options=keypoints2d_options(),
)
KEYPOINTS2D_JOB = job_rule("keypoints2d", "results/{video}/keypoints2d.npz", unit="frame", option="--frames")


rule:
    name:
        KEYPOINTS2D_JOB.name
    input:
        # weights= (detectron2) or keypoints= (file; left out while the file is missing, so that
        # this video's job fails alone, naming it).
        unpack(keypoints2d_inputs),
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
    output:
        KEYPOINTS2D_JOB.output,
    params:
        **KEYPOINTS2D_PARAMS,
        # --weights FILE or --input FILE (derived from the inputs, which Snakemake tracks itself).
        source=keypoints2d_source_option,
        speed=untracked_options(
            launcher=keypoints2d_launcher(),
            batch_size=config["keypoints2d"]["batch_size"],
            device=config["keypoints2d"]["device"],
        ),
    log:
        KEYPOINTS2D_JOB.log,
    benchmark:
        KEYPOINTS2D_JOB.benchmark
    threads: 4
    resources:
        mem_mb=8000,
        gpu=1 if SOURCE2D_GPU else 0,
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "{params.speed[launcher]} python -m posepipe keypoints2d {input.timeline:q} --out {output:q} {params.options}"
        f" {{params.source}}{KEYPOINTS2D_JOB.part}"
        " --batch-size {params.speed[batch_size]} --device {params.speed[device]} > {log:q} 2>&1"


if config["shard_frames"]:

    # The file the unsharded rule writes, with the same arrays. Its inputs are the shard files
    # listed in shards.json, which changing the shard size does not remake: a finished
    # keypoints2d.npz stays up to date (README, Long videos).
    rule keypoints2d:
        input:
            shards=keypoints2d_shard_files,
            timeline="results/{video}/frames/timeline.json",
            timeline_table=TIMELINE_TABLE,
        output:
            "results/{video}/keypoints2d.npz",
        params:
            **KEYPOINTS2D_PARAMS,
        log:
            "results/{video}/logs/keypoints2d.log",
        benchmark:
            "results/{video}/benchmarks/keypoints2d.tsv"
        localrule: True
        shell:
            "python -m posepipe keypoints2d-gather {input.shards:q} --timeline {input.timeline:q} --out {output:q}"
            " > {log:q} 2>&1"
