"""Workflow overhead of several commits side by side: the dry run of many videos for each
commit's Snakefile and its own floor (``bench/floor/Snakefile`` of that commit), interleaved.

    python bench/dag_commits.py 6b5650a^1 6b5650a HEAD --videos 1000 --rounds 3

``bench/bench_dag.py`` measures one commit against its floor; run once per commit, one after
another, its figures move with the machine by a few tenths of a second. Here every round runs each
commit and each floor once, in turn, on the same folder of placeholder videos (the inputs of
``bench_dag``; a dry run reads no video), so all see the same machine state. Printed per commit:
the best wall-clock seconds of the whole ``snakemake`` process (start-up included) for the
workflow and for its floor, and their ratio.

A commit may be given as ``COMMIT=FLOOR``: that commit's workflow is measured against the Snakefile
FLOOR instead of its own floor (for a commit whose floor lacked files its workflow declares).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dag import make_folder, snakemake  # noqa: E402
from refactor_check import export_tree  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "commits",
        nargs="+",
        help="commits to compare (e.g. the one before a change, and after it), or COMMIT=FLOOR",
    )
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="posepipe-dag-commits-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        make_folder(work, args.videos, placeholder=True)
        trees, floors = {}, {}
        for i, spec in enumerate(args.commits):
            commit, _, floor = spec.partition("=")
            trees[spec] = export_tree(commit, tmp / f"tree{i}")
            floors[spec] = Path(floor).resolve() if floor else trees[spec] / "bench" / "floor" / "Snakefile"
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for commit, tree in trees.items():
                times.setdefault((commit, "workflow"), []).append(
                    snakemake(
                        work,
                        "--configfile",
                        str(work / "bench.yaml"),
                        "--dry-run",
                        "--quiet",
                        snakefile=tree / "Snakefile",
                    )  # fmt: skip
                )
                times.setdefault((commit, "floor"), []).append(
                    snakemake(work, "--dry-run", "--quiet", snakefile=floors[commit])
                )
    width = max(len(c) for c in args.commits)
    print(f"dry run, {args.videos} videos, best of {args.rounds} interleaved rounds")
    print(f"{'commit':<{width}}  {'workflow':>9}  {'floor':>7}  ratio  (all runs: workflow / floor)")
    for commit in args.commits:
        ours, floor = times[(commit, "workflow")], times[(commit, "floor")]
        runs = " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ours, floor, strict=True))
        print(
            f"{commit:<{width}}  {min(ours):9.2f}  {min(floor):7.2f}  {min(ours) / min(floor):4.2f}x  ({runs})"
        )


if __name__ == "__main__":
    main()
