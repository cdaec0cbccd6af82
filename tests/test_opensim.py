"""The opensim stage against known truth built with OpenSim itself.

Coordinates are set over time on posepipe's generic model (a gait-like cycle of every coordinate:
pelvis travel and turn, trunk, neck, hips, knees, shoulders, elbows), scaled by OpenSim's
ScaleTool to a subject 10 % longer; the joint centres come from OpenSim's forward kinematics and
go in as a world.npz (Z up). The stage writes the TRC, scales the generic model from the median
bones and solves IK: the scale factors, coordinates and marker errors are compared with the truth.
Skipped where OpenSim's Python package is not installed (the extra ``posepipe[opensim]``).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("opensim")

from posepipe.artefacts.world import World, save_world  # noqa: E402
from posepipe.errors import PosepipeError  # noqa: E402
from posepipe.osim import solve  # noqa: E402
from posepipe.osim.model import COORDINATES, PELVIS_TRANSLATIONS, SCALE_BONES, build_generic_model  # noqa: E402
from posepipe.osim.stage import OpenSimSettings, run_opensim  # noqa: E402
from posepipe.skeleton import H36M_JOINTS  # noqa: E402

osim = solve.import_opensim()  # without OpenSim's opensim.log in the working folder

FPS = 50.0
FRAMES = 30
SUBJECT_SCALE = 1.1
ACCURACY = 1e-6


def truth_motion(n: int = FRAMES) -> dict[str, np.ndarray]:
    """{coordinate: (n,) rad or m}: one gait-like cycle, every free coordinate moving."""
    t = np.arange(n) / FPS
    w = 2 * np.pi * t / (n / FPS)
    deg = np.radians
    motion = {
        "pelvis_tx": 0.4 * t, "pelvis_ty": 1.02 + 0.02 * np.sin(2 * w), "pelvis_tz": 0.05 * np.sin(w),
        "pelvis_rotation": deg(150 + 10 * np.sin(w)), "pelvis_tilt": deg(5 * np.sin(w)), "pelvis_list": deg(4 * np.sin(w)),
        "lumbar_extension": deg(-10 + 5 * np.sin(w)), "lumbar_bending": deg(5 * np.cos(w)),
        "lumbar_rotation": deg(8 * np.sin(w)), "neck_flexion": deg(10 + 5 * np.sin(w)),
        "neck_bending": deg(3 * np.sin(w)), "neck_rotation": deg(10 * np.sin(w)),
    }  # fmt: skip
    for side, phase in (("r", 0.0), ("l", np.pi)):
        motion |= {
            f"hip_flexion_{side}": deg(15 + 25 * np.sin(w + phase)), f"hip_adduction_{side}": deg(3 * np.sin(w + phase)),
            f"hip_rotation_{side}": deg(5 * np.sin(w + phase)), f"knee_flexion_{side}": deg(35 + 25 * np.sin(w + phase + 1)),
            f"arm_flex_{side}": deg(20 * np.sin(w + phase + np.pi)), f"arm_add_{side}": deg(-10 + 3 * np.sin(w)),
            f"arm_rot_{side}": deg(10 * np.sin(w)), f"elbow_flex_{side}": deg(50 + 20 * np.sin(w)),
        }  # fmt: skip
    return motion


def opensim_to_world(points: np.ndarray) -> np.ndarray:
    """The inverse of solve.world_to_opensim: (X, Y, Z) -> (X, -Z, Y)."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def world_file(path, joints_world: np.ndarray, *, height_m=np.nan) -> None:
    """A world.npz in the contract's layout for (P, T, 17, 3) joints (only joints and time matter here)."""
    P, T = joints_world.shape[:2]
    root = joints_world[:, :, 0]
    save_world(path, World(
        joints=joints_world, root=root, root_camera=root, camera_matrix=np.array([[1000.0, 0, 960], [0, 1000, 540], [0, 0, 1]]),
        dist_coeffs=np.zeros(0), lens="pinhole", image_size=np.array([1920, 1080]), R_world_camera=np.eye(3),
        t_world_camera=np.zeros(3), floor=np.array([0.0, -1, 0, 1.5]), contacts=np.zeros((P, T, 2), bool),
        reprojection_px=np.zeros((P, T)), scale=np.ones(P), height_m=np.full(P, height_m),
        track_ids=np.full(P, -1) if P == 1 else np.arange(P), time=np.arange(T) / FPS,
        meta={"intrinsics_source": "assumed", "scale_source": "lifter", "floor_source": "contacts"},
    ))  # fmt: skip


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """(truth coordinates, markers (T, 17, 3) OpenSim metres) of the generic model scaled by 1.1."""
    work = tmp_path_factory.mktemp("subject")
    model = build_generic_model()
    model.initSystem()
    model.printToXML(str(work / "generic.osim"))
    factors = {body: (SUBJECT_SCALE,) * 3 for body in SCALE_BONES}
    solve.scale_model(work / "generic.osim", work / "subject.osim", factors, mass_kg=80.0, workdir=work)
    truth = truth_motion()
    markers = solve.forward_kinematics(osim.Model(str(work / "subject.osim")), truth, H36M_JOINTS)
    return truth, markers


@pytest.fixture(scope="module")
def solved_truth(subject, tmp_path_factory):
    """The stage run once on the subject's noise-free joints: (truth, world joints, out folder, summary)."""
    truth, markers = subject
    work = tmp_path_factory.mktemp("solved")
    world = opensim_to_world(markers)[None]
    world_file(work / "world.npz", world)
    summary = run_opensim(
        out_dir=work / "opensim", world_npz=work / "world.npz", settings=OpenSimSettings(accuracy=ACCURACY)
    )
    return truth, world, work / "opensim", summary


def solved(folder):
    names, times, values = solve.read_storage(folder / "ik.mot")
    return dict(zip(names, values.T, strict=True)), times


def coordinate_errors(truth, ik) -> dict[str, float]:
    """RMS error per coordinate: degrees (rotations), millimetres (pelvis translations)."""
    out = {}
    for name, values in truth.items():
        want = values * 1000.0 if name in PELVIS_TRANSLATIONS else np.degrees(values)
        got = ik[name] * 1000.0 if name in PELVIS_TRANSLATIONS else ik[name]
        out[name] = float(np.sqrt(np.mean((got - want) ** 2)))
    return out


def test_known_motion_comes_back(solved_truth):
    truth, _, out, summary = solved_truth
    person = summary["persons"][0]
    assert person["status"] == "ok" and summary["frame"] == "world"
    for body, factors in person["scale_factors"].items():
        assert np.allclose(factors, SUBJECT_SCALE, atol=1e-4), body
    folder = out / "person"
    assert sorted(p.name for p in folder.iterdir()) == [
        "ik.mot",
        "ik_marker_errors.sto",
        "ik_marker_locations.sto",
        "markers.trc",
        "model_scaled.osim",
    ]
    ik, times = solved(folder)
    assert np.allclose(times, np.arange(FRAMES) / FPS)
    errors = coordinate_errors(truth, ik)
    print("noise-free RMS error per coordinate (deg; pelvis translations mm):", json.dumps(errors))
    rotations = {k: v for k, v in errors.items() if k not in PELVIS_TRANSLATIONS}
    assert max(rotations.values()) < 0.5, rotations
    assert max(errors[k] for k in PELVIS_TRANSLATIONS) < 1.0
    assert person["marker_rms_mm"]["max"] < 1.0
    assert np.allclose(ik["ankle_angle_r"], 0) and np.allclose(
        ik["ankle_angle_l"], 0
    )  # locked: no foot points
    print("noise-free marker RMS mm", person["marker_rms_mm"], "max", person["marker_max_mm"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["persons"][0]["frames_solved"] == [[0, FRAMES]]


def test_noisy_joints(subject, tmp_path):
    """1 cm Gaussian noise per axis on every joint: the errors are stated, and bounded."""
    truth, markers = subject
    rng = np.random.default_rng(0)
    noisy = markers + rng.normal(0.0, 0.01, markers.shape)
    world_file(tmp_path / "world.npz", opensim_to_world(noisy)[None])
    summary = run_opensim(
        out_dir=tmp_path / "opensim",
        world_npz=tmp_path / "world.npz",
        settings=OpenSimSettings(accuracy=ACCURACY),
    )
    ik, _ = solved(tmp_path / "opensim" / "person")
    errors = coordinate_errors(truth, ik)
    print("1 cm noise: RMS error per coordinate (deg; pelvis translations mm):", json.dumps(errors))
    print("1 cm noise: marker RMS mm", summary["persons"][0]["marker_rms_mm"])
    assert np.median(list(errors.values())) < 5.0
    assert 5.0 < summary["persons"][0]["marker_rms_mm"]["mean"] < 20.0


def test_trc_opens_in_opensims_reader(subject, tmp_path):
    truth, markers = subject
    solve.write_trc(tmp_path / "m.trc", markers, np.arange(FRAMES) / FPS, H36M_JOINTS, rate=FPS)
    table = osim.TRCFileAdapter().read(str(tmp_path / "m.trc"))["markers"]
    assert list(table.getColumnLabels()) == list(H36M_JOINTS)
    assert table.getTableMetaDataAsString("DataRate") == "50"
    assert table.getTableMetaDataAsString("Units") == "mm"
    assert table.getNumRows() == FRAMES
    names, times, values, meta = solve.read_trc(tmp_path / "m.trc")  # OpenSim's TimeSeriesTableVec3
    assert names == list(H36M_JOINTS) and np.allclose(times, np.arange(FRAMES) / FPS)
    assert np.allclose(values, markers * 1000.0) and meta["Units"] == "mm"


def test_axes_are_rotations():
    for convert in (solve.world_to_opensim, solve.camera_to_opensim):
        R = convert(np.eye(3))
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(solve.world_to_opensim([0, 0, 1]), [0, 1, 0])  # world up -> OpenSim up
    assert np.allclose(solve.camera_to_opensim([0, -1, 0]), [0, 1, 0])  # image up -> OpenSim up


def test_model_limits_and_coordinates():
    model = build_generic_model()
    state = model.initSystem()
    coords = model.getCoordinateSet()
    assert [coords.get(i).getName() for i in range(coords.getSize())] == list(COORDINATES)
    knee = coords.get("knee_flexion_r")
    assert knee.getDefaultClamped() and np.isclose(np.degrees(knee.getRangeMax()), 160)
    assert coords.get("ankle_angle_l").getLocked(state)
    masses = sum(model.getBodySet().get(i).getMass() for i in range(model.getBodySet().getSize()))
    assert np.isclose(masses, 75.0)


def test_one_frame(subject, tmp_path):
    _, markers = subject
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:1])[None])
    summary = run_opensim(
        out_dir=tmp_path / "opensim",
        world_npz=tmp_path / "world.npz",
        settings=OpenSimSettings(accuracy=ACCURACY),
    )
    assert summary["persons"][0]["status"] == "ok"
    ik, times = solved(tmp_path / "opensim" / "person")
    assert len(times) == 1


def test_leg_never_seen(subject, tmp_path):
    _, markers = subject
    world = opensim_to_world(markers[:3])[None].copy()
    world[:, :, H36M_JOINTS.index("left_knee")] = np.nan
    world_file(tmp_path / "world.npz", world)
    with pytest.raises(PosepipeError, match="left_knee never seen") as err:
        run_opensim(
            out_dir=tmp_path / "opensim",
            world_npz=tmp_path / "world.npz",
            settings=OpenSimSettings(accuracy=ACCURACY),
        )
    assert "world.npz" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "opensim").exists()


def test_absent_frames_are_left_out(subject, tmp_path):
    _, markers = subject
    world = opensim_to_world(markers[:6])[None].copy()
    world[:, 2:4] = np.nan
    world_file(tmp_path / "world.npz", world)
    summary = run_opensim(
        out_dir=tmp_path / "opensim",
        world_npz=tmp_path / "world.npz",
        settings=OpenSimSettings(accuracy=ACCURACY),
    )
    assert summary["persons"][0]["frames_absent"] == [[2, 4]]
    _, times = solved(tmp_path / "opensim" / "person")
    assert np.allclose(times, np.array([0, 1, 4, 5]) / FPS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"height_m": 0.0}, "a height must be positive"),
        ({"scaling": "height"}, "no height is given"),
        (
            {"model": "MODEL", "marker_map": {"right_knee": "RKJC"}},
            "markers the model does not have: right_knee -> RKJC",
        ),
        ({"marker_map": {"right_knee": "RKJC"}}, "for a model of your own"),
        ({"marker_map": {"kneecap": "RKJC"}}, "not Human3.6M joints: kneecap"),
    ],
)
def test_bad_settings(subject, tmp_path, options, message):
    _, markers = subject
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:2])[None])
    if options.get("model") == "MODEL":
        model = build_generic_model()
        model.initSystem()
        model.printToXML(str(tmp_path / "user.osim"))
        options = {**options, "model": str(tmp_path / "user.osim")}
    with pytest.raises(PosepipeError, match=message) as err:
        run_opensim(
            out_dir=tmp_path / "opensim",
            world_npz=tmp_path / "world.npz",
            settings=OpenSimSettings(accuracy=ACCURACY, **options),
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "opensim").exists()


def test_user_model_with_marker_map(subject, tmp_path):
    """A model of the user's own whose markers have other names: the map finds them."""
    _, markers = subject
    model = build_generic_model()
    model.initSystem()
    renamed = {joint: f"M_{joint.upper()}" for joint in H36M_JOINTS}
    for joint, name in renamed.items():
        model.updMarkerSet().get(joint).setName(name)
    model.printToXML(str(tmp_path / "user.osim"))
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:4])[None])
    summary = run_opensim(
        out_dir=tmp_path / "opensim", world_npz=tmp_path / "world.npz",
        settings=OpenSimSettings(model=str(tmp_path / "user.osim"), marker_map=renamed, accuracy=ACCURACY),
    )  # fmt: skip
    person = summary["persons"][0]
    assert (
        person["status"] == "ok" and person["marker_rms_mm"]["max"] < 15.0
    )  # one factor for a 10 % larger body
    assert np.allclose(next(iter(person["scale_factors"].values())), SUBJECT_SCALE, atol=0.01)
    names, _, _, _ = solve.read_trc(tmp_path / "opensim" / "person" / "markers.trc")
    assert names == [renamed[j] for j in H36M_JOINTS]


def test_missing_opensim_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensim", None)  # import opensim -> ImportError
    with pytest.raises(PosepipeError, match=r"pip install 'posepipe\[opensim\]'"):
        solve.import_opensim()


def test_camera_frame_through_the_cli(subject, tmp_path, capsys):
    """pose3d.npz (no world stage): the lifter's camera frame, rotated so that image up is up."""
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d
    from posepipe.cli import main

    _, markers = subject
    root_relative = markers[:5] - markers[:5, :1]
    camera = np.stack(
        [root_relative[..., 2], -root_relative[..., 1], root_relative[..., 0]], axis=-1
    )  # inverse
    assert np.allclose(solve.camera_to_opensim(camera), root_relative)
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(camera, camera, np.arange(5) / FPS))
    assert (
        main(["opensim", "--pose3d", str(tmp_path / "pose3d.npz"), "--out-dir", str(tmp_path / "out")]) == 0
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frame"] == "camera" and summary["persons"][0]["marker_rms_mm"]["max"] < 1.0
    ik, _ = solved(tmp_path / "out" / "person")
    assert np.allclose(ik["pelvis_tx"], 0, atol=1e-3)  # root-relative: the pelvis stays at the origin
    assert main(["opensim", "--pose3d", str(tmp_path / "pose3d.npz"), "--out-dir", str(tmp_path / "o2"),
                 "--scaling", "height"]) == 1  # fmt: skip
    assert "no height is given" in capsys.readouterr().err


def test_height_scaling(subject, tmp_path):
    """One factor for every body: the height over the generic model's stature."""
    from posepipe.osim.model import GENERIC_HEIGHT_M

    _, markers = subject
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:3])[None], height_m=1.925)
    summary = run_opensim(
        out_dir=tmp_path / "o",
        world_npz=tmp_path / "world.npz",
        settings=OpenSimSettings(scaling="height", accuracy=ACCURACY),
    )
    factors = np.array(list(summary["persons"][0]["scale_factors"].values()))
    assert np.allclose(factors, 1.925 / GENERIC_HEIGHT_M)  # from world.npz's height_m
    assert summary["persons"][0]["marker_rms_mm"]["max"] < 1.0  # 1.925 / 1.75 = 1.1: the subject's scale


@pytest.mark.workflow
def test_workflow_with_opensim_enabled(tmp_path):
    """A 10-frame clip with imported keypoints and a random lifter: with opensim.enabled the run
    plans and makes results/alpha/opensim; by default the stage is not planned at all."""
    from posepipe.testing import add_video, random_checkpoint
    from tests.snakemake_run import planned_jobs, snakemake

    add_video(tmp_path, "alpha", seed=1)
    random_checkpoint(tmp_path / "lifter.bin")
    config = {
        "input": {"directory": "videos"}, "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": "lifter.bin"}, "render": {"enabled": False},
    }  # fmt: skip
    assert not any(rule == "opensim" for rule, _ in planned_jobs(tmp_path, config=config))
    enabled = {**config, "opensim": {"enabled": True}}
    assert ("opensim", "alpha") in planned_jobs(tmp_path, config=enabled)
    snakemake(tmp_path, "--cores", "2", config=enabled)
    out = tmp_path / "results" / "alpha" / "opensim"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["persons"][0]["status"] == "ok", summary
    assert {p.name for p in (out / "person").iterdir()} == {
        "ik.mot",
        "ik_marker_errors.sto",
        "ik_marker_locations.sto",
        "markers.trc",
        "model_scaled.osim",
    }
    assert not (tmp_path / "opensim.log").exists()
    qc = json.loads((tmp_path / "results" / "alpha" / "qc" / "qc.json").read_text())
    assert qc["opensim"]["persons"][0]["marker_error_mm"] == summary["persons"][0]["marker_error_mm"]


def test_ik_angles_beside_the_angles_stage(solved_truth):
    """angles_ik.csv: the IK angles under the angles stage's names, against compute_angles on the
    same joints (noise-free: the same definitions give the same numbers)."""
    import pandas as pd

    from posepipe.biomech.angles import compute_angles
    from posepipe.osim.stage import ANGLE_NAMES

    _, world, out, _ = solved_truth
    table = pd.read_csv(out / "angles_ik.csv")
    assert list(table.columns) == ["person", "frame", "time", "angle", "value"]
    values, names = compute_angles(world, up=(0, 0, 1))
    for angle in ANGLE_NAMES.values():
        ik = table[table.angle == angle].sort_values("frame")["value"].to_numpy()
        stage = values[0, :, list(names).index(angle)]
        gap = float(np.max(np.abs(ik - stage)))
        print(angle, "max |IK - angles stage| deg:", gap)
        assert gap < (1.0 if angle == "pelvis_rotation" else 0.1), angle  # rotation: other Cardan order


def test_confidence_weights_from_the_2d_scores(subject, tmp_path):
    """Each marker's IK weight: its joint's median 2D score (COCO keypoints it is made of) over the
    mean of the 17, recorded in summary.json; absent 2D file: uniform, and the summary says so."""
    from posepipe.artefacts.dataset2d import Dataset2D, save_dataset2d
    from posepipe.osim.stage import COCO_OF_H36M, confidence_weights

    _, markers = subject
    T = 3
    coco = np.tile(np.linspace(0.2, 1.0, 17), (T, 1)).astype(np.float32)  # keypoint k scores coco[k]
    detected = np.ones(T, bool)
    want = np.array([coco[0, list(c)].mean() for c in COCO_OF_H36M])
    want /= want.mean()
    assert np.allclose(confidence_weights(coco, detected), want)
    assert confidence_weights(None, detected) is None
    save_dataset2d(tmp_path / "dataset2d.npz", Dataset2D(
        name="a", keypoints=np.zeros((T, 17, 2), np.float32), width=64, height=48, detected=detected, scores=coco,
        box_scores=np.ones(T, np.float32), boxes=np.zeros((T, 4), np.float32),
    ))  # fmt: skip
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:T])[None])
    summary = run_opensim(
        out_dir=tmp_path / "o", world_npz=tmp_path / "world.npz", dataset2d_npz=tmp_path / "dataset2d.npz",
        settings=OpenSimSettings(accuracy=ACCURACY),
    )  # fmt: skip
    person = summary["persons"][0]
    assert person["weights"] == "confidence" and person["status"] == "ok"
    assert np.allclose([person["marker_weights"][j] for j in H36M_JOINTS], want, atol=1e-4)
    summary = run_opensim(
        out_dir=tmp_path / "u", world_npz=tmp_path / "world.npz", settings=OpenSimSettings(accuracy=ACCURACY)
    )
    assert summary["persons"][0]["weights"] == "uniform"
    assert set(summary["persons"][0]["marker_weights"].values()) == {1.0}


def test_per_joint_marker_errors_in_qc(solved_truth, tmp_path):
    """summary.json's per-joint IK marker error equals the distance between the solved model's
    markers (forward kinematics of ik.mot on model_scaled.osim, recomputed here) and the TRC's
    joints; qc (through its CLI) puts it in qc.json's opensim section and qc.html, and warns
    when a joint's mean error is above the threshold."""
    from posepipe.artefacts.qc import load_qc
    from posepipe.cli import main
    from tests.test_qc import _write_video

    _, _, out, summary = solved_truth
    person = summary["persons"][0]
    ik, _ = solved(out / "person")
    coordinates = {
        k: (v if k in PELVIS_TRANSLATIONS else np.radians(v)) for k, v in ik.items() if k != "time"
    }
    model = osim.Model(str(out / "person" / "model_scaled.osim"))
    fitted = solve.forward_kinematics(model, coordinates, H36M_JOINTS)
    _, _, trc, _ = solve.read_trc(out / "person" / "markers.trc")
    distance = np.linalg.norm(fitted - trc / 1000.0, axis=-1) * 1000.0
    for j, joint in enumerate(H36M_JOINTS):
        got = person["marker_error_mm"][joint]
        assert got["mean"] == pytest.approx(distance[:, j].mean(), abs=2e-3), joint
        assert got["max"] == pytest.approx(distance[:, j].max(), abs=2e-3), joint
    assert max(e["max"] for e in person["marker_error_mm"].values()) == pytest.approx(
        person["marker_max_mm"]["max"], abs=2e-3
    )  # the IK tool's own per-frame maximum
    _write_video(tmp_path, several=False)
    base = ["qc", str(tmp_path / "frames/timeline.json"), "--keypoints2d", str(tmp_path / "keypoints2d.npz"),
            "--dataset2d", str(tmp_path / "dataset2d.npz"), "--pose3d", str(tmp_path / "pose3d.npz")]  # fmt: skip
    assert main([*base, "--out-dir", str(tmp_path / "qc"), "--opensim", str(out)]) == 0
    report = load_qc(tmp_path / "qc" / "qc.json")
    assert report["opensim"]["max_marker_error_mm"] == 30.0  # the schema's default
    assert report["opensim"]["persons"][0]["marker_error_mm"] == person["marker_error_mm"]
    assert not any("OpenSim" in w for w in report["warnings"])  # noise-free: well under 30 mm
    page = (tmp_path / "qc" / "qc.html").read_text()
    assert "OpenSim IK marker error per joint" in page and "right_knee" in page
    limit = min(e["mean"] for e in person["marker_error_mm"].values()) / 2
    assert main([*base, "--out-dir", str(tmp_path / "q2"), "--opensim", str(out),
                 "--max-ik-marker-error-mm", str(limit)]) == 0  # fmt: skip
    warnings = load_qc(tmp_path / "q2" / "qc.json")["warnings"]
    worst = max(H36M_JOINTS, key=lambda j: person["marker_error_mm"][j]["mean"])
    assert [w for w in warnings if "OpenSim" in w] == [
        f"person: OpenSim IK marker error {person['marker_error_mm'][worst]['mean']:.0f} mm at {worst} "
        f"(mean; 17 joint(s) over {limit:g} mm)"
    ]


def test_bvh_from_the_ik_result(solved_truth, tmp_path):
    """export.bvh_source: opensim: the BVH holds the solved joint centres (the IK tool's model
    markers); its bones are the scaled model's, constant to 1e-6 m, and its forward kinematics
    (bvhio) gives the IK joint centres back; the other formats and the default BVH are unchanged."""
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d
    from posepipe.exports.stage import ExportSettings, run_export
    from posepipe.skeleton import H36M_BONES

    bvhio = pytest.importorskip("bvhio")
    _, world, out, _ = solved_truth
    T = world.shape[1]
    camera = np.zeros((T, 17, 3), np.float32) + np.arange(17)[:, None] * 0.1  # not the IK joints
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(camera, camera, np.arange(T) / FPS))
    centres = solve.marker_locations(out / "person" / "ik_marker_locations.sto", H36M_JOINTS)
    lengths = np.stack([np.linalg.norm(centres[:, c] - centres[:, p], axis=-1) for c, p in H36M_BONES], 1)
    assert np.ptp(lengths, axis=0).max() < 1e-6  # metres: the scaled model's bones
    (path,) = run_export(tmp_path / "pose3d.npz", fmt="bvh", out_dir=tmp_path / "bvh", video_id="v",
                         settings=ExportSettings(bvh_source="opensim"), opensim_dir=out)  # fmt: skip
    root = bvhio.readAsHierarchy(str(path))
    fk = np.empty((T, 17, 3))
    for k in range(T):
        root.loadPose(k)
        for joint, _, _ in root.layout():
            if joint.Name in H36M_JOINTS:
                fk[k, H36M_JOINTS.index(joint.Name)] = np.array(joint.PositionWorld) / 100.0
    worst = float(np.abs(fk - centres).max())
    print("BVH (opensim) forward kinematics vs IK joint centres, max mm:", worst * 1000)
    assert worst < 1e-5  # 0.01 mm (bvhio computes in float32)
    fk_lengths = np.stack([np.linalg.norm(fk[:, c] - fk[:, p], axis=-1) for c, p in H36M_BONES], 1)
    assert np.abs(fk_lengths - lengths).max() < 1e-5
    (default,) = run_export(tmp_path / "pose3d.npz", fmt="bvh", out_dir=tmp_path / "b2", video_id="v")
    (trc,) = run_export(tmp_path / "pose3d.npz", fmt="trc", out_dir=tmp_path / "t", video_id="v",
                        settings=ExportSettings(bvh_source="opensim"), opensim_dir=out)  # fmt: skip
    (trc_default,) = run_export(tmp_path / "pose3d.npz", fmt="trc", out_dir=tmp_path / "t2", video_id="v")
    assert default.read_text() != path.read_text() and trc.read_text() == trc_default.read_text()
    with pytest.raises(PosepipeError, match="needs the opensim stage's folder"):
        run_export(
            tmp_path / "pose3d.npz",
            fmt="bvh",
            out_dir=tmp_path / "b3",
            video_id="v",
            settings=ExportSettings(bvh_source="opensim"),
        )


def test_cli_without_opensim_gives_one_line(subject, tmp_path, monkeypatch, capsys):
    """With OpenSim's package missing (import opensim fails), the opensim command stops with one
    line naming how to install it, and writes nothing."""
    from posepipe.cli import main

    _, markers = subject
    world_file(tmp_path / "world.npz", opensim_to_world(markers[:3])[None])
    monkeypatch.setitem(sys.modules, "opensim", None)  # import opensim -> ImportError
    assert main(["opensim", "--world", str(tmp_path / "world.npz"), "--out-dir", str(tmp_path / "out")]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "the opensim stage needs OpenSim's Python package: pip install 'posepipe[opensim]'" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_exported_trc_opens_in_opensims_reader(tmp_path):
    """The export stage's TRC (posepipe/exports/trc.py, our own writer) read by OpenSim's
    TRCFileAdapter, a real client: rate, units, marker names and values, with absent frames."""
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d
    from posepipe.exports.motion import y_up
    from posepipe.exports.stage import run_export
    from tests.test_qc import rigid_skeleton

    T, fps = 30, 30000 / 1001
    camera = rigid_skeleton(T, seed=3)
    display = rigid_skeleton(T, seed=4) + [0, 0, 1.0]
    camera[:5] = display[:5] = np.nan  # the person arrives at frame 5
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(positions=camera, display=display, time=np.arange(T) / fps,
                                                meta={"fps": fps}))  # fmt: skip
    (trc,) = run_export(tmp_path / "pose3d.npz", fmt="trc", out_dir=tmp_path / "trc", video_id="v")
    table = osim.TRCFileAdapter().read(str(trc))["markers"]
    assert list(table.getColumnLabels()) == list(H36M_JOINTS)
    assert float(table.getTableMetaDataAsString("DataRate")) == pytest.approx(fps)
    assert table.getTableMetaDataAsString("Units") == "mm"
    assert table.getNumRows() == T - 5
    table = osim.TimeSeriesTableVec3(str(trc))  # the same reader, as a table of Vec3
    times = np.array([table.getIndependentColumn()[i] for i in range(table.getNumRows())])
    np.testing.assert_allclose(times, np.arange(5, T) / fps, atol=1e-6)
    row = table.getRowAtIndex(3)
    read = np.array([[row[j].get(k) for k in range(3)] for j in range(len(H36M_JOINTS))])
    np.testing.assert_allclose(read, y_up(display[8]) * 1000, atol=1e-3)
