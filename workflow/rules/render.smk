# render: the timeline's frames with the 2D skeleton beside the 3D skeleton, H.264 (posepipe.render);
# preview: a short GIF of it.


rule render:
    input:
        timeline="results/{video}/frames/timeline.json",
        dataset2d="results/{video}/dataset2d.npz",
        pose3d="results/{video}/pose3d.npz",
    output:
        report(
            "results/{video}/render.mp4",
            caption="../report/render.rst",
            category="Renders",
            labels={"video": "{video}"},
        ),
    params:
        version=STAGE_VERSIONS["render"],
        height=config["render"]["height"],
        layout=config["render"]["layout"],
        azimuth=config["render"]["azimuth"],
        elevation=config["render"]["elevation"],
        # Unset (null) is an omitted option.
        max_frames=(
            f"--max-frames {config['render']['max_frames']}" if config["render"]["max_frames"] is not None else ""
        ),
        every=config["render"]["every"],
        crf=config["render"]["crf"],
        preset=config["render"]["preset"],
        audio="--audio" if config["render"]["audio"] else "--no-audio",
    log:
        "results/{video}/logs/render.log",
    benchmark:
        "results/{video}/benchmarks/render.tsv"
    threads: 4
    resources:
        mem_mb=3000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe render {input.timeline:q} --dataset2d {input.dataset2d:q} --pose3d {input.pose3d:q}"
        " --out {output:q} --height {params.height} --layout {params.layout}"
        " --azimuth {params.azimuth} --elevation {params.elevation} {params.max_frames}"
        " --every {params.every} --crf {params.crf} --preset {params.preset} {params.audio} --threads {threads} > {log:q} 2>&1"


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
