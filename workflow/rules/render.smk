# render: the timeline's frames with the 2D skeleton beside the 3D skeleton, H.264 (posepipe.render);
# preview: a short GIF of it.


RENDER_PARAMS = dict(
    version=STAGE_VERSIONS["render"],
    # One string of the options that decide the pixels; unset (null) is an omitted option.
    options=" ".join(
        [
            f"--height {config['render']['height']} --layout {config['render']['layout']}",
            f"--azimuth {config['render']['azimuth']} --elevation {config['render']['elevation']}",
            f"--max-frames {config['render']['max_frames']}" if config["render"]["max_frames"] is not None else "",
            f"--every {config['render']['every']} --crf {config['render']['crf']} --preset {config['render']['preset']}",
            "--audio" if config["render"]["audio"] else "--no-audio",
        ]
    ),
)
RENDER_INPUT = dict(
    timeline="results/{video}/frames/timeline.json",
    dataset2d="results/{video}/dataset2d.npz",
    pose3d="results/{video}/pose3d.npz",
)
RENDER_INPUT["video"] = staged_video  # an object in a bucket, staged again (README, Object storage)
RENDER_INPUT["timeline_table"] = TIMELINE_TABLE
# render.frame: world: the 3D panel in the world stage's frame (at the default, today's command).
if config["render"]["frame"] == "world":
    RENDER_INPUT["world"] = "results/{video}/world.npz"
RENDER_WORLD = " --world {input.world:q}" if config["render"]["frame"] == "world" else ""
RENDER_OUTPUT = report(
    "results/{video}/render.mp4", caption="../report/render.rst", category="Renders", labels={"video": "{video}"}
)


# With `shard_frames`, the rule below renders one shard's output frames (render_shard) and a local
# rule joins the segments into the same render.mp4 (README, Long videos).
RENDER_JOB = job_rule("render", RENDER_OUTPUT, unit="out", option="--segment")


rule:
    name:
        RENDER_JOB.name
    input:
        **RENDER_INPUT,
    output:
        RENDER_JOB.output,
    params:
        **RENDER_PARAMS,
    log:
        RENDER_JOB.log,
    benchmark:
        RENDER_JOB.benchmark
    # A whole render of < 96 frames is one part anyway; a shard is a long video's part.
    threads: 4 if config["shard_frames"] else threads_by_length(1, 4, frames=96)
    resources:
        mem_mb=3000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe render {input.timeline:q} --dataset2d {input.dataset2d:q} --pose3d {input.pose3d:q}"
        " --out {output:q} {params.options}"
        f"{RENDER_JOB.part} --threads {{threads}}{RENDER_WORLD} > {{log:q}} 2>&1"


if config["shard_frames"]:

    rule render:
        input:
            segments=render_segment_files,
            timeline="results/{video}/frames/timeline.json",
            timeline_table=TIMELINE_TABLE,
        output:
            RENDER_OUTPUT,
        params:
            **RENDER_PARAMS,
        log:
            "results/{video}/logs/render.log",
        benchmark:
            "results/{video}/benchmarks/render.tsv"
        localrule: True  # a stream copy of the segments: seconds, no queue
        conda:
            "../../envs/posepipe.yaml"
        shell:
            "python -m posepipe render-join {input.segments:q} --timeline {input.timeline:q} --out {output:q}"
            " > {log:q} 2>&1"


rule preview:
    input:
        "results/{video}/render.mp4",
    output:
        gif="results/{video}/preview.gif",
        # The report shows HTML and PNG inline but offers a GIF only as a download: a page shows it.
        html=report(
            "results/{video}/preview.html",
            caption="../report/preview.rst",
            category="Previews",
            labels={"video": "{video}"},
        ),
    log:
        "results/{video}/logs/preview.log",
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe render-preview {input:q} --out {output.gif:q} --html {output.html:q} > {log:q} 2>&1"
