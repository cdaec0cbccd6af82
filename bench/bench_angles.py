"""Joint-angle accuracy of posepipe.biomech.angles on skeletons posed with known angles (the
figures of the README's Joint angles section), and its speed.

    python bench/bench_angles.py [--frames 1000] [--seed 0]

- exact: the largest error over the posed cases of tests/test_angles.py (each angle alone,
  combined, a gait cycle), float64 joints and float32 joints (what world.npz / pose3d.npz hold).
- noise: ``--frames`` random poses (every setting of tests/test_angles.py's skeleton uniform in
  :data:`RANGES`: shoulder elevation 20-150, knee 0-120, elbow 10-140 degrees, ...) with
  independent Gaussian noise on every joint coordinate (sigma 5 mm, 1 cm, 2 cm; segments 0.25-0.45
  m long): per angle the RMS and 95th percentile of the absolute error in degrees against the
  noise-free joints.
- tilt: a camera tilted down by 10 degrees read in the camera frame (up = camera -Y): the error
  of trunk flexion, i.e. what the world stage's floor removes.
- speed: compute_angles seconds per 1,000 frames of one person.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posepipe.biomech.angles import ANGLE_NAMES, CAMERA_UP, compute_angles  # noqa: E402
from tests.test_angles import CASES, check, gait, pose, to_world  # noqa: E402


def exact_errors() -> tuple[float, float]:
    """Largest |error| in degrees over the posed cases and the gait cycle: float64, float32."""
    worst = {np.float64: 0.0, np.float32: 0.0}
    for dtype in worst:
        for settings, expected in CASES.values():
            got, _ = compute_angles(to_world(pose(**settings)).astype(dtype))
            check(dict(zip(ANGLE_NAMES, got, strict=True)), expected, tol=1.0)
            for name, value in zip(ANGLE_NAMES, got, strict=True):
                if np.isfinite(value):
                    want = expected.get(name, 0.0)
                    worst[dtype] = max(worst[dtype], abs((value - want + 180) % 360 - 180))
        joints, truth = gait(201)
        got, _ = compute_angles(joints.astype(dtype))
        for name, curve in truth.items():
            worst[dtype] = max(worst[dtype], float(np.abs(got[:, ANGLE_NAMES.index(name)] - curve).max()))
    return worst[np.float64], worst[np.float32]


RANGES = {  # settings of tests.test_angles.pose: uniform in these ranges (degrees)
    "rotation": (-180, 180), "bend": (-20, 20), "flexion": (-10, 40), "twist": (-30, 30), "neck": (-20, 40),
    **{f"{k}_{side}": r for side in "lr" for k, r in (
        ("hip_flex", (-20, 90)), ("hip_add", (-30, 20)), ("hip_rot", (-40, 40)), ("knee", (0, 120)),
        ("plane", (-60, 150)), ("elev", (20, 150)), ("arm_rot", (-60, 60)), ("elbow", (10, 140)))},
}  # fmt: skip


def random_poses(n: int, rng) -> np.ndarray:
    """(n, 17, 3) world joints of poses with every setting uniform in :data:`RANGES`."""
    return np.stack([to_world(pose(**{k: rng.uniform(*r) for k, r in RANGES.items()})) for _ in range(n)])


def noise_table(frames: int, seed: int) -> dict[float, dict[str, tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    joints = random_poses(frames, rng)
    clean, _ = compute_angles(joints)
    table = {}
    for sigma in (0.005, 0.01, 0.02):
        noisy, _ = compute_angles(joints + rng.normal(0, sigma, joints.shape))
        error = noisy - clean
        circular = np.array([("rotation" in n or "plane" in n) for n in ANGLE_NAMES])  # -180..180
        error = np.where(circular, (error + 180) % 360 - 180, error)
        row = {}
        for a, name in enumerate(ANGLE_NAMES):
            e = np.abs(error[:, a])
            e = e[np.isfinite(e)]
            row[name] = (
                (float(np.sqrt(np.mean(e**2))), float(np.percentile(e, 95))) if len(e) else (np.nan, np.nan)
            )
        table[sigma] = row
    return table


def tilt_error(tilt_deg: float = 10.0) -> float:
    joints, truth = gait(101)
    t = np.radians(tilt_deg)
    z = np.array([np.cos(t), 0, -np.sin(t)])
    x = np.array([0.0, -1.0, 0.0])
    R = np.stack([x, np.cross(z, x), z], axis=1)
    camera = joints @ R
    got, _ = compute_angles(camera, up=CAMERA_UP)
    return float(np.abs(got[:, ANGLE_NAMES.index("trunk_flexion")] - truth["trunk_flexion"]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    f64, f32 = exact_errors()
    print(f"exact: largest error float64 {f64:.2e} deg, float32 joints {f32:.2e} deg")
    table = noise_table(args.frames, args.seed)
    print("noise: per angle RMS / p95 absolute error (deg) for joint noise sigma 5 mm, 1 cm, 2 cm")
    for name in ANGLE_NAMES:
        cells = "  ".join(f"{table[s][name][0]:6.2f} / {table[s][name][1]:6.2f}" for s in table)
        print(f"  {name:22s} {cells}")
    print(f"tilt: camera tilted 10 deg, camera frame: trunk flexion off by {tilt_error():.2f} deg on average")
    joints, _ = gait(1000)
    start = time.perf_counter()
    for _ in range(5):
        compute_angles(joints)
    print(f"speed: {(time.perf_counter() - start) / 5:.4f} s per 1,000 frames of one person")


if __name__ == "__main__":
    main()
