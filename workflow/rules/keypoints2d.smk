# keypoints2d: every person in every frame of the timeline, detected by detectron2 Keypoint R-CNN
# (GPU) or imported from another tool's file.


rule keypoints2d:
    input:
        timeline="results/{video}/frames/timeline.json",
        source=keypoints2d_input,
    output:
        "results/{video}/keypoints2d.npz",
    params:
        version=STAGE_VERSIONS["keypoints2d"],
        source=config["keypoints2d"]["source"],
        source_flag="--weights" if config["keypoints2d"]["source"] == "detectron2" else "--input",
        model=config["keypoints2d"]["model"],
        score_threshold=config["keypoints2d"]["score_threshold"],
        min_size=config["keypoints2d"]["min_size"],
        max_size=config["keypoints2d"]["max_size"],
        amp="--amp" if config["keypoints2d"]["amp"] else "--no-amp",
        batch_size=config["keypoints2d"]["batch_size"],
        device=config["keypoints2d"]["device"],
        gpu_ids=gpu_ids(),
    log:
        "results/{video}/logs/keypoints2d.log",
    benchmark:
        "results/{video}/benchmarks/keypoints2d.tsv"
    threads: 4
    resources:
        mem_mb=8000,
        gpu=1 if config["keypoints2d"]["source"] == "detectron2" else 0,
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m posepipe with-gpu --ids {params.gpu_ids} --"
        " python -m posepipe keypoints2d {input.timeline:q} --out {output:q}"
        " --source {params.source} {params.source_flag} {input.source:q}"
        " --config {params.model:q} --score-threshold {params.score_threshold}"
        " --min-size {params.min_size} --max-size {params.max_size} {params.amp}"
        " --batch-size {params.batch_size} --device {params.device} > {log:q} 2>&1"
