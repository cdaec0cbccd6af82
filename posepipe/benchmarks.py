"""Stage timings from Snakemake's benchmark files (``results/{video}/benchmarks/{stage}.tsv``).

A benchmark file is tab-separated: a header line, then one row per run whose first column is
wall-clock seconds. Read by qc (its ``stage_seconds``, from the files its rule declares as inputs)
and the summary (after the run).
"""

from __future__ import annotations

import os
from pathlib import Path

from posepipe.registry import BENCHMARK_STAGES


def benchmark_seconds(path: str | os.PathLike) -> float | None:
    """The seconds of a Snakemake benchmark file (first column of its first data row), or None when
    it has no data row. OSError / ValueError for a file that is missing or not a benchmark."""
    lines = Path(path).read_text().splitlines()
    return round(float(lines[1].split("\t")[0]), 3) if len(lines) >= 2 else None


def stage_seconds(files) -> dict[str, float]:
    """Seconds of each stage from the given Snakemake benchmark files (``{stage}.tsv``, in the
    order of :data:`posepipe.registry.BENCHMARK_STAGES`); a file that is missing, empty or not a
    benchmark is left out."""
    by_stage = {Path(f).stem: Path(f) for f in files}
    seconds = {}
    for stage in BENCHMARK_STAGES:
        if stage not in by_stage:
            continue
        try:
            value = benchmark_seconds(by_stage[stage])
        except (OSError, ValueError):
            continue
        if value is not None:
            seconds[stage] = value
    return seconds
