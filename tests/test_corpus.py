"""The bad-input corpus (tests/corpus.py) through the real workflow with --keep-going: every good
or merely awkward video completes, every bad one fails alone at the stage named in its case, with
its reason in summary.csv; damage is warned about; no payload ever runs."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from posepipe.testing import random_checkpoint
from tests.corpus import build
from tests.snakemake_run import snakemake

pytestmark = pytest.mark.workflow

CONFIG = {
    "input": {"directory": "videos", "samples": "samples.tsv"},
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 64, "audio": False},
    "exports": ["trc"],
}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("corpus")
    cases = build(workdir)
    random_checkpoint(workdir / "lifter.bin")
    proc = snakemake(workdir, "--cores", "2", "--keep-going", config=CONFIG, check=False)
    table = pd.read_csv(workdir / "results" / "summary.csv", dtype=str).fillna("")
    return workdir, cases, proc, {row["video"]: row for row in table.to_dict("records")}


def test_every_case_ends_as_written_down(corpus_run):
    workdir, cases, proc, rows = corpus_run
    assert proc.returncode != 0  # some videos failed ...
    assert sorted(rows) == sorted(case.video for case in cases)  # ... and each has its row
    wrong = {
        case.name: rows[case.video]["status"]
        for case in cases
        if not re.match(case.status + ("$" if case.status == "complete" else ""), rows[case.video]["status"])
    }
    assert not wrong, wrong
    for case in cases:
        if case.warning:
            assert case.warning in rows[case.video]["warnings"], (case.name, rows[case.video]["warnings"])


def test_no_payload_ran(corpus_run):
    workdir, cases, _, _ = corpus_run
    for case in cases:
        for name in case.never:
            assert not list(workdir.rglob(name)), f"{case.name}: {name} appeared"


def test_failures_are_named_in_the_terminal_and_complete_ones_have_everything(corpus_run):
    workdir, cases, proc, rows = corpus_run
    output = proc.stdout + proc.stderr
    for case in cases:
        results = workdir / "results" / case.video
        if case.status == "complete":
            for name in ("render.mp4", "pose3d.npz", "qc/qc.json"):
                assert (results / name).exists(), (case.name, name)
        else:
            assert f"  {case.video}: {rows[case.video]['status']}" in output
            assert not (results / "pose3d.npz").exists()
