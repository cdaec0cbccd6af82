"""Whole-or-nothing writes: write under a temporary name in the same folder, then rename.

A job that dies half-way leaves no output that looks finished, so Snakemake never takes a
truncated file for a good one. Temporary names are ``.{name}.*`` beside the target (files, or
folders such as the renderer's ``.render.mp4.*.parts.*``); a job killed with SIGKILL cannot remove
its own, so the next write of the same target removes them first (:func:`remove_stale`).
Snakemake never runs two jobs for one output at once, so anything of that name is a leftover.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` defaults to the target's own suffix, so libraries that pick a format from the
    file name (numpy, OpenCV, ffmpeg) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600; give the result the permissions a plain open() would (umask).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; if the block succeeds, it replaces ``path``
    (an earlier folder there is removed first), so the folder is written whole or not at all."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that earlier, killed writes of ``path`` left (``.{name}.*``).

    Returns:
        The removed paths (files and folders).
    """
    import shutil

    path = Path(path)
    removed = []
    for leftover in path.parent.glob(f".{glob_escape(path.name)}.*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters quoted (video ids are safe; output names may not be)."""
    import glob

    return glob.escape(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def save_npz(path: str | os.PathLike, *, compressed: bool = True, **arrays) -> None:
    """``np.savez[_compressed]`` through a temporary file (numpy would append '.npz' to a bare name)."""
    import numpy as np

    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
