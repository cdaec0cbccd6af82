"""Which videos to process: a folder plus glob patterns, and an optional sample sheet.

Every video gets an id that is safe in paths and Snakemake wildcards (letters, digits, ``.``,
``_``, ``-``). Two inputs that map to the same id are an error, never a silent overwrite.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import unicodedata
from pathlib import Path

from posepipe.errors import PosepipeError

VIDEO_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
SAMPLE_COLUMNS = ("video", "path", "start", "end", "fps", "keypoints2d")


def video_id_from_name(name: str) -> str:
    """A path- and wildcard-safe id from a file name: 'Tänzer 1 (take 2).MOV' -> 'Tanzer_1_take_2'.

    Accents are folded to ASCII; other characters become '_'. A name with nothing left (e.g.
    all CJK) gets a stable id from a hash of the name, so it is still unique and repeatable.
    """
    stem = Path(name).stem if "." in name else name
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._-")
    if not safe:
        safe = "video_" + hashlib.sha1(stem.encode()).hexdigest()[:10]
    return safe


def find_videos(directory: str | os.PathLike, patterns: list[str], *, recursive: bool = False) -> list[Path]:
    """Files under ``directory`` whose names match any glob pattern (case-insensitive), sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    globs = [p.lower() for p in patterns]
    walk = directory.rglob("*") if recursive else directory.iterdir()
    found = [
        p
        for p in walk
        if p.is_file()
        and not p.name.startswith(".")
        and any(fnmatch.fnmatchcase(p.name.lower(), g) for g in globs)
    ]
    return sorted(found)


def load_sample_sheet(path: str | os.PathLike, *, base: str | os.PathLike = ".") -> list[dict]:
    """Rows of a TSV with columns video (id, optional), path, and optional start, end, fps, keypoints2d."""
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", dtype=str, comment="#").fillna("")
    except (OSError, ValueError) as exc:
        raise PosepipeError(path, f"cannot read the sample sheet ({exc})") from exc
    unknown = sorted(set(table.columns) - set(SAMPLE_COLUMNS))
    if unknown or "path" not in table.columns:
        raise PosepipeError(
            path,
            f"sample sheet needs a 'path' column and may have {', '.join(SAMPLE_COLUMNS)}; unknown: {unknown}",
        )
    rows = []
    for i, rec in enumerate(table.to_dict("records"), start=2):
        row = {"path": Path(base, rec["path"]) if not os.path.isabs(rec["path"]) else Path(rec["path"])}
        if rec.get("video"):
            if not re.fullmatch(VIDEO_ID_PATTERN, rec["video"]):
                raise PosepipeError(
                    path, f"line {i}: video id {rec['video']!r} must match {VIDEO_ID_PATTERN}"
                )
            row["video"] = rec["video"]
        for key in ("start", "end", "fps"):
            if rec.get(key, "") != "":
                try:
                    row[key] = float(rec[key])
                except ValueError:
                    raise PosepipeError(path, f"line {i}: {key} must be a number, got {rec[key]!r}") from None
        if rec.get("keypoints2d"):
            row["keypoints2d"] = Path(base, rec["keypoints2d"])
        rows.append(row)
    return rows


def collect_videos(
    *,
    directory: str | os.PathLike | None,
    patterns: list[str],
    recursive: bool = False,
    samples: str | os.PathLike | None = None,
) -> dict[str, dict]:
    """Map video id -> {'path', and per-video 'start', 'end', 'fps', 'keypoints2d' when given}.

    Sample-sheet rows come first and override a folder file with the same path.
    """
    rows = load_sample_sheet(samples) if samples else []
    listed = {Path(r["path"]).resolve() for r in rows}
    if directory:
        rows += [
            {"path": p}
            for p in find_videos(directory, patterns, recursive=recursive)
            if p.resolve() not in listed
        ]
    videos: dict[str, dict] = {}
    for row in rows:
        vid = row.pop("video", None) or video_id_from_name(Path(row["path"]).name)
        if vid in videos:
            raise PosepipeError(
                row["path"],
                f"maps to video id {vid!r}, as does {videos[vid]['path']}: rename one, or give ids in a sample sheet",
            )
        if not Path(row["path"]).exists():
            raise PosepipeError(row["path"], "listed in the sample sheet but not found")
        videos[vid] = row
    return videos
