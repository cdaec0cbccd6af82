"""The one exception type that stages raise for bad input.

A ``PosepipeError`` is an expected failure (corrupt video, no person in view, wrong checkpoint):
the command line prints its message without a traceback and exits with status 1, so the
Snakemake log says which file failed and why.
"""

from __future__ import annotations

import os


class PosepipeError(Exception):
    """An input problem that the user can fix; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)
