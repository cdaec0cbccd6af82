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
        # Only what changes the output: detector settings under detectron2, the threshold for both.
        options=keypoints2d_options(),
        launcher=untracked(keypoints2d_launcher()),
        batch_size=untracked(config["keypoints2d"]["batch_size"]),
        device=untracked(config["keypoints2d"]["device"]),
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
        "{params.launcher} python -m posepipe keypoints2d {input.timeline:q} --out {output:q} {params.options}"
        " {input.source:q} --batch-size {params.batch_size} --device {params.device} > {log:q} 2>&1"
