# tracks: link each video's detections into person tracks (person: main or all). Reads only
# keypoints2d.npz and the timeline's fps, so imported keypoints work too; seconds of CPU work.


def tracks_options():
    """The linker's settings as options; an unset max_lost_frames (one second) is omitted."""
    cfg = config["tracks"]
    options = [
        f"--iou-weight {cfg['iou_weight']}",
        f"--max-cost {cfg['max_cost']}",
        f"--min-track-frames {cfg['min_track_frames']}",
        f"--keypoint-score {cfg['keypoint_score']}",
        "--velocity" if cfg["velocity"] else "--no-velocity",
    ]
    if cfg["max_lost_frames"] is not None:
        options.append(f"--max-lost-frames {cfg['max_lost_frames']}")
    return " ".join(options)


rule tracks:
    input:
        keypoints2d="results/{video}/keypoints2d.npz",
        timeline="results/{video}/frames/timeline.json",
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
        "lift"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe tracks {input.keypoints2d:q} --timeline {input.timeline:q} --out {output:q}"
        " {params.options} > {log:q} 2>&1"
