"""Compare two results/ folders made from the same input by two versions of the code.

For a change of structure (a refactor) the outputs must be the same. This prints one line per
file: every array of every ``.npz`` compared exactly (object members read with the restricted
loader), JSON files and ``meta`` strings compared key by key with run-specific keys (timings,
paths, versions) left out and keys present on one side only listed, CSVs compared as text (the
run tables summary.csv and qc_summary.csv cell by cell without their stage-seconds columns),
BVH, C3D and PNG files byte for byte, OpenSim's .mot/.sto/.trc/.osim as text (a TRC's first
line, which names the folder it was written in, left out), and each ``.mp4`` decoded and
compared frame by frame (count and pixels). Exit status 1 if any
array, table or frame differs.

    python bench/compare_results.py OLD/results NEW/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posepipe.safeload import load_npz  # noqa: E402

# Keys whose values differ between runs of identical code (clocks, paths, versions, speeds).
VOLATILE = {
    "timings_s", "frames_per_second", "posepipe_version", "torch_version", "source", "dataset2d",
    "timeline", "path", "seconds", "created", "elapsed_s", "fps_measured", "keypoints2d", "source_file",
    "ik_seconds", "stage_seconds",
}  # fmt: skip


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in VOLATILE:
                yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), obj


def compare_meta(a: dict, b: dict) -> tuple[list[str], list[str]]:
    """(keys whose values differ, keys on one side only), volatile keys left out."""
    fa, fb = dict(_flatten(a)), dict(_flatten(b))
    differ = [k for k in fa.keys() & fb.keys() if fa[k] != fb[k]]
    only = [f"-{k}" for k in fa.keys() - fb.keys()] + [f"+{k}" for k in fb.keys() - fa.keys()]
    return sorted(differ), sorted(only)


def _equal_arrays(a, b) -> bool:
    if isinstance(a, np.ndarray) and a.dtype == object:
        return a.shape == b.shape and all(
            _equal_objects(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True)
        )
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _equal_objects(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal_objects(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal_objects(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and _equal_arrays(a, b)
    return a == b


def compare_npz(a: Path, b: Path) -> tuple[bool, str]:
    za, zb = load_npz(a), load_npz(b)
    notes, ok = [], True
    if sorted(za) != sorted(zb):
        ok = False
        notes.append(f"members differ {sorted(za)} vs {sorted(zb)}")
    for key in sorted(set(za) & set(zb)):
        if key == "meta":
            differ, only = compare_meta(json.loads(str(za[key])), json.loads(str(zb[key])))
            if differ:
                notes.append(f"meta values differ: {differ}")
            if only:
                notes.append(f"meta keys {only}")
        elif za[key].dtype != zb[key].dtype or not _equal_arrays(za[key], zb[key]):
            ok = False
            notes.append(f"{key} differs")
    arrays = len([k for k in za if k != "meta"])
    extra = f" ({'; '.join(notes)})" if notes else ""
    return ok, f"{arrays} arrays identical{extra}" if ok else "; ".join(notes)


def compare_video(a: Path, b: Path) -> tuple[bool, str]:
    import av

    def frames(path):
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    n, worst = 0, 0
    fa, fb = frames(a), frames(b)
    while True:
        x, y = next(fa, None), next(fb, None)
        if x is None or y is None:
            if x is not None or y is not None:
                return False, f"frame counts differ after {n} frames"
            break
        if x.shape != y.shape:
            return False, f"frame {n}: shapes {x.shape} vs {y.shape}"
        worst = max(worst, int(np.abs(x.astype(int) - y.astype(int)).max()))
        n += 1
    return worst == 0, f"{n} frames, max pixel difference {worst}"


def compare_file(a: Path, b: Path) -> tuple[bool, str]:
    suffix = a.suffix.lower()
    if suffix == ".npz":
        return compare_npz(a, b)
    if suffix in (".mp4", ".gif"):
        return compare_video(a, b)
    if suffix == ".json":
        differ, only = compare_meta(json.loads(a.read_text()), json.loads(b.read_text()))
        notes = (f"values differ: {differ}; " if differ else "") + (f"keys {only}" if only else "")
        return True, notes or "same"
    if suffix == ".npy":
        return (ok := np.array_equal(np.load(a), np.load(b))), "identical" if ok else "differs"
    if suffix in (".bvh", ".c3d", ".png"):  # motion files and figures: byte for byte
        return (ok := a.read_bytes() == b.read_bytes()), "identical" if ok else "differs"
    if suffix in (".mot", ".sto", ".trc", ".osim"):  # OpenSim's text files
        x, y = a.read_text().splitlines(), b.read_text().splitlines()
        if suffix == ".trc":  # its first line names the file where it was written (a temp folder)
            x, y = x[1:], y[1:]
        return (ok := x == y), "identical" if ok else "differs"
    if suffix == ".csv":
        if a.read_bytes() == b.read_bytes():
            return True, "identical"
        if a.name in RUN_TABLES:
            return compare_run_table(a, b)
        return False, "differs"
    return True, "not compared"


# Run-wide tables with a column of seconds per stage (``<stage>_s``): clocks, not results.
RUN_TABLES = ("summary.csv", "qc_summary.csv")


def compare_run_table(a: Path, b: Path) -> tuple[bool, str]:
    """summary.csv / qc_summary.csv cell by cell, the stage-seconds columns (``*_s``) left out."""
    import pandas as pd

    x, y = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return False, f"columns or rows differ: {list(x.columns)} vs {list(y.columns)}"
    kept = [c for c in x.columns if not c.endswith("_s")]
    differ = [c for c in kept if not x[c].fillna("").equals(y[c].fillna(""))]
    if differ:
        return False, f"columns differ: {differ}"
    return True, f"same but the stage seconds ({len(x.columns) - len(kept)} columns)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    skip = ("logs", "benchmarks")
    files = sorted(
        p.relative_to(args.old)
        for p in args.old.rglob("*")
        if p.is_file() and not any(part in skip for part in p.relative_to(args.old).parts)
    )
    failed = False
    for rel in files:
        if not (args.new / rel).exists():
            print(f"MISSING  {rel}")
            failed = True
            continue
        ok, note = compare_file(args.old / rel, args.new / rel)
        failed |= not ok
        print(f"{'same' if ok else 'DIFFERS':8} {rel}: {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
