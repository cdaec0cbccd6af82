"""Environment for the workflow's jobs (called from workflow/rules/common.smk)."""

from __future__ import annotations

import os
import sys


def prepare_job_environment(workflow_dir: str, *, conda: bool) -> None:
    """Make ``python -m posepipe`` in a job's shell find this package and the right interpreter.

    The package is imported from the workflow folder (so jobs run the code beside the Snakefile
    even inside a conda environment that does not install it). Without conda, the interpreter
    running Snakemake (e.g. the project's virtual environment) is put first on PATH; cluster
    jobs re-run Snakemake with that same interpreter, so they inherit it too.
    """
    paths = [workflow_dir, os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if not conda:
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
