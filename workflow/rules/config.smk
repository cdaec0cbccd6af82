# The configuration: the defaults beside the Snakefile, then --configfile / --config; a YAML
# syntax error or a schema violation stops the run with one line naming the key and the reason.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

# The posepipe package lives beside the Snakefile; jobs (local or on a cluster) import it from there.
sys.path.insert(0, workflow.basedir)

from posepipe.settings import schema_error, typed_overrides, yaml_problem


def yaml_syntax_check(path):
    """Stop on a YAML syntax error in ``path`` with its line and column (Snakemake's own loader
    says only "not valid JSON or YAML"). A --configfile is read by Snakemake before this file runs:
    `python -m posepipe check-config FILE` names the line of an error there."""
    if problem := yaml_problem(path):
        raise WorkflowError(problem)


def schema_problem(data, schema):
    """(key path, reason) of the first way ``data`` breaks the JSON schema file ``schema``, else
    None; for an unknown key the reason names the nearest known ones. Defaults from the schema are
    filled into ``data``."""
    try:
        validate(data, schema, set_default=True)
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__  # the jsonschema ValidationError
        if not (hasattr(cause, "absolute_path") and hasattr(cause, "message")):
            raise
        return schema_error(cause)
    return None


# Defaults beside this file; a --configfile or --config given on the command line overrides them.
yaml_syntax_check(os.path.join(workflow.basedir, "config.yaml"))


configfile: os.path.join(workflow.basedir, "config.yaml")


# `--config frames='{fps: 50}'`: Snakemake reads nested values as strings; give them the schema's types.
update_config(config, typed_overrides(workflow.config_settings.config or {}))

# One short line naming the key and the reason (not the whole schema).
if problem := schema_problem(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")):
    raise WorkflowError(f"config {problem[0]}: {problem[1]} (see workflow/schemas/config.schema.yaml)")
