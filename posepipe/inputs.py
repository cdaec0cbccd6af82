"""Which videos to process: a folder plus glob patterns, and an optional sample sheet.

Every video gets an id that is safe in paths and Snakemake wildcards (letters, digits, ``.``,
``_``, ``-``). Two inputs that map to the same id are an error, never a silent overwrite.

Sample sheet (TSV, first line the header; lines starting with ``#`` and blank lines are skipped):
``path`` (required), ``video`` (id), ``start``, ``end``, ``fps`` (numbers, empty for the default),
``keypoints2d`` (another tool's keypoints file); for the world stage ``calibration`` (a file)
and the numbers ``fx, fy, cx, cy, fov_deg, focal_mm, sensor_width_mm, height_m, camera_height_m,
camera_tilt_deg``; for the evaluate stage ``reference`` (a motion-capture recording; else
:func:`find_reference` looks beside the video) and ``reference_offset_s`` (its time offset,
seconds: reference time = video time + offset; empty: found by the stage). Relative paths are relative to ``base`` (the
working directory); an ``s3://bucket/key`` URL is kept as it is (:mod:`posepipe.objectstore`).
Each row comes back with its ``line`` number so that checks made later (the
workflow's schema, ``workflow/schemas/samples.schema.yaml``) can name it.

Paths reach Snakemake and shell commands through two helpers: :func:`shell_path` (a name starting
with ``-`` gets ``./`` so no command reads it as an option) and :func:`snakemake_safe_path`
(a path with ``{`` or ``}``, which Snakemake would read as a wildcard, is reached through a
symbolic link with a plain name).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import math
import os
import re
import unicodedata
from pathlib import Path

from posepipe.errors import PosepipeError
from posepipe.objectstore import ObjectIndex, is_url, join_url, url_name, url_parent

VIDEO_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
# Names directly under results/ that belong to the whole run, not to one video: a video id equal
# to one of them (compared without case, for case-insensitive file systems) would make
# results/{video}/ collide with a run-wide file. An id made from a file name gets RESERVED_SUFFIX
# ('qc_summary.csv.mp4' -> 'qc_summary.csv_video'); an id given in the sample sheet is refused.
RUN_WIDE_NAMES = (
    "summary.csv",
    "qc_summary.csv",
    "qc_summary.html",
    "dataset2d_custom.npz",
    "logs",
    "README.md",
    "evaluate_summary.csv",
    "evaluate_summary.html",
    "evaluate_intervals.csv",
)
RESERVED_SUFFIX = "_video"
SAMPLE_COLUMNS = ("video", "path", "start", "end", "fps", "keypoints2d", "reference", "reference_offset_s")
# The world stage's columns (posepipe.camera, posepipe.world): a calibration file and numbers.
WORLD_NUMBER_COLUMNS = ("fx", "fy", "cx", "cy", "fov_deg", "focal_mm", "sensor_width_mm", "height_m",
                        "camera_height_m", "camera_tilt_deg")  # fmt: skip
SAMPLE_COLUMNS += ("calibration", *WORLD_NUMBER_COLUMNS)
NUMBER_COLUMNS = ("start", "end", "fps", "reference_offset_s", *WORLD_NUMBER_COLUMNS)
# A video's reference recording found beside it: <stem>.reference.<ext>, in this order.
REFERENCE_EXTENSIONS = (".c3d", ".trc", ".npz")

# Snakemake refuses a wildcard value that ends in 20 or more repeats of one substring
# (snakemake.io.PeriodicityDetector: it takes them for an endless recursion of rules).
PERIODIC_REPEATS = 20
_PERIODIC = re.compile(rf"(.+?)\1{{{PERIODIC_REPEATS - 1},}}$")


def periodic_suffix(value: str) -> str | None:
    """The unit that ``value`` ends in 20+ repeats of ('ha' for 'hahaha…ha'), else None."""
    found = _PERIODIC.search(value)
    return found.group(1) if found else None


def video_id_from_name(name: str) -> str:
    """A path- and wildcard-safe id from a file name: 'Tänzer 1 (take 2).MOV' -> 'Tanzer_1_take_2'.

    Accents are folded to ASCII; other characters become '_'. A name with nothing left (e.g.
    all CJK) gets a stable id from a hash of the name, so it is still unique and repeatable. A
    name that ends in 20+ repeats ('hahaha…', 'take_0000…') gets a short hash of the name
    appended, because Snakemake rejects such wildcard values. An id equal to a run-wide name
    (:data:`RUN_WIDE_NAMES`) gets :data:`RESERVED_SUFFIX`: 'qc_summary.csv.mp4' ->
    'qc_summary.csv_video', so results/{video}/ never collides with a file of the whole run.
    """
    stem = Path(name).stem if "." in name else name
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._-")
    digest = hashlib.sha1(stem.encode()).hexdigest()
    if not safe:
        safe = "video_" + digest[:10]
    elif periodic_suffix(safe):
        safe = f"{safe}_{digest[:8]}"
    if is_run_wide_name(safe):
        safe += RESERVED_SUFFIX
    return safe


def is_run_wide_name(video_id: str) -> bool:
    """Whether ``video_id`` is one of :data:`RUN_WIDE_NAMES` (case ignored)."""
    return video_id.lower() in {name.lower() for name in RUN_WIDE_NAMES}


def shell_path(path: str | os.PathLike) -> str:
    """``path`` as a string no command line takes for an option: '-a.mp4' -> './-a.mp4'."""
    text = os.fspath(path)
    return f"./{text}" if text.startswith("-") else text


def has_braces(path: str | os.PathLike) -> bool:
    text = os.fspath(path)
    return "{" in text or "}" in text


def snakemake_safe_path(path: str | os.PathLike, link: str | os.PathLike) -> str:
    """A name for ``path`` that Snakemake takes literally.

    Snakemake formats every input path, so '{x}.mp4' would be read as a wildcard ``x``; such a
    path is reached through the symbolic link ``link`` (made or corrected here; its own time
    stamp is set to the target's, so making it never makes results look out of date: Snakemake
    compares the later of the two). Other paths come back unchanged (via :func:`shell_path`).
    A missing file also comes back unchanged: the caller decides what a missing file means.
    """
    if not has_braces(path) or not os.path.exists(path):
        return shell_path(path)
    link = Path(link)
    if has_braces(link):
        raise PosepipeError(link, "a link name must not contain { or }")
    target = os.path.abspath(path)
    # Relative when the target is given relative to the working directory: the project folder
    # can then be moved as a whole.
    if not os.path.isabs(path):
        target = os.path.relpath(target, os.path.abspath(link.parent))
    if not (link.is_symlink() and os.readlink(link) == target):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
        try:
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, link)
        except OSError as exc:
            raise PosepipeError(
                path,
                f"the name has {{ or }}, which Snakemake reads as a wildcard, and no link to it could be "
                f"made ({exc}): rename the file",
            ) from exc
    stat = os.stat(path)
    if os.lstat(link).st_mtime != stat.st_mtime:
        os.utime(link, ns=(stat.st_atime_ns, stat.st_mtime_ns), follow_symlinks=False)
    return os.fspath(link)


def find_videos(
    directory: str | os.PathLike,
    patterns: list[str],
    *,
    recursive: bool = False,
    exclude: tuple[str | os.PathLike, ...] = (),
) -> list[Path]:
    """Files under ``directory`` whose names match any glob pattern (case-insensitive), sorted.

    Hidden files and folders are skipped, and so is everything under ``exclude`` (the
    workflow's own results folder, when ``directory`` contains it).

    Raises:
        PosepipeError: ``directory`` does not exist or is not a folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        reason = "is not a folder" if directory.exists() else "does not exist"
        raise PosepipeError(directory, f"the input folder (input.directory) {reason}")
    globs = [p.lower() for p in patterns]
    skip = [Path(e).resolve() for e in exclude]
    walk = directory.rglob("*") if recursive else directory.iterdir()
    found = []
    for p in walk:
        relative = p.relative_to(directory).parts
        if any(part.startswith(".") for part in relative) or not p.is_file():
            continue
        if skip and any(p.resolve().is_relative_to(s) for s in skip):
            continue
        if any(fnmatch.fnmatchcase(p.name.lower(), g) for g in globs):
            found.append(p)
    return sorted(found)


def _number(text: str, *, path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise PosepipeError(path, f"line {line}, column {column}: must be a finite number, got {text!r}")
    return value


def _sheet_path(base, text: str) -> Path | str:
    """A sample sheet's path: an s3:// URL as it is, else a Path relative to ``base``."""
    return text if is_url(text) else Path(base, text)


def load_sample_sheet(path: str | os.PathLike, *, base: str | os.PathLike = ".") -> list[dict]:
    """Rows of the sample sheet (see the module docstring): dicts with 'line', 'path' (Path) and
    the optional 'video', 'start', 'end', 'fps' (floats) and 'keypoints2d' (Path) that are given.

    Raises:
        PosepipeError: unreadable file, unknown or missing columns, a bad number or video id;
            the message names the line and column.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [(n, text) for n, text in enumerate(f.read().splitlines(), start=1)]
    except (OSError, UnicodeDecodeError) as exc:
        raise PosepipeError(path, f"cannot read the sample sheet ({exc})") from exc
    lines = [(n, text) for n, text in lines if text.strip() and not text.lstrip().startswith("#")]
    if not lines:
        raise PosepipeError(path, "the sample sheet is empty (it needs a header line with a 'path' column)")
    records = list(csv.reader([text for _, text in lines], dialect="excel-tab"))
    header = [name.strip() for name in records[0]]
    unknown = sorted(set(header) - set(SAMPLE_COLUMNS))
    if unknown or "path" not in header or len(set(header)) != len(header):
        raise PosepipeError(
            path,
            f"line {lines[0][0]}: the header needs a 'path' column and may have "
            f"{', '.join(SAMPLE_COLUMNS)}, each once; unknown: {unknown}",
        )
    rows = []
    for (line, _), values in zip(lines[1:], records[1:], strict=True):
        if len(values) > len(header):
            raise PosepipeError(path, f"line {line}: {len(values)} fields, the header has {len(header)}")
        rec = {name: value.strip() for name, value in zip(header, values, strict=False)}
        if not rec.get("path"):
            raise PosepipeError(path, f"line {line}, column path: empty")
        row: dict = {"line": line, "path": _sheet_path(base, rec["path"])}
        if rec.get("video"):
            if not re.fullmatch(VIDEO_ID_PATTERN, rec["video"]):
                raise PosepipeError(
                    path, f"line {line}, column video: id {rec['video']!r} must match {VIDEO_ID_PATTERN}"
                )
            if unit := periodic_suffix(rec["video"]):
                raise PosepipeError(
                    path,
                    f"line {line}, column video: id {rec['video']!r} ends in {PERIODIC_REPEATS}+ repeats "
                    f"of {unit!r}, which Snakemake refuses as a wildcard value; choose another id",
                )
            if is_run_wide_name(rec["video"]):
                raise PosepipeError(
                    path,
                    f"line {line}, column video: id {rec['video']!r} is the name of a run-wide file or "
                    f"folder under results/ ({', '.join(RUN_WIDE_NAMES)}); choose another id",
                )
            row["video"] = rec["video"]
        for key in NUMBER_COLUMNS:
            if rec.get(key, "") != "":
                row[key] = _number(rec[key], path=path, line=line, column=key)
        if rec.get("keypoints2d"):
            row["keypoints2d"] = _sheet_path(base, rec["keypoints2d"])
        if rec.get("calibration"):
            row["calibration"] = _sheet_path(base, rec["calibration"])
        if rec.get("reference"):
            row["reference"] = _sheet_path(base, rec["reference"])
        rows.append(row)
    return rows


def collect_videos(
    *,
    directory: str | os.PathLike | None,
    patterns: list[str],
    recursive: bool = False,
    samples: str | os.PathLike | list[dict] | None = None,
    exclude: tuple[str | os.PathLike, ...] = (),
    objects: ObjectIndex | None = None,
) -> dict[str, dict]:
    """Map video id -> {'path', and per-video 'start', 'end', 'fps', 'keypoints2d' when given}.

    ``samples`` is a sample-sheet path or rows already read by :func:`load_sample_sheet`.
    Sample-sheet rows come first and override a folder file with the same path.

    ``directory`` and the rows' paths may be ``s3://`` URLs: the objects are listed through
    ``objects`` (an :class:`~posepipe.objectstore.ObjectIndex`, made with the default client
    when None), a page of up to 1000 per request; their ids are made from their names as for
    files. An ``exclude`` entry that is a URL applies to the listing of a URL.

    A sample-sheet row whose file does not exist is kept (with ``'missing': True``): that video
    fails alone at its first stage, which names the file, and the others run.

    Raises:
        PosepipeError: a missing input folder or bucket, two inputs with one id.
    """
    if samples is None:
        rows = []
    elif isinstance(samples, list):
        rows = [dict(r) for r in samples]
    else:
        rows = load_sample_sheet(samples)
    if objects is None and (is_url(directory) or any(is_url(r["path"]) for r in rows)):
        objects = ObjectIndex()
    listed = {_identity(r["path"]) for r in rows}
    if directory:
        try:
            if is_url(directory):
                urls = [e for e in exclude if is_url(e)]
                found = objects.find(directory, patterns, recursive=recursive, exclude=urls)
            else:
                local = tuple(e for e in exclude if not is_url(e))
                found = find_videos(directory, patterns, recursive=recursive, exclude=local)
        except PosepipeError as exc:
            if rows:
                raise PosepipeError(
                    exc.path, f"{exc.reason} (set input.directory to null to use only the sample sheet)"
                ) from None
            raise
        rows += [{"path": p} for p in found if _identity(p) not in listed]
    videos: dict[str, dict] = {}
    for row in rows:
        row.pop("line", None)
        name = url_name(row["path"]) if is_url(row["path"]) else Path(row["path"]).name
        vid = row.pop("video", None) or video_id_from_name(name)
        if vid in videos:
            raise PosepipeError(
                row["path"],
                f"maps to video id {vid!r}, as does {videos[vid]['path']}: rename one, or give ids in a sample sheet",
            )
        if not (objects.exists(row["path"]) if is_url(row["path"]) else Path(row["path"]).exists()):
            row["missing"] = True
        videos[vid] = row
    return videos


def _identity(path) -> str | Path:
    """What makes two inputs the same: the URL, or the file's resolved path."""
    return path if is_url(path) else Path(path).resolve()


def find_reference(video: dict, objects: ObjectIndex | None = None) -> Path | str | None:
    """The reference recording of a video (an entry of :func:`collect_videos`): the sample sheet's
    ``reference`` (kept also when missing, so that the evaluate job names it), else the first of
    ``<stem>.reference.c3d / .trc / .npz`` beside the video that exists, else None. For a video
    in a bucket the objects beside it are looked up in ``objects`` (the listing already made)."""
    if video.get("reference"):
        return video["reference"] if is_url(video["reference"]) else Path(video["reference"])
    if is_url(video["path"]):
        stem, objects = Path(url_name(video["path"])).stem, objects or ObjectIndex()
        for ext in REFERENCE_EXTENSIONS:
            candidate = join_url(url_parent(video["path"]), f"{stem}.reference{ext}")
            if objects.exists(candidate):
                return candidate
        return None
    path = Path(video["path"])
    for ext in REFERENCE_EXTENSIONS:
        candidate = path.with_name(f"{path.stem}.reference{ext}")
        if candidate.is_file():
            return candidate
    return None
