"""Stage timings from Snakemake's benchmark files (``results/{video}/benchmarks/{stage}.tsv``).

A benchmark file is tab-separated: a header line, then one row per run whose first column is
wall-clock seconds. Read by qc (its ``stage_seconds``) and the summary; the rules declare the
files they read.
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


def stage_seconds(folder: Path) -> dict[str, float]:
    """Seconds of each stage from the Snakemake benchmark files present in ``folder / benchmarks``."""
    seconds = {}
    for stage in BENCHMARK_STAGES:
        try:
            value = benchmark_seconds(folder / "benchmarks" / f"{stage}.tsv")
        except (OSError, ValueError):
            continue
        if value is not None:
            seconds[stage] = value
    return seconds


