"""The tracks artefact: ``results/{video}/tracks.npz`` (plain arrays, ``allow_pickle=False``).

Written by the ``tracks`` stage (:mod:`posepipe.tracks`), read by dataset2d and qc.

- ``track_ids``: int64 (N,): per detection row of keypoints2d.npz, its track id, or -1 for none.
- ``first``, ``last``: int64 (K,): first and last frame of each track (inclusive).
- ``length``: int64 (K,): frames in which the track has a detection.
- ``score``: float32 (K,): mean box score of its detections.
- ``refound``: int64 (K,): times the track was re-found after being lost for at least one frame.
- ``meta``: str (JSON): ``stage``, ``stage_version``, the parameters, fps, counts; when duplicates
  were merged also ``duplicates`` ({``oks_threshold``, ``merged``, ``frames``}) and ``warnings``
  (list of str).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from posepipe.atomic import save_npz
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS

STAGE = "tracks"
VERSION = STAGE_VERSIONS[STAGE]


@dataclass
class Tracks:
    """Track id per detection and per-track facts; see the module docstring for shapes."""

    track_ids: np.ndarray
    first: np.ndarray
    last: np.ndarray
    length: np.ndarray
    score: np.ndarray
    refound: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_tracks(self) -> int:
        return len(self.first)


def save_tracks(path: str | os.PathLike, tracks: Tracks) -> None:
    """Write tracks.npz (atomic); the stage and its version are stamped into the file's ``meta`` (``tracks`` is not changed)."""
    meta = {"stage": STAGE, "stage_version": VERSION, **tracks.meta}
    save_npz(
        path,
        track_ids=tracks.track_ids.astype(np.int64),
        first=tracks.first.astype(np.int64),
        last=tracks.last.astype(np.int64),
        length=tracks.length.astype(np.int64),
        score=tracks.score.astype(np.float32),
        refound=tracks.refound.astype(np.int64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def load_tracks(path: str | os.PathLike, *, detections: int | None = None) -> Tracks:
    """Read and check tracks.npz; ``detections``: the row count of the keypoints2d.npz it belongs to."""
    try:
        with np.load(path, allow_pickle=False) as z:
            tracks = Tracks(
                track_ids=z["track_ids"], first=z["first"], last=z["last"], length=z["length"],
                score=z["score"], refound=z["refound"], meta=json.loads(str(z["meta"])),
            )  # fmt: skip
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise PosepipeError(path, f"cannot read tracks file ({type(exc).__name__}: {exc})") from exc
    k = tracks.num_tracks
    if not all(len(a) == k for a in (tracks.last, tracks.length, tracks.score, tracks.refound)):
        raise PosepipeError(path, "per-track arrays have different lengths")
    if len(tracks.track_ids) and (tracks.track_ids.min() < -1 or tracks.track_ids.max() >= k):
        raise PosepipeError(path, f"track ids outside -1..{k - 1}")
    if detections is not None and len(tracks.track_ids) != detections:
        raise PosepipeError(
            path, f"has track ids for {len(tracks.track_ids)} detections, keypoints2d.npz has {detections}"
        )
    return tracks
