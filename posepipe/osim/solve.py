"""Markers, scaling and inverse kinematics through OpenSim's own tools (``opensim`` 4.6 API).

Axes: OpenSim is Y up. posepipe's world frame (``world.npz``) is Z up, X forward from the camera,
Y to the left; it becomes OpenSim's (X, Y, Z) = (x, z, -y) (:func:`world_to_opensim`), a rotation
(determinant +1). Without a world frame, the lifter's camera frame (OpenCV: x right, y down, z
forward) becomes (X, Y, Z) = (z, -y, x) (:func:`camera_to_opensim`): image up is up, and the
pelvis stays at the origin (the lifter's poses are root-relative).

- TRC: written by OpenSim's ``TRCFileAdapter`` (millimetres), one marker per joint.
- Scaling: OpenSim's ``ScaleTool`` with a manual scale set: per body and axis, the person's median
  bone length over the generic model's (:data:`posepipe.osim.model.SCALE_BONES`), or one factor
  for every body from the height (the height over :data:`posepipe.osim.model.GENERIC_HEIGHT_M`).
  Medians, not the means that measurement-based scaling takes, so a few wild frames do not
  change the subject.
- IK: OpenSim's ``InverseKinematicsTool`` on the TRC, one ``IKMarkerTask`` per marker (weights
  given), coordinate ranges as bounds; it writes the ``.mot`` (degrees) and the per-frame marker
  errors (``total_squared_error``, ``marker_error_RMS``, ``marker_error_max``, metres).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posepipe.errors import PosepipeError
from posepipe.skeleton import H36M_BONES, H36M_JOINTS

INSTALL_HINT = "pip install 'posepipe[opensim]' (or pip install opensim)"


def import_opensim(*, level: str | None = None):
    """The ``opensim`` module, or a PosepipeError saying how to install it. OpenSim's log goes to
    the job's log only (at ``level`` when given): its default file sink would write
    ``opensim.log`` into the working folder (opensim 4.6 adds that sink when its logger starts
    and on a level change, so it is removed after both)."""
    try:
        import opensim
    except ImportError as exc:
        raise PosepipeError(
            None, f"the opensim stage needs OpenSim's Python package: {INSTALL_HINT} ({exc})"
        ) from None
    opensim.Logger.getLevelString()  # starts the logger (and its file sink)
    if level is not None:
        opensim.Logger.setLevelString(level)
    opensim.Logger.removeFileSink()
    return opensim


def world_to_opensim(points: np.ndarray) -> np.ndarray:
    """posepipe world (Z up, Y left) -> OpenSim (Y up, Z right): (x, y, z) -> (x, z, -y)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def camera_to_opensim(points: np.ndarray) -> np.ndarray:
    """Camera (x right, y down, z forward) -> OpenSim (Y up): (x, y, z) -> (z, -y, x)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., 2], -points[..., 1], points[..., 0]], axis=-1)


def median_bone_lengths(joints: np.ndarray) -> dict[tuple[str, str], float]:
    """{(child, parent): median length (m)} over the frames where both ends are finite (NaN if never)."""
    out = {}
    for child, parent in H36M_BONES:
        lengths = np.linalg.norm(joints[:, child] - joints[:, parent], axis=-1)
        lengths = lengths[np.isfinite(lengths)]
        out[(H36M_JOINTS[child], H36M_JOINTS[parent])] = float(np.median(lengths)) if len(lengths) else np.nan
    return out


def bone_scale_factors(bones: dict[tuple[str, str], float], generic: dict[tuple[str, str], float]) -> dict:
    """{body: (sx, sy, sz)} for the generic model from the person's median bones
    (:data:`posepipe.osim.model.SCALE_BONES`); raises PosepipeError-free ValueError naming a bone
    that is never seen."""
    from posepipe.osim.model import SCALE_BONES

    factors = {}
    for body, axes in SCALE_BONES.items():
        values = []
        for pairs in axes:
            if pairs is None:
                values.append(None)
                continue
            ratios = []
            for pair in pairs:
                length = bones[pair]
                if not np.isfinite(length) or length <= 0:
                    raise ValueError(
                        f"the bone {pair[1]}-{pair[0]} is never seen (no length to scale {body} by)"
                    )
                ratios.append(length / generic[pair])
            values.append(float(np.mean(ratios)))
        known = [v for v in values if v is not None]
        fill = float(np.mean(known))
        factors[body] = tuple(fill if v is None else v for v in values)
    return factors


def write_trc(path: str | os.PathLike, markers: np.ndarray, times: np.ndarray, names, *, rate: float) -> None:
    """A TRC of ``markers`` (N, M, 3) OpenSim metres (NaN: missing) at ``times`` (N,), in mm,
    written by OpenSim's ``TRCFileAdapter``."""
    osim = import_opensim()
    table = osim.TimeSeriesTableVec3()
    labels = osim.StdVectorString()  # filled one by one: a Python list would go through SWIG's
    for name in names:  # std::vector<std::string> typemap, which ezc3d's module (also SWIG) can
        labels.push_back(str(name))  # hold when both are imported in one process
    table.setColumnLabels(labels)
    mm = np.asarray(markers, dtype=np.float64) * 1000.0
    for t, frame in zip(times, mm, strict=True):
        row = osim.RowVectorVec3([osim.Vec3(*map(float, p)) for p in frame])
        table.appendRow(float(t), row)
    for key, value in (
        ("DataRate", f"{rate:.10g}"), ("CameraRate", f"{rate:.10g}"), ("Units", "mm"),
        ("OrigDataRate", f"{rate:.10g}"), ("OrigDataStartFrame", "1"), ("OrigNumFrames", str(len(times))),
    ):  # fmt: skip
        table.addTableMetaDataString(key, value)
    osim.TRCFileAdapter().write(table, os.fspath(path))


def read_trc(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """(marker names, times (N,), markers (N, M, 3) in the file's units, {meta key: value}) by
    OpenSim's own reader."""
    osim = import_opensim()
    table = osim.TimeSeriesTableVec3(os.fspath(path))
    names = list(table.getColumnLabels())
    times = np.array(table.getIndependentColumn())
    values = np.array(
        [
            [[table.getRowAtIndex(i)[j][k] for k in range(3)] for j in range(len(names))]
            for i in range(len(times))
        ]
    ).reshape(len(times), len(names), 3)
    meta = {key: table.getTableMetaDataAsString(key) for key in table.getTableMetaDataKeys()}
    return names, times, values, meta


def scale_model(
    generic: str | os.PathLike,
    out: str | os.PathLike,
    factors: dict,
    *,
    mass_kg: float,
    workdir: str | os.PathLike,
) -> None:
    """Scale the model file ``generic`` by ``factors`` {body: (sx, sy, sz)} with OpenSim's
    ScaleTool (manual scale set, mass distribution preserved, total ``mass_kg``) into ``out``."""
    osim = import_opensim()
    tool = osim.ScaleTool()
    tool.setName("posepipe_scale")
    tool.setSubjectMass(float(mass_kg))
    tool.setPathToSubject(os.fspath(workdir) + os.sep)
    tool.getGenericModelMaker().setModelFileName(os.path.abspath(generic))
    scaler = tool.getModelScaler()
    scaler.setApply(True)
    scaler.setScalingOrder(osim.ArrayStr("manualScale", 1))
    scaler.setPreserveMassDist(True)
    scale_set = scaler.getScaleSet()
    for body, (sx, sy, sz) in factors.items():
        scale = osim.Scale()
        scale.setName(body)
        scale.setSegmentName(body)
        scale.setScaleFactors(osim.Vec3(float(sx), float(sy), float(sz)))
        scale.setApply(True)
        scale_set.cloneAndAppend(scale)
    scaler.setOutputModelFileName(os.path.abspath(out))
    tool.getMarkerPlacer().setApply(False)
    Path(out).unlink(missing_ok=True)
    tool.run()  # returns False without a marker placement step, even after writing the model
    if not Path(out).exists():
        raise PosepipeError(generic, "OpenSim's ScaleTool did not write the scaled model")


def model_markers(model_path: str | os.PathLike, coordinates: dict | None = None) -> dict[str, np.ndarray]:
    """{marker: ground position (m)} of a model file, at its default pose with ``coordinates``
    {name: value (rad or m)} set (OpenSim forward kinematics)."""
    osim = import_opensim()
    model = osim.Model(os.fspath(model_path))
    state = model.initSystem()
    for name, value in (coordinates or {}).items():
        model.getCoordinateSet().get(name).setValue(state, float(value), False)
    model.realizePosition(state)
    out = {}
    markers = model.getMarkerSet()
    for i in range(markers.getSize()):
        p = markers.get(i).getLocationInGround(state)
        out[markers.get(i).getName()] = np.array([p.get(0), p.get(1), p.get(2)])
    return out


def forward_kinematics(model, coordinates: dict[str, np.ndarray], names) -> np.ndarray:
    """(N, M, 3) ground positions (m) of the markers ``names`` of an ``opensim.Model`` for the
    coordinate values over time {coordinate: (N,) rad or m} (the others at their defaults)."""
    state = model.initSystem()
    coords = model.getCoordinateSet()
    markers = [model.getMarkerSet().get(name) for name in names]
    n = len(next(iter(coordinates.values())))
    out = np.empty((n, len(markers), 3))
    for i in range(n):
        for name, values in coordinates.items():
            coords.get(name).setValue(state, float(values[i]), False)
        model.realizePosition(state)
        for j, marker in enumerate(markers):
            p = marker.getLocationInGround(state)
            out[i, j] = (p.get(0), p.get(1), p.get(2))
    return out


def set_initial_pelvis(model, markers: np.ndarray, names) -> None:
    """Start IK near the first frame: the pelvis's default translation at the root marker and its
    rotation about the vertical from the hip line (OpenSim's IK starts the first frame from the
    model's defaults; a subject facing away from +X would otherwise start 180 degrees off)."""
    index = {name: i for i, name in enumerate(names)}
    first = markers[0]
    coords = model.updCoordinateSet()
    root = first[index["hip"]] if "hip" in index else np.nanmean(first, axis=0)
    if np.all(np.isfinite(root)):
        for axis, name in enumerate(("pelvis_tx", "pelvis_ty", "pelvis_tz")):
            if coords.contains(name):
                coords.get(name).setDefaultValue(float(root[axis]))
    if {"right_hip", "left_hip"} <= set(index) and coords.contains("pelvis_rotation"):
        d = first[index["right_hip"]] - first[index["left_hip"]]
        if np.all(np.isfinite(d)):
            coords.get("pelvis_rotation").setDefaultValue(float(np.arctan2(d[0], d[2])))


def run_ik(
    model_path: str | os.PathLike,
    trc: str | os.PathLike,
    mot: str | os.PathLike,
    errors: str | os.PathLike,
    *,
    weights: dict[str, float],
    locations: str | os.PathLike | None = None,
    accuracy: float,
    initial_markers: np.ndarray | None = None,
    initial_joints: list[str] | None = None,
) -> None:
    """OpenSim's InverseKinematicsTool on ``trc`` with the model ``model_path``: writes the
    coordinates ``mot`` (degrees) and the per-frame marker errors ``errors`` (.sto, metres).
    ``weights``: {model marker: IK weight} (markers left out are not tracked); ``locations``: where
    to put the model markers' ground positions per frame (.sto, metres; the tool's
    ``report_marker_locations``), or None;
    ``initial_markers`` (N, M, 3) with their Human3.6M ``initial_joints`` place the pelvis for the
    first frame (:func:`set_initial_pelvis`)."""
    osim = import_opensim()
    model = osim.Model(os.fspath(model_path))
    if initial_markers is not None:
        set_initial_pelvis(model, initial_markers, initial_joints or list(weights))
    model.initSystem()
    names, times, _, _ = read_trc(trc)
    tool = osim.InverseKinematicsTool()
    tool.setName("posepipe")
    tool.setModel(model)
    tool.setMarkerDataFileName(os.fspath(trc))
    tool.setStartTime(float(times[0]))
    tool.setEndTime(float(times[-1]))
    tool.set_accuracy(float(accuracy))
    tool.set_report_errors(True)
    tool.set_report_marker_locations(locations is not None)
    workdir = Path(mot).parent
    tool.setResultsDir(os.fspath(workdir))
    tool.setOutputMotionFileName(os.fspath(mot))
    tasks = tool.upd_IKTaskSet()
    for name, weight in weights.items():
        task = osim.IKMarkerTask()
        task.setName(name)
        task.setWeight(float(weight))
        task.setApply(True)
        tasks.cloneAndAppend(task)
    if not tool.run():
        raise PosepipeError(trc, "OpenSim's InverseKinematicsTool failed")
    written = workdir / "posepipe_ik_marker_errors.sto"
    if not written.exists():
        raise PosepipeError(trc, "OpenSim's InverseKinematicsTool wrote no marker errors")
    os.replace(written, errors)
    if locations is not None:
        written = workdir / "posepipe_ik_model_marker_locations.sto"
        if not written.exists():
            raise PosepipeError(trc, "OpenSim's InverseKinematicsTool wrote no marker locations")
        os.replace(written, locations)


def marker_locations(path: str | os.PathLike, names) -> np.ndarray:
    """(N, M, 3) model marker positions (m) of ``names`` from the IK tool's marker locations
    (.sto columns ``{marker}_tx``, ``_ty``, ``_tz``)."""
    columns, _, values = read_storage(path)
    index = {name: i for i, name in enumerate(columns)}
    try:
        picks = [[index[f"{name}_{axis}"] for axis in ("tx", "ty", "tz")] for name in names]
    except KeyError as exc:
        raise PosepipeError(path, f"has no column {exc.args[0]}") from None
    return values[:, np.array(picks)]


def read_storage(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(column names, times (N,), values (N, C)) of a .mot / .sto by OpenSim's own reader."""
    osim = import_opensim()
    table = osim.TimeSeriesTable(os.fspath(path))
    names = list(table.getColumnLabels())
    times = np.array(table.getIndependentColumn())
    values = table.getMatrix().to_numpy() if len(times) else np.zeros((0, len(names)))
    return names, times, np.asarray(values).reshape(len(times), len(names))
