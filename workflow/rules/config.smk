# The configuration: the defaults beside the Snakefile, then --configfile / --config; a YAML
# syntax error or a schema violation stops the run with one line naming the key and the reason.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The posepipe package lives beside the Snakefile; jobs (local or on a cluster) import it from there.
sys.path.insert(0, workflow.basedir)

from posepipe.settings import yaml_problem


def yaml_syntax_check(path):
    """Stop on a YAML syntax error in ``path`` with its line and column (Snakemake's own loader
    says only "not valid JSON or YAML"). A --configfile is read by Snakemake before this file runs:
    `python -m posepipe check-config FILE` names the line of an error there."""
    if problem := yaml_problem(path):
        raise WorkflowError(problem)


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
