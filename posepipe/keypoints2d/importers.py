"""Import 2D keypoints made by another tool into the keypoints2d.npz contract.

Four formats are read, each checked against the frame timeline (frame count, image size):

- ``d2npz``: what upstream VideoPose3D's ``inference/infer_video_d2.py`` writes (Detectron1
  layout, object arrays): ``boxes[t] = [[], array (n, 5)]`` (x1, y1, x2, y2, score),
  ``keypoints[t] = [[], array (n, 4, 17)]`` (x, y, logit, probability), ``segments[t]``
  (unused), ``metadata = {'w': W, 'h': H}``. Index 1 is the person class; a frame with nobody
  has empty lists. The object arrays are pickles: they are read by ``posepipe.safeload``, which
  builds arrays, lists, dicts and numbers only and refuses any other global (no code runs).
- ``coco``: COCO keypoint results JSON: a list of ``{"image_id": frame index, "category_id": 1,
  "bbox": [x, y, w, h], "score": s, "keypoints": [x1, y1, v1, ..., x17, y17, v17]}``. Frames
  without an entry have nobody. A COCO-style dict ``{"images": [...], "annotations": [...]}`` is
  read too; its images' ``width``/``height`` are then checked and ``image_id`` is still the
  frame index.

- ``openpose``: a folder of OpenPose per-frame files ``<name>_<frame, 12 digits>_keypoints.json``,
  each ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}`` (also what Sports2D and
  Pose2Sim write with rtmlib). The frame index is the number before ``_keypoints.json`` (0-based,
  as OpenPose counts). The layout follows from the number of points per person, mapped to
  COCO-17 (nose, left eye, right eye, left ear, right ear, left/right shoulder, elbow, wrist, hip,
  knee, ankle) as::

      BODY_25 (25 points): [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
      COCO-18 (18 points): [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
      COCO-17, HALPE-26, COCO-WholeBody-133 (17, 26, 133 points): their first 17 points

  (BODY_25: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left, 8 mid-hip, 9-11 right
  hip/knee/ankle, 12-14 left, 15/16 right/left eye, 17/18 right/left ear, 19-24 feet; COCO-18
  the same without mid-hip and feet.) OpenPose writes an undetected joint as 0, 0, 0. OpenPose
  gives no box: the box is the extent of the person's joints with confidence > 0, its score the
  mean confidence of those joints (a person with none is left out). A frame file that is missing
  is a frame with nobody (``meta["missing_frame_files"]``, and a warning); a frame index beyond
  the timeline, or a file that does not parse, is an error naming it.
- ``mmpose``: MMPose's prediction JSON, either the demo scripts' ``{"meta_info": ...,
  "instance_info": [{"frame_id": k, "instances": [...]}, ...]}`` (one entry per frame, ids
  counting from 0 or from 1 as the scripts do, told by the smallest id), or the inferencer's
  results ``{"predictions": [frame, ...]}`` / ``[{"predictions": frame}, ...]`` in frame order, a
  frame being a list of instances (or a list holding that list, the inferencer's batch). An
  instance: ``keypoints`` 17 x [x, y], ``keypoint_scores`` 17 numbers, ``bbox`` [x1, y1, x2, y2]
  (or [[...]]; absent: the joints' extent), ``bbox_score`` (absent: the mean keypoint score).

The keypoint score kept is the file's probability (d2npz row 3; the logit row is often zeros)
or the COCO ``v`` value (a detector's visibility/confidence in results; in a COCO dict, the
annotation flags 1/2 become 1.0 and 0 stays 0).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posepipe.artefacts.keypoints2d import NUM_COCO_JOINTS, Keypoints2D, from_frames, save_keypoints2d
from posepipe.errors import PosepipeError
from posepipe.objectstore import is_url
from posepipe.safeload import load_npz
from posepipe.settings import schema_default
from posepipe.shards import check_range

if TYPE_CHECKING:
    from posepipe.keypoints2d.cli import Keypoints2DSettings, SourceInputs

log = logging.getLogger(__name__)

FORMATS = ("d2npz", "coco", "openpose", "mmpose")
PERSON_CATEGORY = 1
# Files with no stated image size are checked by where their points fall: more than this share
# of points beyond the frame padded by EXTENT_MARGIN (a fraction of its size) means the points
# were made on other frames. Generous, because detectors place occluded joints off-frame.
EXTENT_MARGIN = 0.25
EXTENT_MAX_OUTSIDE = 0.5
# Any point farther than this many frame widths (heights) from the frame's centre is refused:
# no detector places a joint there, and such values would overflow drawing and lifting.
COORDINATE_BOUND = 10

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (n, 4), box_scores (n,), keypoints (n, 17, 3)


def detect_format(path: str | os.PathLike) -> str:
    """'d2npz' or 'coco', from the extension or, failing that, the first bytes of the file."""
    path = Path(path)
    if path.is_dir():
        return "openpose"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "d2npz"
    if suffix == ".json":
        return _json_format(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip()
    except OSError as exc:
        raise PosepipeError(path, f"cannot read keypoints file ({exc.strerror or exc})") from exc
    if head.startswith(b"PK"):
        return "d2npz"
    if head[:1] in (b"[", b"{"):
        return _json_format(path)
    raise PosepipeError(
        path, "cannot tell the format (neither .npz nor JSON); pass --format d2npz, coco or mmpose"
    )


# ---------------------------------------------------------------------------------------------
# readers: file -> per-frame arrays, the image size the file states (or None), facts for the meta


def read_d2npz(
    path: str | os.PathLike, *, frame_count: int
) -> tuple[list[Frame], tuple[int, int] | None, dict]:
    """Read an ``infer_video_d2.py`` .npz.

    Returns:
        (frames: ``frame_count`` tuples of boxes (n, 4) x1, y1, x2, y2 / box_scores (n,) /
        keypoints (n, 17, 3) x, y, probability; (w, h) from ``metadata`` or None; facts for meta).
    """
    path = Path(path)
    # The layout is object arrays (pickles): read them with the restricted unpickler, never np.load.
    z = load_npz(path, what="infer_video_d2 .npz")
    missing = {"boxes", "keypoints"} - set(z)
    if missing:
        raise PosepipeError(path, f"not an infer_video_d2 file: no {', '.join(sorted(missing))} array")
    boxes, keypoints = z["boxes"], z["keypoints"]
    metadata = z["metadata"].item() if "metadata" in z and z["metadata"].shape == () else None

    if len(boxes) != len(keypoints):
        raise PosepipeError(path, f"has {len(boxes)} frames of boxes but {len(keypoints)} of keypoints")
    if len(boxes) != frame_count:
        raise PosepipeError(path, f"has {len(boxes)} frames, the timeline has {frame_count}")
    size = None
    if metadata is not None:
        try:
            size = (int(metadata["w"]), int(metadata["h"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise PosepipeError(path, f"metadata should be {{'w': W, 'h': H}}, got {metadata!r}") from exc

    frames = []
    for t in range(frame_count):
        b = _person_entry(boxes[t], path=path, what="boxes", t=t)
        k = _person_entry(keypoints[t], path=path, what="keypoints", t=t)
        if b.size == 0 and k.size == 0:
            frames.append(_empty())
            continue
        if b.ndim != 2 or b.shape[1] != 5:
            raise PosepipeError(path, f"frame {t}: boxes must be (n, 5) x1, y1, x2, y2, score; got {b.shape}")
        if k.shape != (len(b), 4, NUM_COCO_JOINTS):
            raise PosepipeError(
                path, f"frame {t}: keypoints must be ({len(b)}, 4, 17) for {len(b)} boxes; got {k.shape}"
            )
        # (n, 4, 17) rows x, y, logit, probability -> (n, 17, 3) x, y, probability.
        kp = np.stack([k[:, 0], k[:, 1], k[:, 3]], axis=-1)
        frames.append((b[:, :4], b[:, 4], kp))
    facts = {
        "source_metadata": _jsonable(metadata),
        "keypoint_score": "probability (row 3 of the file's keypoints)",
    }
    return frames, size, facts


def _person_entry(entry, *, path: Path, what: str, t: int) -> np.ndarray:
    """The person class (index 1) of one frame's Detectron1-style per-class list, as float64."""
    try:
        person = entry[1]
        return np.asarray(person if len(person) else [], dtype=np.float64)
    except (TypeError, IndexError, ValueError) as exc:
        raise PosepipeError(
            path, f"frame {t}: {what} should be [[], array] per frame, got {type(entry).__name__}"
        ) from exc


def read_coco(
    path: str | os.PathLike, *, frame_count: int
) -> tuple[list[Frame], tuple[int, int] | None, dict]:
    """Read COCO keypoint results (list) or a COCO-style dict with ``annotations``.

    Returns:
        (frames as in :func:`read_d2npz`; (w, h) if the file's ``images`` state one size, else
        None; facts for the meta).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PosepipeError(
            path, f"cannot read as COCO keypoints JSON ({type(exc).__name__}: {exc})"
        ) from exc

    size, flags = None, False
    if isinstance(data, dict):
        if not isinstance(data.get("annotations"), list):
            raise PosepipeError(path, "a COCO JSON object must have an 'annotations' list")
        images = data.get("images") or []
        size = _coco_images_size(images, path=path, frame_count=frame_count)
        entries, flags = data["annotations"], True  # ground-truth style: v are 0/1/2 flags
    elif isinstance(data, list):
        entries = data
    else:
        raise PosepipeError(path, f"COCO keypoints JSON must be a list of results, got {type(data).__name__}")

    per_frame: list[list[Frame]] = [[] for _ in range(frame_count)]
    skipped = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PosepipeError(path, f"entry {i} is a {type(entry).__name__}, not an object")
        if entry.get("category_id", PERSON_CATEGORY) != PERSON_CATEGORY:
            skipped += 1
            continue
        t = _frame_index(entry.get("image_id"), path=path, i=i, frame_count=frame_count)
        try:
            kp = np.asarray(entry["keypoints"], dtype=np.float64)
            score = float(entry["score"]) if "score" in entry or not flags else 1.0
        except KeyError as exc:
            raise PosepipeError(path, f"entry {i} (image_id {t}) has no {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise PosepipeError(path, f"entry {i} (image_id {t}): {exc}") from exc
        if kp.shape != (NUM_COCO_JOINTS * 3,):
            raise PosepipeError(
                path, f"entry {i} (image_id {t}): keypoints must be 51 numbers, got {kp.size}"
            )
        kp = kp.reshape(NUM_COCO_JOINTS, 3)
        if flags:
            kp[:, 2] = (kp[:, 2] > 0).astype(np.float64)
        box = _coco_box(entry.get("bbox"), kp, path=path, i=i, t=t)
        per_frame[t].append((box[None], np.array([score]), kp[None]))
    if skipped:
        log.info(
            "%s: skipped %d entries of categories other than person (%d)", path, skipped, PERSON_CATEGORY
        )

    frames = [
        (
            np.concatenate([p[0] for p in people]),
            np.concatenate([p[1] for p in people]),
            np.concatenate([p[2] for p in people]),
        )
        if people
        else _empty()
        for people in per_frame
    ]
    facts = {
        "skipped_other_categories": skipped,
        "keypoint_score": "COCO v" + (" flags as 0/1" if flags else ""),
    }
    return frames, size, facts


def _frame_index(image_id, *, path: Path, i: int, frame_count: int) -> int:
    if isinstance(image_id, bool) or not isinstance(image_id, int | float | str):
        raise PosepipeError(path, f"entry {i}: image_id must be the frame index, got {image_id!r}")
    try:
        t = int(image_id)
    except ValueError:
        raise PosepipeError(path, f"entry {i}: image_id must be the frame index, got {image_id!r}") from None
    if t != float(image_id) or not 0 <= t < frame_count:
        hint = " (are image ids 1-based? they must be 0-based frame indices)" if t == frame_count else ""
        raise PosepipeError(
            path,
            f"entry {i}: image_id {image_id!r} is not a frame of the timeline (0..{frame_count - 1}){hint}",
        )
    return t


def _coco_box(bbox, kp: np.ndarray, *, path: Path, i: int, t: int) -> np.ndarray:
    """x1, y1, x2, y2 from a COCO [x, y, w, h] box, or around the labelled keypoints if absent."""
    if bbox is None:
        # COCO keypoint results need no bbox; fall back to the extent of the points it has.
        seen = kp[kp[:, 2] > 0] if np.any(kp[:, 2] > 0) else kp
        return np.array([*seen[:, :2].min(0), *seen[:, :2].max(0)])
    box = np.asarray(bbox, dtype=np.float64)
    if box.shape != (4,) or box[2] < 0 or box[3] < 0:
        raise PosepipeError(
            path, f"entry {i} (image_id {t}): bbox must be [x, y, w, h] with w, h >= 0, got {bbox!r}"
        )
    return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])


def _coco_images_size(images, *, path: Path, frame_count: int) -> tuple[int, int] | None:
    if not images:
        return None
    if len(images) != frame_count:
        raise PosepipeError(path, f"lists {len(images)} images, the timeline has {frame_count} frames")
    sizes = {(im.get("width"), im.get("height")) for im in images if isinstance(im, dict)}
    sizes.discard((None, None))
    if len(sizes) > 1:
        raise PosepipeError(
            path, f"images have different sizes {sorted(sizes)}; one video has one frame size"
        )
    return tuple(int(v) for v in sizes.pop()) if sizes else None


def _json_format(path: Path) -> str:
    """'mmpose' for MMPose's layouts (``instance_info`` / ``predictions``), else 'coco'."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "coco"  # the reader names the problem
    first = data[0] if isinstance(data, list) and data else None
    if isinstance(data, dict) and ("instance_info" in data or "predictions" in data):
        return "mmpose"
    if isinstance(first, dict) and ("predictions" in first or "instances" in first):
        return "mmpose"
    return "coco"


# OpenPose layouts by points per person -> indices of the COCO-17 joints (module docstring).
OPENPOSE_TO_COCO = {
    25: [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11],  # BODY_25
    18: [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10],  # COCO-18
    17: list(range(17)),  # COCO-17
    26: list(range(17)),  # HALPE-26 (Pose2Sim / Sports2D with rtmlib)
    133: list(range(17)),  # COCO-WholeBody
}
OPENPOSE_LAYOUTS = {25: "BODY_25", 18: "COCO-18", 17: "COCO-17", 26: "HALPE-26", 133: "COCO-WholeBody"}
OPENPOSE_FILE = re.compile(r"(\d+)_keypoints\.json$")


def _person_from_points(kp: np.ndarray) -> Frame | None:
    """(box (1, 4), score (1,), keypoints (1, 17, 3)) around the joints with confidence > 0, the
    score their mean confidence; None when no joint has one."""
    seen = kp[:, 2] > 0
    if not seen.any():
        return None
    xy = kp[seen, :2]
    box = np.array([[*xy.min(0), *xy.max(0)]])
    return box, np.array([kp[seen, 2].mean()]), kp[None]


def read_openpose(
    path: str | os.PathLike, *, frame_count: int
) -> tuple[list[Frame], tuple[int, int] | None, dict]:
    """Read a folder of OpenPose per-frame JSON files (module docstring)."""
    path = Path(path)
    files = {}
    for f in sorted(path.iterdir()):
        found = OPENPOSE_FILE.search(f.name)
        if not found:
            continue
        t = int(found.group(1))
        if t in files:
            raise PosepipeError(f, f"a second file for frame {t} (first: {files[t].name})")
        if t >= frame_count:
            raise PosepipeError(
                f, f"is frame {t}; the timeline has {frame_count} frames (0..{frame_count - 1})"
            )
        files[t] = f
    if not files:
        raise PosepipeError(path, "no OpenPose files (*_<frame>_keypoints.json) in this folder")
    frames, layouts = [], set()
    for t in range(frame_count):
        if t not in files:
            frames.append(_empty())
            continue
        try:
            people = json.loads(files[t].read_text(encoding="utf-8"))["people"]
            points = [np.asarray(p["pose_keypoints_2d"], dtype=np.float64) for p in people]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PosepipeError(
                files[t], f"not an OpenPose keypoints file ({type(exc).__name__}: {exc})"
            ) from exc
        persons = []
        for i, flat in enumerate(points):
            n = flat.size // 3
            if flat.ndim != 1 or flat.size % 3 or n not in OPENPOSE_TO_COCO:
                raise PosepipeError(
                    files[t],
                    f"person {i}: pose_keypoints_2d has {flat.size} numbers; expected 3 x one of "
                    f"{', '.join(f'{k} ({v})' for k, v in OPENPOSE_LAYOUTS.items())}",
                )
            layouts.add(OPENPOSE_LAYOUTS[n])
            person = _person_from_points(flat.reshape(n, 3)[OPENPOSE_TO_COCO[n]])
            if person is not None:
                persons.append(person)
        frames.append(_stack_persons(persons))
    if len(layouts) > 1:
        raise PosepipeError(path, f"files mix keypoint layouts {sorted(layouts)}; one run has one layout")
    missing = [t for t in range(frame_count) if t not in files]
    if missing:
        log.warning(
            "%s: no file for %d of %d frames (first %d); those frames have nobody",
            path, len(missing), frame_count, missing[0],
        )  # fmt: skip
    facts = {
        "layout": layouts.pop() if layouts else None,
        "missing_frame_files": {"count": len(missing), "first": missing[:10]},
        "keypoint_score": "OpenPose confidence c; box score: mean c of the joints with c > 0",
    }
    return frames, None, facts


def _stack_persons(persons: list[Frame]) -> Frame:
    if not persons:
        return _empty()
    return tuple(np.concatenate([p[i] for p in persons]) for i in range(3))  # type: ignore[return-value]


def read_mmpose(
    path: str | os.PathLike, *, frame_count: int
) -> tuple[list[Frame], tuple[int, int] | None, dict]:
    """Read MMPose prediction JSON (module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PosepipeError(path, f"cannot read as MMPose JSON ({type(exc).__name__}: {exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("instance_info"), list):
        entries = data["instance_info"]
        try:
            ids = [int(e["frame_id"]) for e in entries]
        except (KeyError, TypeError, ValueError) as exc:
            raise PosepipeError(path, f"every instance_info entry needs a frame_id ({exc})") from exc
        base = min(ids, default=0)
        if base not in (0, 1) or sorted(ids) != list(range(base, base + len(ids))):
            raise PosepipeError(
                path, "instance_info frame_ids must count 0, 1, 2, ... (or 1, 2, 3, ...) without gaps"
            )
        per_frame = [None] * len(entries)
        for i, e in zip(ids, entries, strict=True):
            per_frame[i - base] = e.get("instances", [])
        layout = f"instance_info (frame_id from {base})"
    else:
        if isinstance(data, dict) and isinstance(data.get("predictions"), list):
            per_frame = data["predictions"]
        elif isinstance(data, list) and all(isinstance(e, dict) and "predictions" in e for e in data):
            per_frame = [e["predictions"] for e in data]
        else:
            raise PosepipeError(path, "not MMPose JSON: expected instance_info or predictions (see --format)")
        layout = "predictions"
    if len(per_frame) != frame_count:
        raise PosepipeError(path, f"has {len(per_frame)} frames, the timeline has {frame_count}")
    frames = []
    for t, instances in enumerate(per_frame):
        if isinstance(instances, list) and len(instances) == 1 and isinstance(instances[0], list):
            instances = instances[0]  # the inferencer's batch of one image
        if not isinstance(instances, list):
            raise PosepipeError(path, f"frame {t}: instances must be a list, got {type(instances).__name__}")
        frames.append(
            _stack_persons([_mmpose_instance(inst, path=path, t=t, i=i) for i, inst in enumerate(instances)])
        )
    facts = {"layout": layout, "keypoint_score": "MMPose keypoint_scores"}
    return frames, None, facts


def _mmpose_instance(inst, *, path: Path, t: int, i: int) -> Frame:
    where = f"frame {t}, instance {i}"
    try:
        xy = np.asarray(inst["keypoints"], dtype=np.float64)
        scores = np.asarray(inst["keypoint_scores"], dtype=np.float64)
        box = np.asarray(inst["bbox"], dtype=np.float64).reshape(-1) if inst.get("bbox") is not None else None
        box_score = inst.get("bbox_score")
        box_score = (
            float(np.asarray(box_score, dtype=np.float64).reshape(-1)[0]) if box_score is not None else None
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PosepipeError(path, f"{where}: {type(exc).__name__}: {exc}") from exc
    if xy.shape not in ((NUM_COCO_JOINTS, 2), (NUM_COCO_JOINTS, 3)) or scores.shape != (NUM_COCO_JOINTS,):
        raise PosepipeError(
            path,
            f"{where}: keypoints must be 17 x [x, y] and keypoint_scores 17 numbers, got {xy.shape}, {scores.shape}",
        )
    kp = np.concatenate([xy[:, :2], scores[:, None]], axis=1)
    if box is None:
        box = np.array([*xy[:, :2].min(0), *xy[:, :2].max(0)])
    if box.shape != (4,):
        raise PosepipeError(path, f"{where}: bbox must be [x1, y1, x2, y2], got {box.size} numbers")
    score = float(scores.mean()) if box_score is None else box_score
    return box[None], np.array([score]), kp[None]


# ---------------------------------------------------------------------------------------------
# checks and the store


def _empty() -> Frame:
    return np.zeros((0, 4)), np.zeros(0), np.zeros((0, NUM_COCO_JOINTS, 3))


def _jsonable(value):
    """Plain JSON types for the meta (numpy scalars from pickles would not serialise)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def check_frames(frames: list[Frame], *, width: int, height: int, path: str | os.PathLike) -> None:
    """Raise PosepipeError for non-finite values, any point beyond :data:`COORDINATE_BOUND` frame sizes
    from the frame, or points that mostly fall off ``width x height``."""
    for t, (boxes, scores, keypoints) in enumerate(frames):
        for what, values in (("box", boxes), ("box score", scores), ("keypoint", keypoints)):
            if not np.all(np.isfinite(values)):
                raise PosepipeError(path, f"frame {t}: a {what} value is NaN or infinite")
    points = [np.concatenate([b.reshape(-1, 2), k[..., :2].reshape(-1, 2)]) for b, _, k in frames if len(b)]
    if not points:
        return
    xy = np.concatenate(points)
    bx, by = COORDINATE_BOUND * width, COORDINATE_BOUND * height
    far = (np.abs(xy[:, 0] - width / 2) > bx) | (np.abs(xy[:, 1] - height / 2) > by)
    if far.any():
        x, y = xy[np.argmax(far)]
        raise PosepipeError(
            path,
            f"a point lies at ({x:.4g}, {y:.4g}) px, more than {COORDINATE_BOUND} frame sizes from the "
            f"{width}x{height} frame; coordinates must be pixels of the timeline's frames",
        )
    mx, my = EXTENT_MARGIN * width, EXTENT_MARGIN * height
    outside = (xy[:, 0] < -mx) | (xy[:, 0] > width + mx) | (xy[:, 1] < -my) | (xy[:, 1] > height + my)
    if outside.mean() > EXTENT_MAX_OUTSIDE:
        raise PosepipeError(
            path,
            f"{outside.mean():.0%} of its points lie outside the timeline's {width}x{height} frames "
            f"(x {xy[:, 0].min():.0f}..{xy[:, 0].max():.0f}, y {xy[:, 1].min():.0f}..{xy[:, 1].max():.0f}); "
            "were they made on frames of another size or rotation?",
        )


def drop_below(frames: list, *, score_threshold: float) -> list:
    """Keep, per frame, the persons whose box score is at least ``score_threshold``."""
    kept = []
    for boxes, scores, keypoints in frames:
        keep = np.asarray(scores) >= score_threshold
        kept.append((np.asarray(boxes)[keep], np.asarray(scores)[keep], np.asarray(keypoints)[keep]))
    return kept


def _folder_sha256(path: Path) -> str:
    """SHA-256 over the OpenPose files of a folder: each file's name and its bytes' SHA-256, in order."""
    import hashlib

    from posepipe.weights import sha256_file

    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if OPENPOSE_FILE.search(p.name)):
        digest.update(f"{f.name} {sha256_file(f)}\n".encode())
    return digest.hexdigest()


def import_keypoints(
    path: str | os.PathLike,
    *,
    frame_count: int,
    width: int,
    height: int,
    fmt: str = "auto",
    score_threshold: float | None = None,
) -> Keypoints2D:
    """Read another tool's 2D keypoints and check them against the timeline.

    Args:
        path: a d2npz or COCO JSON file (see the module docstring).
        frame_count, width, height: of the frame timeline the keypoints must describe.
        fmt: 'auto' (by extension, then content), 'd2npz' or 'coco'.
        score_threshold: persons whose box score is lower are dropped, as the detector would (None:
            keep everyone; the stage, :func:`run_import`, applies ``keypoints2d.score_threshold``).

    Returns:
        Keypoints2D with ``frame_count`` frames: boxes (N, 4) x1, y1, x2, y2, box_scores (N,),
        keypoints (N, 17, 3) x, y, score; ``meta`` names the source file and its SHA-256.

    Raises:
        PosepipeError: unreadable file, bad shapes, a frame count or image size that differs
            from the timeline's; the message names the file and the reason.
    """
    from posepipe.weights import sha256_file

    given, path = (path if is_url(path) else Path(path)), Path(path)
    if not (path.is_file() or (path.is_dir() and fmt in ("auto", "openpose"))):  # an s3:// URL keeps its '//'
        raise PosepipeError(given, "keypoints file not found")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise PosepipeError(path, f"unknown format {fmt!r}; use one of auto, {', '.join(FORMATS)}")
    reader = {"d2npz": read_d2npz, "coco": read_coco, "openpose": read_openpose, "mmpose": read_mmpose}[fmt]
    frames, size, facts = reader(path, frame_count=frame_count)
    if size is not None and size != (width, height):
        raise PosepipeError(
            path, f"was made on {size[0]}x{size[1]} frames, the timeline's frames are {width}x{height}"
        )
    check_frames(frames, width=width, height=height, path=path)  # every field, before the threshold
    persons_in_file = sum(len(b) for b, _, _ in frames)
    if score_threshold:
        frames = drop_below(frames, score_threshold=score_threshold)
    meta = {
        "detector": f"import:{fmt}",
        "source_file": os.fspath(path),
        "source_sha256": sha256_file(path) if path.is_file() else _folder_sha256(path),
        "format": fmt,
        "score_threshold": score_threshold or 0.0,
        "image_size": [width, height],
        "frame_count": frame_count,
        "persons": int(sum(len(b) for b, _, _ in frames)),
        "persons_below_threshold": int(persons_in_file - sum(len(b) for b, _, _ in frames)),
        "frames_with_person": int(sum(len(b) > 0 for b, _, _ in frames)),
        **facts,
    }
    kp = from_frames(frames, width=width, height=height, meta=meta)
    kp.validate(path)
    return kp


def run_import(
    path: str | os.PathLike,
    *,
    timeline_json: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str = "auto",
    score_threshold: float = schema_default("keypoints2d.score_threshold"),
    frame_range: tuple[int, int] | None = None,
) -> Keypoints2D:
    """Import ``path`` for the timeline in ``timeline_json`` and write ``out`` (keypoints2d.npz);
    with ``frame_range`` ``(first, stop)``, only that shard of the timeline (the whole file is checked)."""
    from posepipe.artefacts.keypoints2d import frame_slice
    from posepipe.artefacts.timeline import load_timeline_header

    header = load_timeline_header(timeline_json)
    count, width, height = int(header["frame_count"]), int(header["width"]), int(header["height"])
    if frame_range is None:
        kp = import_keypoints(
            path, frame_count=count, width=width, height=height, fmt=fmt, score_threshold=score_threshold
        )
    else:  # the whole file is read and checked; the threshold's count is this shard's
        whole = import_keypoints(path, frame_count=count, width=width, height=height, fmt=fmt)
        shard = frame_slice(whole, *check_range(frame_range, count, path=timeline_json))
        frames = drop_below(
            [shard.frame(t) for t in range(shard.num_frames)], score_threshold=score_threshold
        )
        kept = int(sum(len(b) for b, _, _ in frames))
        meta = {**shard.meta, "score_threshold": score_threshold, "persons": kept,
                "persons_below_threshold": int(len(shard.boxes) - kept),
                "frames_with_person": int(sum(len(b) > 0 for b, _, _ in frames))}  # fmt: skip
        kp = from_frames(frames, width=width, height=height, meta=meta)
    kp.meta["timeline"] = os.fspath(timeline_json)
    save_keypoints2d(out, kp)
    log.info(
        "%s: imported %d persons in %d/%d frames from %s (%s)", out, kp.meta["persons"],
        kp.meta["frames_with_person"], kp.num_frames, path, kp.meta["format"],
    )  # fmt: skip
    return kp


def add_source_options(g) -> None:
    """Options of ``python -m posepipe keypoints2d --source file``."""
    g.add_argument(
        "--input",
        help="keypoints made by another tool: infer_video_d2 .npz, COCO results .json, MMPose prediction "
        ".json, or a folder of OpenPose *_keypoints.json files",
    )
    g.add_argument("--format", choices=("auto", *FORMATS), default="auto")


def run_source(settings: Keypoints2DSettings, inputs: SourceInputs) -> Keypoints2D:
    """``keypoints2d --source file``: import ``inputs.input_file`` for ``inputs.timeline`` (persons
    below ``settings.score_threshold`` dropped), write ``inputs.out``."""
    if not inputs.input_file:
        raise PosepipeError(
            inputs.timeline, "--source file needs --input FILE (a .npz from infer_video_d2 or COCO JSON)"
        )
    return run_import(
        inputs.input_file, timeline_json=inputs.timeline, out=inputs.out, fmt=inputs.fmt,
        score_threshold=settings.score_threshold, frame_range=inputs.frame_range,
    )  # fmt: skip
