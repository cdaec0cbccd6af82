"""OpenSim inverse kinematics time on this machine: seconds per 1,000 frames of the opensim stage.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_opensim.py --frames 1000 --accuracy 1e-6

A walking-like motion (every coordinate of posepipe's generic model moving, one cycle a second at
50 fps) is set on the generic model scaled 1.1 by OpenSim's ScaleTool; the joint centres come from
OpenSim's forward kinematics and go through the stage (world.npz in, TRC, scaling from median
bones, InverseKinematicsTool). Printed as JSON: the stage's wall seconds, the IK seconds, both per
1,000 frames, the marker RMS and each coordinate's RMS and largest error (degrees), and the CPU seconds (less
sensitive to other jobs than the wall time). The machine's load
average is printed beside them: IK is single-threaded, so other jobs on the cores slow it.

Beside it, in the same run: the lift3d time for the same number of frames
(``lift3d_s_per_1000_frames``): the published VideoPose3D architecture (filter widths 3,3,3,3,3,
1024 channels, random weights: the time does not depend on them) with test-time flip
augmentation, as the stage runs it on the CPU (``posepipe.lift3d.infer.predict``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from posepipe.artefacts.world import World, save_world
from posepipe.osim import solve
from posepipe.osim.model import PELVIS_TRANSLATIONS, SCALE_BONES, build_generic_model
from posepipe.osim.stage import OpenSimSettings, run_opensim
from posepipe.skeleton import H36M_JOINTS

FPS = 50.0


def walking(n: int) -> dict[str, np.ndarray]:
    t = np.arange(n) / FPS
    w = 2 * np.pi * t
    deg = np.radians
    motion = {
        "pelvis_tx": 1.2 * t, "pelvis_ty": 1.02 + 0.02 * np.sin(2 * w), "pelvis_tz": 0.03 * np.sin(w),
        "pelvis_rotation": deg(5 * np.sin(w)), "pelvis_tilt": deg(3 * np.sin(2 * w)), "pelvis_list": deg(4 * np.sin(w)),
        "lumbar_extension": deg(-5 + 3 * np.sin(2 * w)), "lumbar_bending": deg(3 * np.cos(w)),
        "lumbar_rotation": deg(6 * np.sin(w)), "neck_flexion": deg(5 + 3 * np.sin(2 * w)),
        "neck_bending": deg(2 * np.sin(w)), "neck_rotation": deg(5 * np.sin(w)),
    }  # fmt: skip
    for side, phase in (("r", 0.0), ("l", np.pi)):
        motion |= {
            f"hip_flexion_{side}": deg(10 + 25 * np.sin(w + phase)), f"hip_adduction_{side}": deg(3 * np.sin(w + phase)),
            f"hip_rotation_{side}": deg(5 * np.sin(w + phase)), f"knee_flexion_{side}": deg(30 + 28 * np.sin(w + phase + 1)),
            f"arm_flex_{side}": deg(20 * np.sin(w + phase + np.pi)), f"arm_add_{side}": deg(-8 + 3 * np.sin(w)),
            f"arm_rot_{side}": deg(10 * np.sin(w)), f"elbow_flex_{side}": deg(40 + 20 * np.sin(w)),
        }  # fmt: skip
    return motion


def lift3d_seconds(frames: int) -> float:
    """Wall seconds of lift3d's inference on ``frames`` frames (published architecture, CPU)."""
    import torch

    from posepipe.lift3d.infer import normalize_screen_coordinates, predict
    from posepipe.lift3d.model import TemporalCNN

    torch.manual_seed(0)
    model = TemporalCNN(
        num_joints_in=17, num_joints_out=17, filter_widths=(3, 3, 3, 3, 3), channels=1024
    ).eval()
    pixels = np.random.default_rng(0).uniform(0, 1000, (frames, 17, 2)).astype(np.float32)
    norm = normalize_screen_coordinates(pixels, width=1920, height=1080)
    predict(
        model, norm[: model.receptive_field], flip=True, window=None, device=torch.device("cpu")
    )  # warm-up
    started = time.perf_counter()
    predict(model, norm, flip=True, window=None, device=torch.device("cpu"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--accuracy", type=float, default=1e-6)
    args = parser.parse_args()
    osim = solve.import_opensim(level="warn")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_generic_model()
        model.initSystem()
        model.printToXML(str(tmp / "generic.osim"))
        solve.scale_model(tmp / "generic.osim", tmp / "subject.osim", {b: (1.1,) * 3 for b in SCALE_BONES},
                          mass_kg=75.0, workdir=tmp)  # fmt: skip
        truth = walking(args.frames)
        markers = solve.forward_kinematics(osim.Model(str(tmp / "subject.osim")), truth, H36M_JOINTS)
        joints = np.stack([markers[..., 0], -markers[..., 2], markers[..., 1]], axis=-1)[None]
        T = args.frames
        save_world(tmp / "world.npz", World(
            joints=joints, root=joints[:, :, 0], root_camera=joints[:, :, 0], camera_matrix=np.eye(3),
            dist_coeffs=np.zeros(0), lens="pinhole", image_size=np.array([1920, 1080]), R_world_camera=np.eye(3),
            t_world_camera=np.zeros(3), floor=np.array([0.0, -1, 0, 1.5]), contacts=np.zeros((1, T, 2), bool),
            reprojection_px=np.zeros((1, T)), scale=np.ones(1), height_m=np.full(1, np.nan),
            track_ids=np.full(1, -1), time=np.arange(T) / FPS,
            meta={"intrinsics_source": "assumed", "scale_source": "lifter", "floor_source": "contacts"},
        ))  # fmt: skip
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_opensim(
            out_dir=tmp / "opensim",
            world_npz=tmp / "world.npz",
            settings=OpenSimSettings(accuracy=args.accuracy),
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        names, _, values = solve.read_storage(tmp / "opensim" / "person" / "ik.mot")
        worst = {
            c: round(float(np.max(np.abs(values[:, names.index(c)] - np.degrees(v)))), 4)
            for c, v in truth.items()
            if c not in PELVIS_TRANSLATIONS
        }
        rms = {
            c: round(float(np.sqrt(np.mean((values[:, names.index(c)] - np.degrees(v)) ** 2))), 4)
            for c, v in truth.items()
            if c not in PELVIS_TRANSLATIONS
        }
    person = summary["persons"][0]
    lift = lift3d_seconds(T)
    print(json.dumps({
        "frames": T, "accuracy": args.accuracy, "stage_s_per_1000_frames": round(wall / T * 1000, 2),
        "stage_cpu_s_per_1000_frames": round(cpu / T * 1000, 2),
        "ik_s_per_1000_frames": round(person["ik_seconds"] / T * 1000, 2),
        "lift3d_s_per_1000_frames": round(lift / T * 1000, 2), "marker_rms_mm": person["marker_rms_mm"],
        "max_error_deg": worst, "rms_error_deg": rms, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
