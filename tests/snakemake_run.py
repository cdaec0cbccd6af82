"""Run the real workflow as a subprocess in a temporary working directory, and read its plans."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "test-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(
    workdir: Path,
    *args: str,
    config: dict | None = None,
    check: bool = True,
    timeout: int = 600,
    snakefile: Path = REPO / "Snakefile",
):
    """``snakemake -s snakefile --directory workdir ...``; returns the CompletedProcess."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir)]
    if config is not None:
        cmd += ["--configfile", str(write_config(workdir, config))]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def planned_jobs(workdir: Path, *args: str, config: dict | None = None) -> set[tuple[str, str]]:
    """(rule, video) of every job a dry run would execute (video '' for jobs without that wildcard).

    Grouped jobs are printed indented under their group; both forms are read.
    """
    out = snakemake(workdir, "--dry-run", *args, config=config).stdout
    jobs, rule, video = set(), None, ""
    for line in out.splitlines():
        started = re.match(r"\s*(?:local)?rule (\w+):", line)
        if started:
            if rule:
                jobs.add((rule, video))
            rule, video = started.group(1), ""
        elif rule and (found := re.match(r"\s*wildcards: .*?\bvideo=([^,\s]+)", line)):
            video = found.group(1)
    if rule:
        jobs.add((rule, video))
    jobs.discard(("all", ""))
    return jobs
