# keypoints2d: every person in every frame of the timeline, detected by detectron2 Keypoint R-CNN
# (GPU) or imported from another tool's file.


rule keypoints2d:
    input:
        # weights= (detectron2) or keypoints= (file; left out while the file is missing, so that
        # this video's job fails alone, naming it).
        unpack(keypoints2d_inputs),
        timeline="results/{video}/frames/timeline.json",
    output:
        "results/{video}/keypoints2d.npz",
    params:
        version=STAGE_VERSIONS["keypoints2d"],
        # Only what changes the output: detector settings under detectron2, the threshold for both.
        options=keypoints2d_options(),
        # --weights FILE or --input FILE (derived from the inputs, which Snakemake tracks itself).
        source=keypoints2d_source_option,
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
        " {params.source} --batch-size {params.batch_size} --device {params.device} > {log:q} 2>&1"
