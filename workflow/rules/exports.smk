# export: the 3D motion of every person in one format per job (results/{video}/exports/{format}/),
# so that adding a format to `exports:` runs only the new jobs.


wildcard_constraints:
    format="|".join(EXPORT_FORMATS),

# Options of the export command that are not at their default, written into the command itself
# (not a param): the default command is today's, so finished exports stay up to date.
EXPORT_OPTIONS = "" if config["export"]["bvh_start"] == "person" else f" --bvh-start {config['export']['bvh_start']}"
# export.frame: world reads the world stage's file (and re-runs when it changes).
EXPORT_WORLD = {"world": "results/{video}/world.npz"} if config["export"]["frame"] == "world" else {}
if EXPORT_WORLD:
    EXPORT_OPTIONS += " --frame world --world {input.world:q}"


rule export:
    input:
        pose3d="results/{video}/pose3d.npz",
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
        **EXPORT_WORLD,
    output:
        directory("results/{video}/exports/{format}"),
    params:
        version=STAGE_VERSIONS["export"],
    log:
        "results/{video}/logs/export_{format}.log",
    benchmark:
        "results/{video}/benchmarks/export_{format}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe export {input.pose3d:q} --format {wildcards.format} --out-dir {output:q}"
        f" --video-id {{wildcards.video}} --timeline {{input.timeline:q}}{EXPORT_OPTIONS} > {{log:q}} 2>&1"
