"""The ``opensim`` stage (off by default): OpenSim scaling and inverse kinematics per person.

Reads ``world.npz`` (world frame, metres on the floor) when the world stage has run, else
``pose3d.npz`` (the lifter's root-relative camera frame); OpenSim's axes are Y up, so the world
frame's Z up becomes Y up and the camera frame is rotated so that image up is up
(:mod:`posepipe.osim.solve` gives both rotations). Writes, whole or not at all,
``results/{video}/opensim/``:

- ``model_generic.osim``: the model scaled from (posepipe's generic model, :mod:`posepipe.osim.model`,
  or the user's ``opensim.model``);
- ``<person>/`` (``person`` for the one-person selection, ``p<track>`` per track):
  ``markers.trc`` (the 17 joints, or the mapped ones, in mm, OpenSim axes, the frames where the
  person is present), ``model_scaled.osim`` (OpenSim's ScaleTool), ``ik.mot`` (the
  InverseKinematicsTool's coordinates, degrees and metres, one row per frame of the TRC) and
  ``ik_marker_errors.sto`` (per frame: ``total_squared_error`` m^2, ``marker_error_RMS`` and
  ``marker_error_max`` m, as the IK tool reports them) and ``ik_marker_locations.sto`` (per
  frame: each model marker's ground position ``{marker}_tx/_ty/_tz``, metres, OpenSim axes: with
  the generic model, the solved joint centres);
- ``angles_ik.csv`` (generic model): the IK angles that the angles stage also gives, under its
  names (:data:`ANGLE_NAMES`), in its long format ``person, frame, time, angle, value`` (degrees;
  person = track id, frame = timeline frame), to set beside ``angles.csv``;
- ``summary.json``: stage, version, frame, model, scaling, and per person: status, frames solved
  and absent (timeline frame ranges), median bones, scale factors, marker error figures (mm;
  ``marker_error_mm``: per joint, mean and maximum over the frames of the model marker's distance
  to the joint it tracks),
  IK seconds, and the reason where a person failed (the other people still get their files).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.atomic import atomic_folder
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.settings import add_option, schema_default, settings_from_args
from posepipe.skeleton import H36M_BONES, H36M_JOINTS

log = logging.getLogger(__name__)
STAGE = "opensim"
SCALINGS = ("bones", "height", "none")
# IK coordinates of the generic model -> the angles stage's names (posepipe.biomech.angles) where
# both mean the same motion with the same sign and zero pose: the hip's Z-X sequence on a pelvis
# frame built from the hip line and the root -> spine line, the knee and elbow flexion, the neck
# flexion. pelvis_rotation is about the vertical in both, positive to the left, but the model
# takes it after tilt and list (the angles stage before them): equal when the pelvis is level.
ANGLE_NAMES = {
    "hip_flexion_l": "hip_flexion_l", "hip_flexion_r": "hip_flexion_r",
    "hip_adduction_l": "hip_adduction_l", "hip_adduction_r": "hip_adduction_r",
    "knee_flexion_l": "knee_flexion_l", "knee_flexion_r": "knee_flexion_r",
    "elbow_flex_l": "elbow_flexion_l", "elbow_flex_r": "elbow_flexion_r",
    "neck_flexion": "neck_flexion", "pelvis_rotation": "pelvis_rotation",
}  # fmt: skip
ANGLES_FILE = "angles_ik.csv"
WEIGHTS = ("confidence", "uniform")
# Each Human3.6M joint's 2D score from the COCO keypoints it is made of (posepipe.skeleton orders).
COCO_OF_H36M = (
    (11, 12), (12,), (14,), (16,), (11,), (13,), (15,), (5, 6, 11, 12), (5, 6), (0,), (1, 2, 3, 4),
    (5,), (7,), (9,), (6,), (8,), (10,),
)  # fmt: skip


@dataclass(frozen=True)
class OpenSimSettings:
    """Settings of the opensim stage (config ``opensim:``); defaults are the workflow's.

    ``model``: an .osim model of the user's own (None: posepipe's generic model); ``marker_map``:
    {Human3.6M joint: model marker} for it, a dict or its JSON text (None: markers named like the
    joints); ``scaling``: one of :data:`SCALINGS`; ``height_m``: the height for ``scaling:
    height`` (None: world.npz's); ``mass_kg``: the scaled model's mass; ``accuracy``: the IK
    convergence accuracy; ``weights``: IK marker weights, one of :data:`WEIGHTS`. The section's
    ``max_marker_error_mm`` is the qc stage's warning threshold, not read here.
    """

    model: str | None = schema_default("opensim.model")
    marker_map: dict | str | None = schema_default("opensim.marker_map")
    scaling: str = schema_default("opensim.scaling")
    height_m: float | None = schema_default("opensim.height_m")
    mass_kg: float = schema_default("opensim.mass_kg")
    accuracy: float = schema_default("opensim.accuracy")
    weights: str = schema_default("opensim.weights")


def confidence_weights(scores: np.ndarray, detected: np.ndarray) -> np.ndarray | None:
    """(17,) IK marker weights: per Human3.6M joint, the median 2D score (of the COCO keypoints it
    is made of) over the frames the person was detected, over the mean of the 17 (so 1 on
    average); None without scores. OpenSim's IK takes one weight per marker for the whole trial."""
    if scores is None or not np.any(detected):
        return None
    frames = np.asarray(scores, dtype=np.float64)[np.asarray(detected, bool)]
    per_joint = np.stack([frames[:, list(c)].mean(axis=1) for c in COCO_OF_H36M], axis=1)
    median = np.nanmedian(np.where(np.isfinite(per_joint), per_joint, np.nan), axis=0)
    if not np.all(np.isfinite(median)) or median.mean() <= 0:
        return None
    return np.clip(median / median.mean(), 0.05, None)


def person_folder(track: int) -> str:
    return "person" if track < 0 else f"p{track}"


def segments(mask: np.ndarray) -> list[list[int]]:
    """[start, stop) ranges of True in a bool (T,) array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def load_marker_map(value) -> dict[str, str]:
    """{Human3.6M joint: model marker} from a dict, a JSON string or None (identity)."""
    if value in (None, "", {}):
        return {}
    mapping = json.loads(value) if isinstance(value, str) else dict(value)
    unknown = sorted(set(mapping) - set(H36M_JOINTS))
    if unknown:
        raise PosepipeError(
            None, f"opensim.marker_map names joints that are not Human3.6M joints: {', '.join(unknown)}"
        )
    return {str(k): str(v) for k, v in mapping.items()}


def read_input(world_npz, pose3d_npz, *, frame_count=None):
    """(joints (P, T, 17, 3) in OpenSim axes, time (T,), track ids (P,), heights (P,), frame name)."""
    from posepipe.osim.solve import camera_to_opensim, world_to_opensim

    if world_npz is not None:
        from posepipe.artefacts.world import load_world

        world = load_world(world_npz, frame_count=frame_count)
        return (
            world_to_opensim(world.joints),
            world.time,
            world.track_ids,
            np.asarray(world.height_m, float),
            "world",
        )
    from posepipe.artefacts.pose3d import load_pose3d

    pose = load_pose3d(pose3d_npz, frame_count=frame_count)
    P = len(pose.track_ids)
    return camera_to_opensim(pose.positions), pose.time, pose.track_ids, np.full(P, np.nan), "camera"


def check_person(where, name: str, joints: np.ndarray, used: list[str]) -> np.ndarray:
    """bool (T,) frames to solve (the root seen); PosepipeError when a used joint is never seen."""
    present = np.isfinite(joints[:, H36M_JOINTS.index("hip")]).all(axis=-1)
    if not present.any():
        raise PosepipeError(where, f"{name} is never present: nothing to solve")
    seen = np.isfinite(joints[present]).all(axis=-1).any(axis=0)
    never = [joint for joint in used if not seen[H36M_JOINTS.index(joint)]]
    if never:
        raise PosepipeError(
            where, f"{name}: {', '.join(never)} never seen (NaN in every frame): cannot scale or solve"
        )
    return present


def user_model_factor(model_path, mapping, bones) -> float:
    """One factor for every body of a user model: the person's median bones over the model's
    marker distances at its default pose, summed over the bones whose two ends are mapped."""
    from posepipe.osim.solve import model_markers

    markers = model_markers(model_path)
    num = den = 0.0
    for child, parent in H36M_BONES:
        a, b = H36M_JOINTS[child], H36M_JOINTS[parent]
        if a in mapping and b in mapping and np.isfinite(bones[(a, b)]):
            num += bones[(a, b)]
            den += float(np.linalg.norm(markers[mapping[a]] - markers[mapping[b]]))
    if den <= 0:
        raise PosepipeError(model_path, "the marker map gives no bone (two mapped joints) to scale by")
    return num / den


def run_opensim(
    *,
    out_dir: str | os.PathLike,
    world_npz: str | os.PathLike | None = None,
    pose3d_npz: str | os.PathLike | None = None,
    timeline_json: str | os.PathLike | None = None,
    settings: OpenSimSettings | None = None,
    dataset2d_npz: str | os.PathLike | None = None,
) -> dict:
    """Scale and solve every person of ``world_npz`` (or ``pose3d_npz``); write ``out_dir``
    (see the module docstring) and return the summary. ``settings``: config ``opensim:`` (None:
    the defaults); ``dataset2d_npz``: the 2D scores for ``weights: confidence``."""
    from posepipe.osim import solve
    from posepipe.osim.model import SCALE_BONES, build_generic_model, generic_bone_length

    settings = settings or OpenSimSettings()
    model, scaling, height_m = settings.model, settings.scaling, settings.height_m
    mass_kg, accuracy, weights = settings.mass_kg, settings.accuracy, settings.weights

    osim = solve.import_opensim(level="warn")
    where = world_npz if world_npz is not None else pose3d_npz
    if (world_npz is None) == (pose3d_npz is None):
        raise PosepipeError(None, "give exactly one of world.npz and pose3d.npz")
    if weights not in WEIGHTS:
        raise PosepipeError(None, f"weights {weights!r} is not one of {', '.join(WEIGHTS)}")
    if scaling not in SCALINGS:
        raise PosepipeError(None, f"scaling {scaling!r} is not one of {', '.join(SCALINGS)}")
    if height_m is not None and not height_m > 0:
        raise PosepipeError(None, f"opensim.height_m is {height_m}: a height must be positive (metres)")
    if not mass_kg > 0:
        raise PosepipeError(None, f"opensim.mass_kg is {mass_kg}: a mass must be positive")
    frame_count = fps = None
    if timeline_json is not None:
        from posepipe.artefacts.timeline import load_timeline_header

        header = load_timeline_header(timeline_json)
        frame_count, fps = int(header["frame_count"]), float(header["fps"])
    joints, times, track_ids, heights, frame = read_input(world_npz, pose3d_npz, frame_count=frame_count)
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    mapping = load_marker_map(settings.marker_map)
    scores = {}
    if weights == "confidence" and dataset2d_npz is not None:
        from posepipe.artefacts.dataset2d import load_persons2d

        scores = {ds.track_id: (ds.scores, ds.detected) for ds in load_persons2d(dataset2d_npz)}
    if model is None and mapping and any(k != v for k, v in mapping.items()):
        raise PosepipeError(
            None,
            "opensim.marker_map is for a model of your own (opensim.model): the generic model's markers are the joints",
        )
    out_dir = Path(out_dir)
    summary = {
        "stage": STAGE, "stage_version": STAGE_VERSIONS[STAGE], "input": os.fspath(where), "frame": frame,
        "axes": "OpenSim: X forward, Y up, Z right, metres" + (
            " (world frame: (x, y, z) -> (x, z, -y))" if frame == "world"
            else " (camera frame: (x, y, z) -> (z, -y, x); root-relative)"),
        "model": model or "generic", "scaling": scaling, "weights": weights, "fps": fps, "persons": [], "warnings": [],
    }  # fmt: skip
    with atomic_folder(out_dir) as tmp:
        generic = tmp / "model_generic.osim"
        if model is None:
            built = build_generic_model(mass_kg=mass_kg)
            built.initSystem()
            built.printToXML(os.fspath(generic))
            names = list(H36M_JOINTS)
            mapping = {j: j for j in H36M_JOINTS}
        else:
            if not Path(model).is_file():
                raise PosepipeError(model, "opensim.model does not exist")
            try:
                user = osim.Model(os.fspath(model))
            except Exception as exc:  # noqa: BLE001 - OpenSim raises RuntimeError with its XML reason
                raise PosepipeError(
                    model, f"OpenSim cannot read the model ({' '.join(str(exc).split())[:200]})"
                ) from None
            mapping = mapping or {j: j for j in H36M_JOINTS}
            markers = user.getMarkerSet()
            missing = [f"{j} -> {m}" for j, m in mapping.items() if not markers.contains(m)]
            if missing:
                raise PosepipeError(
                    model, f"the marker map names markers the model does not have: {', '.join(missing)}"
                )
            user.printToXML(os.fspath(generic))
            names = list(mapping)
        generic_bones = {
            (H36M_JOINTS[c], H36M_JOINTS[p]): generic_bone_length(H36M_JOINTS[c], H36M_JOINTS[p])
            for c, p in H36M_BONES
        }
        ok, angle_rows = 0, []
        for p, track in enumerate(track_ids):
            name = person_folder(int(track))
            entry = {"person": name, "track": int(track), "status": "failed"}
            summary["persons"].append(entry)
            try:
                present = check_person(where, name, joints[p], names)
                entry["frames_solved"] = segments(present)
                entry["frames_absent"] = segments(~present)
                person_joints = joints[p][present]
                bones = solve.median_bone_lengths(person_joints)
                entry["median_bones_m"] = {
                    f"{b}-{a}": round(v, 5) for (a, b), v in bones.items() if np.isfinite(v)
                }
                height = (
                    height_m if height_m is not None else (heights[p] if np.isfinite(heights[p]) else None)
                )
                if scaling == "none":
                    factors = {}
                elif scaling == "height":
                    if height is None:
                        raise PosepipeError(
                            where,
                            f"{name}: scaling: height, but no height is given (opensim.height_m or world height_m)",
                        )
                    if model is not None:
                        raise PosepipeError(
                            model,
                            "scaling: height needs the generic model (its stature is known); use scaling: bones",
                        )
                    from posepipe.osim.model import GENERIC_HEIGHT_M

                    k = height / GENERIC_HEIGHT_M
                    factors = {body: (k, k, k) for body in SCALE_BONES}
                elif model is None:
                    try:
                        factors = solve.bone_scale_factors(bones, generic_bones)
                    except ValueError as exc:
                        raise PosepipeError(where, f"{name}: {exc}") from None
                else:
                    k = user_model_factor(generic, mapping, bones)
                    user_model = osim.Model(os.fspath(generic))  # kept: its body set lives in it
                    bodies = user_model.getBodySet()
                    factors = {bodies.get(i).getName(): (k, k, k) for i in range(bodies.getSize())}
                entry["scale_factors"] = {b: [round(v, 5) for v in f] for b, f in factors.items()}
                found = confidence_weights(*scores[int(track)]) if int(track) in scores else None
                joint_weights = dict.fromkeys(H36M_JOINTS, 1.0)
                if found is not None:
                    joint_weights = {j: float(w) for j, w in zip(H36M_JOINTS, found, strict=True)}
                entry["weights"] = "confidence" if found is not None else "uniform"
                entry["marker_weights"] = {j: round(joint_weights[j], 4) for j in names}
                folder = tmp / name
                folder.mkdir()
                columns = [H36M_JOINTS.index(j) for j in names]
                markers = person_joints[:, columns]
                solve.write_trc(
                    folder / "markers.trc", markers, times[present], [mapping[j] for j in names], rate=fps
                )
                scaled = folder / "model_scaled.osim"
                if factors:
                    solve.scale_model(generic, scaled, factors, mass_kg=mass_kg, workdir=folder)
                else:
                    scaled.write_bytes(generic.read_bytes())
                started = time.perf_counter()
                try:
                    solve.run_ik(
                        scaled, folder / "markers.trc", folder / "ik.mot", folder / "ik_marker_errors.sto",
                        weights={mapping[j]: joint_weights[j] for j in names}, accuracy=accuracy, initial_markers=markers, initial_joints=names,
                        locations=folder / "ik_marker_locations.sto",
                    )  # fmt: skip
                except RuntimeError as exc:  # OpenSim's own failure on a frame
                    raise PosepipeError(
                        where, f"{name}: OpenSim IK failed ({' '.join(str(exc).split())[:200]})"
                    ) from None
                entry["ik_seconds"] = round(time.perf_counter() - started, 3)
                _, _, errors = solve.read_storage(folder / "ik_marker_errors.sto")
                rms, peak = errors[:, 1] * 1000.0, errors[:, 2] * 1000.0
                entry["marker_rms_mm"] = {
                    "mean": round(float(rms.mean()), 3),
                    "max": round(float(rms.max()), 3),
                }
                entry["marker_max_mm"] = {
                    "mean": round(float(peak.mean()), 3),
                    "max": round(float(peak.max()), 3),
                }
                fitted = solve.marker_locations(
                    folder / "ik_marker_locations.sto", [mapping[j] for j in names]
                )
                entry["marker_error_mm"] = joint_errors(fitted, markers, names)
                if model is None:
                    ik_names, _, ik_values = solve.read_storage(folder / "ik.mot")
                    frames = np.flatnonzero(present)
                    for coordinate, angle in ANGLE_NAMES.items():
                        column = ik_values[:, ik_names.index(coordinate)]
                        angle_rows += [
                            (int(track), int(f), float(times[f]), angle, float(v))
                            for f, v in zip(frames, column, strict=True)
                        ]
                entry["status"] = "ok"
                ok += 1
            except PosepipeError as exc:
                entry["reason"] = exc.reason
                summary["warnings"].append(str(exc))
                log.warning("%s", exc)
                if (tmp / name).exists():
                    import shutil

                    shutil.rmtree(tmp / name)
        if not ok:
            reasons = "; ".join(e.get("reason", "") for e in summary["persons"]) or "no person in the file"
            raise PosepipeError(where, f"no person could be solved: {reasons}")
        if model is None:
            write_angles(tmp / ANGLES_FILE, angle_rows)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("%s: %d of %d person(s) solved into %s", where, ok, len(track_ids), out_dir)
    return summary


def joint_errors(fitted: np.ndarray, markers: np.ndarray, names) -> dict[str, dict]:
    """{joint: {"mean", "max"}} IK marker error (mm) per joint: the distance between the solved
    model's marker (``fitted`` (N, M, 3), the IK tool's marker locations) and the joint it tracks
    (``markers`` (N, M, 3), the TRC's), over the frames where the joint is given (None if never)."""
    distance = np.linalg.norm(fitted - markers, axis=-1) * 1000.0
    out = {}
    for j, name in enumerate(names):
        d = distance[:, j][np.isfinite(distance[:, j])]
        out[name] = {"mean": round(float(d.mean()), 3), "max": round(float(d.max()), 3)} if len(d) else None
    return out


def write_angles(path: Path, rows: list[tuple]) -> None:
    """The angles stage's long format, sorted by person, angle, frame (inside the atomic folder)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        table = csv.writer(fh)
        table.writerow(["person", "frame", "time", "angle", "value"])
        order = {name: i for i, name in enumerate(ANGLE_NAMES.values())}
        for person, frame, t, angle, value in sorted(rows, key=lambda r: (r[0], order[r[3]], r[1])):
            table.writerow([person, frame, f"{t:.6f}", angle, f"{value:.4f}"])


def register_cli(sub) -> None:
    p = sub.add_parser(
        "opensim",
        help="OpenSim scaling and inverse kinematics of each person (needs the opensim package)",
        description="Scale an OpenSim model to each person (OpenSim's ScaleTool) and solve the joints with "
        "OpenSim's InverseKinematicsTool: a scaled .osim, the coordinates .mot and per-frame marker errors per "
        "person in OUT_DIR. Needs OpenSim's Python package: pip install 'posepipe[opensim]' (or pip install "
        "opensim). README.md, section OpenSim scaling and inverse kinematics.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", type=Path, help="the world stage's world.npz (world frame)")
    source.add_argument(
        "--pose3d", type=Path, help="the lift3d stage's pose3d.npz (camera frame, root-relative)"
    )
    p.add_argument(
        "--out-dir", type=Path, required=True, help="the folder to (re)write, e.g. results/VIDEO/opensim"
    )
    p.add_argument(
        "--timeline",
        type=Path,
        default=None,
        help="frames/timeline.json: the rate, and the frame count checked",
    )
    add_option(
        p, "--model", key="opensim.model", help="an .osim model of your own (unset: posepipe's generic model)"
    )
    add_option(
        p, "--marker-map", key="opensim.marker_map", type=str,
        help="JSON {Human3.6M joint: model marker} for --model (unset: markers named like the joints)",
    )  # fmt: skip
    add_option(
        p,
        "--scaling",
        key="opensim.scaling",
        choices=SCALINGS,
        help="scale by median bone lengths, by height, or not",
    )
    add_option(
        p,
        "--height-m",
        key="opensim.height_m",
        type=float,
        help="subject height for --scaling height (metres)",
    )
    add_option(
        p, "--mass-kg", key="opensim.mass_kg", type=float, help="subject mass (kg) of the scaled model"
    )
    add_option(p, "--accuracy", key="opensim.accuracy", type=float, help="IK convergence accuracy")
    add_option(
        p, "--weights", key="opensim.weights", choices=WEIGHTS,
        help="IK marker weights: each joint's median 2D score (needs --dataset2d), or all 1",
    )  # fmt: skip
    p.add_argument(
        "--dataset2d", type=Path, default=None, help="dataset2d.npz: the 2D scores for --weights confidence"
    )

    def run(args: argparse.Namespace) -> None:
        marker_map = args.marker_map
        if isinstance(marker_map, str):
            try:
                marker_map = json.loads(marker_map) if marker_map else None
            except ValueError as exc:
                raise PosepipeError(None, f"--marker-map is not JSON ({exc})") from None
        settings = settings_from_args(OpenSimSettings, args, marker_map=marker_map)
        run_opensim(
            out_dir=args.out_dir, world_npz=args.world, pose3d_npz=args.pose3d, timeline_json=args.timeline,
            settings=settings, dataset2d_npz=args.dataset2d,
        )  # fmt: skip

    p.set_defaults(handler=run)
