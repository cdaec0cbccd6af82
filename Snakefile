# posepipe: a folder of videos -> frame timelines -> 2D keypoints -> 3D poses -> rendered videos.
# Run: snakemake --cores all --resources gpu=1   (or --profile profiles/workstation / profiles/slurm)
from snakemake.utils import min_version

min_version("9.27.1")


include: "workflow/rules/config.smk"


report: "workflow/report/workflow.rst"


# GPU counts are per job (per node) on a cluster, and cap concurrent GPU jobs on a workstation.
resource_scopes:
    gpu="local",


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/keypoints2d.smk"
include: "workflow/rules/tracks.smk"
include: "workflow/rules/dataset2d.smk"
include: "workflow/rules/lift3d.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/warm.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/exports.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/angles.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/opensim.smk"


rule all:
    input:
        final_targets,
    default_target: True
