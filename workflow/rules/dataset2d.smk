# dataset2d: the VideoPose3D custom 2D dataset of each video: one person per frame with gaps
# interpolated (person: top_score, upstream), or one sequence per person track (main / all);
# merge_dataset2d joins every video's subjects into one file, as upstream does for a folder.


FILTER_KEYS = {
    "none": (),
    "butterworth": ("butterworth_cutoff_hz", "butterworth_order"),
    "savgol": ("savgol_window", "savgol_order"),
    "one_euro": ("one_euro_min_cutoff", "one_euro_beta", "one_euro_d_cutoff"),
}


def dataset2d_input(wildcards):
    """keypoints2d.npz; tracks.npz when people are followed by track; the timeline when a filter
    needs the frame rate."""
    inputs = {"keypoints2d": f"results/{wildcards.video}/keypoints2d.npz"}
    if config["person"] != "top_score":
        inputs["tracks"] = f"results/{wildcards.video}/tracks.npz"
    if config["dataset2d"]["filter"] != "none":
        inputs["timeline"] = f"results/{wildcards.video}/frames/timeline.json"
    return inputs


def dataset2d_options():
    """Options that are set: the gap setting and the conditioning (only the chosen filter's keys,
    so tuning another filter re-runs nothing)."""
    cfg = config["dataset2d"]
    options = []
    if cfg["max_gap_frames"] is not None:
        options.append(f"--max-gap-frames {cfg['max_gap_frames']}")
    if cfg["joint_score_threshold"] is not None:
        options.append(f"--joint-score-threshold {cfg['joint_score_threshold']}")
    if cfg["filter"] != "none":
        options.append(f"--filter {cfg['filter']}")
        options += [f"--{key.replace('_', '-')} {cfg[key]}" for key in FILTER_KEYS[cfg["filter"]]]
    return " ".join(options)


def dataset2d_files(wildcards, input):
    """The optional input files as options."""
    keys = input.keys()
    return " ".join(f"--{name} {shlex.quote(getattr(input, name))}" for name in ("tracks", "timeline") if name in keys)


localrules:
    merge_dataset2d,


rule dataset2d:
    input:
        unpack(dataset2d_input),
    output:
        "results/{video}/dataset2d.npz",
    params:
        version=STAGE_VERSIONS["dataset2d"],
        selection=config["dataset2d"]["selection"],
        person=config["person"],
        options=dataset2d_options(),
        files=dataset2d_files,
    log:
        "results/{video}/logs/dataset2d.log",
    benchmark:
        "results/{video}/benchmarks/dataset2d.tsv"
    group:
        "lift"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe dataset2d {input.keypoints2d:q} --out {output:q} --video-id {wildcards.video}"
        " --selection {params.selection} --person {params.person} {params.options} {params.files} > {log:q} 2>&1"


rule merge_dataset2d:
    input:
        expand("results/{video}/dataset2d.npz", video=VIDEOS),
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


