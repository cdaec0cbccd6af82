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
# export.bvh_source: opensim: the bvh job reads the opensim stage's folder (other formats as before).
EXPORT_OPENSIM, EXPORT_PARAMS = {}, {}
if config["export"]["bvh_source"] == "opensim":
    if not config["opensim"]["enabled"]:
        raise WorkflowError("export.bvh_source: opensim needs the opensim stage (opensim.enabled: true)")
    if OPENSIM_RUNS:
        EXPORT_OPENSIM = {"opensim": lambda wildcards: f"results/{wildcards.video}/opensim" if wildcards.format == "bvh" else []}
        EXPORT_PARAMS = {"bvh_source": lambda wildcards, input: f" --bvh-source opensim --opensim {shlex.quote(input.opensim)}" if input.opensim else ""}
        EXPORT_OPTIONS += "{params.bvh_source}"
    elif workflow.is_main_process:
        logger.warning("posepipe: export.bvh_source: opensim, but the opensim stage is skipped: BVH files from lift3d")


rule export:
    input:
        pose3d="results/{video}/pose3d.npz",
        timeline="results/{video}/frames/timeline.json",
        timeline_table=TIMELINE_TABLE,
        **EXPORT_WORLD,
        **EXPORT_OPENSIM,
    output:
        directory("results/{video}/exports/{format}"),
    params:
        version=STAGE_VERSIONS["export"],
        **EXPORT_PARAMS,
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
