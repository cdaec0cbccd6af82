# posepipe: a folder of videos -> frame timelines -> 2D keypoints -> 3D poses -> rendered videos.
# Run: snakemake --cores all --resources gpu=1   (or --profile profiles/workstation / profiles/slurm)
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.27.1")


def yaml_syntax_check(path):
    """Stop on a YAML syntax error in ``path`` with its line and column (Snakemake's own loader
    says only "not valid JSON or YAML"). A --configfile is read by Snakemake before this file runs,
    so this covers the default config.yaml only."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
        raise WorkflowError(f"{path}{where}: YAML syntax error: {problem}") from None


def schema_problem(data, schema):
    """(key path, reason) of the first way ``data`` breaks the JSON schema file ``schema``, else
    None. Defaults from the schema are filled into ``data``."""
    try:
        validate(data, schema, set_default=True)
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__  # the jsonschema ValidationError
        if not (hasattr(cause, "absolute_path") and hasattr(cause, "message")):
            raise
        return ".".join(str(part) for part in cause.absolute_path) or "(top level)", cause.message
    return None


# Defaults beside this file; a --configfile or --config given on the command line overrides them.
yaml_syntax_check(os.path.join(workflow.basedir, "config.yaml"))


configfile: os.path.join(workflow.basedir, "config.yaml")


# One short line naming the key and the reason (not the whole schema).
if problem := schema_problem(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")):
    raise WorkflowError(f"config {problem[0]}: {problem[1]} (see workflow/schemas/config.schema.yaml)")


report: "workflow/report/workflow.rst"


# GPU counts are per job (per node) on a cluster, and cap concurrent GPU jobs on a workstation.
resource_scopes:
    gpu="local",


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/keypoints2d.smk"
include: "workflow/rules/tracks.smk"
include: "workflow/rules/dataset2d.smk"
include: "workflow/rules/lift3d.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/exports.smk"


rule all:
    input:
        final_targets,
    default_target: True
