"""The floor Snakefile of ``bench/bench_dag.py`` stays posepipe's shape.

Its figures only mean something if the floor plans what the workflow plans: the same output files
made by the same rules from the same inputs, with the same logs. A floor that misses files the
workflow declares (it happened once: QC's timing inputs) flatters the workflow's overhead ratio.
Both are read from Snakemake's own dry-run plan of ``bench_dag``'s folder of placeholder videos.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.snakemake_run import REPO, snakemake

pytestmark = pytest.mark.workflow


def planned(workdir: Path, snakefile: Path, *args: str) -> dict[frozenset, dict[str, frozenset | str]]:
    """Each job of a dry run, keyed by its output files: its rule, inputs, log and benchmark."""
    out = snakemake(workdir, "--dry-run", *args, snakefile=snakefile).stdout
    jobs, job = {}, None
    for line in [*out.splitlines(), "rule end:"]:  # grouped jobs are printed indented
        started = re.match(r"\s*(?:local)?rule (\w+):$", line)
        field = re.match(r"\s+(input|output|log|benchmark): (.*)$", line)
        if started:
            if job is not None:
                jobs[job.get("output", frozenset())] = job
            job = {"rule": started.group(1)}
        elif job is not None and field:
            files = (f.removeprefix(f"{workdir}/") for f in field.group(2).split(", "))
            job[field.group(1)] = frozenset(files)
    return jobs


def test_floor_plans_the_workflows_jobs_and_files(tmp_path, monkeypatch):
    # Imported here: bench/ is not in the container image, where workflow tests are deselected.
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from bench_dag import make_folder

    make_folder(tmp_path, 2, placeholder=True)
    ours = planned(tmp_path, REPO / "Snakefile", "--configfile", str(tmp_path / "bench.yaml"))
    floor = planned(tmp_path, REPO / "bench" / "floor" / "Snakefile")
    assert len(ours) == 27, "a default run of 2 videos is 27 jobs"
    assert ours.keys() == floor.keys(), (
        f"outputs only in the workflow: {sorted(ours.keys() - floor.keys())}; "
        f"only in the floor: {sorted(floor.keys() - ours.keys())}"
    )
    differ = []
    for out in ours:
        for key in ("rule", "input", "log", "benchmark"):
            a, b = ours[out].get(key, frozenset()), floor[out].get(key, frozenset())
            if a != b:
                shown = (a, b) if key == "rule" else (sorted(a - b), sorted(b - a))
                differ.append(
                    f"{min(out)} {key}: only in the workflow {shown[0]}, only in the floor {shown[1]}"
                )
    assert not differ, "the floor's jobs differ from the workflow's:\n" + "\n".join(sorted(differ))
