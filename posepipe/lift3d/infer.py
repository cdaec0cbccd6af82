"""Inference of the temporal CNN (pure numerics on arrays; the ``lift3d`` driver is :mod:`posepipe.lift3d.stage`).

Follows what upstream ``run.py --evaluate ... --render --viz-export`` does for a custom video:

1. normalise pixels: ``x / w * 2 - [1, h / w]`` (x in [-1, 1], aspect ratio kept);
2. pad by repeating the edge frames, (RF - 1) / 2 on each side (causal: RF - 1 at the start);
3. run the model; with flip augmentation also on a mirrored copy (x negated, COCO left/right
   swapped), mirror its output back (x negated, Human3.6M left/right swapped) and average;
4. add the trajectory model's output when the checkpoint has one.

The model runs over windows of output frames that overlap by RF - 1 input frames, so memory does
not grow with the length of the video; the valid convolutions make the result equal to one pass
over the whole sequence (up to float rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from posepipe import gpu
from posepipe.conditioning import model_times, resample
from posepipe.errors import PosepipeError
from posepipe.lift3d import DEFAULT_WINDOW
from posepipe.lift3d.checkpoint import Checkpoint
from posepipe.progress import Progress
from posepipe.skeleton import COCO_LEFT, COCO_RIGHT, H36M_LEFT, H36M_RIGHT, flip_permutation

log = logging.getLogger(__name__)

# Orientation of a Human3.6M camera (w, x, y, z), camera-to-world; upstream uses it to show custom videos.
H36M_DISPLAY_QUATERNION = np.array(
    [0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088], dtype=np.float32
)

ProgressFn = Callable[[int, int], None]


def normalize_screen_coordinates(xy: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) float32 with [0, w] mapped to [-1, 1] and the aspect ratio kept.

    Rounded as upstream: the scaling in float32, the offset in float64, the result in float32.
    """
    scaled = np.asarray(xy, dtype=np.float32) / np.float32(width) * np.float32(2)
    return (scaled - np.array([1.0, height / width])).astype(np.float32)


def pad_sequence(x: np.ndarray, *, pad: int, causal: bool = False) -> np.ndarray:
    """(T, ...) -> (T + 2 * pad, ...) by repeating the first/last frame; causal puts all 2 * pad before."""
    before, after = (2 * pad, 0) if causal else (pad, pad)
    return np.pad(x, [(before, after)] + [(0, 0)] * (x.ndim - 1), mode="edge")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """:func:`posepipe.gpu.resolve_device` as a ``torch.device``."""
    return torch.device(gpu.resolve_device(str(device)))


def run_windowed(
    model: torch.nn.Module,
    padded: torch.Tensor,
    *,
    window: int | None = DEFAULT_WINDOW,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Apply ``model`` to an already padded batch, ``window`` output frames at a time.

    padded: (B, T + RF - 1, J, F) on any device. Returns (B, T, J_out, 3) float32 on the CPU.
    ``window`` None or <= 0: one pass over the whole sequence (memory grows with T). ``device``
    None: the model's own.
    """
    rf = model.receptive_field
    total = padded.shape[1] - rf + 1
    if total < 1:
        raise ValueError(f"padded input has {padded.shape[1]} frames, fewer than the receptive field {rf}")
    device = next(model.parameters()).device if device is None else torch.device(device)
    step = total if window is None or window <= 0 else int(window)
    out = torch.empty((padded.shape[0], total, model.num_joints_out, 3), dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, total, step):
            stop = min(start + step, total)
            chunk = padded[:, start : stop + rf - 1].to(device=device, dtype=torch.float32, non_blocking=True)
            out[:, start:stop] = model(chunk).to("cpu")
            if progress is not None:
                progress(stop, total)
    return out


def predict(
    model: torch.nn.Module,
    keypoints: np.ndarray,
    *,
    flip: bool = True,
    window: int | None = DEFAULT_WINDOW,
    device: torch.device | str | None = None,
    kps_left: Sequence[int] = COCO_LEFT,
    kps_right: Sequence[int] = COCO_RIGHT,
    joints_left: Sequence[int] | None = H36M_LEFT,
    joints_right: Sequence[int] | None = H36M_RIGHT,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Run one model over a normalised sequence, with padding and optional flip augmentation.

    keypoints: (T, J_in, 2) normalised x, y. Returns float32 (T, J_out, 3).
    ``joints_left``/``joints_right`` None: no output joint swap (trajectory model).
    The model must already be on ``device`` (None: wherever it is) and in eval mode.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    padded = pad_sequence(keypoints, pad=model.pad, causal=model.causal)
    batch = [padded]
    if flip:
        mirrored = padded[:, flip_permutation(tuple(kps_left), tuple(kps_right), padded.shape[1])].copy()
        mirrored[..., 0] *= -1
        batch.append(mirrored)
    out = run_windowed(
        model, torch.from_numpy(np.stack(batch)), window=window, device=device, progress=progress
    )
    if not flip:
        return out[0].numpy()
    back = out[1]
    if joints_left is not None:
        back = back[
            :, torch.from_numpy(flip_permutation(tuple(joints_left), tuple(joints_right), back.shape[1]))
        ]
    back[..., 0] *= -1
    return ((out[0] + back) / 2).numpy()


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternion q (4,) (w, x, y, z), in float32 like upstream."""
    q = torch.as_tensor(np.asarray(q, np.float32)).expand(*v.shape[:-1], 4)
    v = torch.as_tensor(np.asarray(v, np.float32))
    axis = q[..., 1:]
    uv = torch.cross(axis, v, dim=-1)
    uuv = torch.cross(axis, uv, dim=-1)
    return (v + 2 * (q[..., :1] * uv + uuv)).numpy()


def camera_to_display(
    positions: np.ndarray, *, quaternion: np.ndarray = H36M_DISPLAY_QUATERNION
) -> np.ndarray:
    """Camera-space poses (T, J, 3) -> z-up display frame: rotate camera-to-world with the fixed
    Human3.6M orientation (no translation), then shift so the lowest z of the whole sequence is 0."""
    world = qrot(quaternion, positions)
    finite = np.isfinite(world).all(axis=(-2, -1))  # frames where a person is absent stay NaN
    if finite.any():
        world[..., 2] -= np.min(world[finite][..., 2])
    return world.astype(np.float32)


def place_side_by_side(
    display: np.ndarray,
    keypoints: np.ndarray,
    *,
    width: int,
    quaternion: np.ndarray = H36M_DISPLAY_QUATERNION,
) -> np.ndarray:
    """Spread several people's display poses (P, T, 17, 3) along the floor as they stand in the image.

    Without a trajectory model every person's root is at the origin. Each person is moved, frame by
    frame, along the display-frame direction of the camera's x axis (image right, projected onto the
    floor) by ``(hip x / width - 0.5) * span``, hip x from the 2D keypoints (P, T, 17, 2) and ``span``
    = max(2 m, 1 m per person): the 3D panel keeps the image's left-to-right order, and people move
    apart and together smoothly as they do in the video (no jumps when they cross).
    """
    direction = qrot(quaternion, np.array([[1.0, 0.0, 0.0]], np.float32))[0].astype(np.float64)
    direction[2] = 0.0
    direction /= max(np.linalg.norm(direction), 1e-9)
    span = max(2.0, 1.0 * len(display))
    hips = keypoints[:, :, [11, 12], 0].astype(np.float64).mean(axis=-1)  # COCO left/right hip
    offset = (hips / width - 0.5) * span  # NaN where a person is absent, as their poses are
    return (display + offset[..., None, None] * direction).astype(np.float32)


def _progress_logger(label: str, *, every_s: float = 10.0) -> ProgressFn:
    """A ``progress(done, total)`` callback that logs through :class:`posepipe.progress.Progress`."""
    meter = Progress(0, label=label, logger=log, every=every_s)  # the total comes with the first call
    return lambda done, total: meter.update(done, total=total)


def lift_keypoints(
    keypoints: np.ndarray,
    *,
    width: int,
    height: int,
    checkpoint: Checkpoint,
    flip: bool = True,
    window: int | None = DEFAULT_WINDOW,
    device: torch.device | str = "auto",
    label: str = "lift3d",
) -> np.ndarray:
    """2D pixels (T, 17, 2) in COCO order -> camera-space 3D (T, 17, 3) float32 in Human3.6M order, metres.

    Root-relative unless the checkpoint has a trajectory model, whose output is added as upstream does.
    """
    device = resolve_device(device)
    arch = checkpoint.architecture
    if (arch.num_joints_in, arch.in_features) != keypoints.shape[1:]:
        raise PosepipeError(
            checkpoint.path,
            f"model takes {arch.num_joints_in} joints x {arch.in_features}, data has {keypoints.shape[1:]}",
        )
    norm = normalize_screen_coordinates(keypoints, width=width, height=height)
    # TF32 convolutions would cost ~3 significant digits on Ampere+ GPUs; keep full float32.
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        model = checkpoint.model_pos.to(device).eval()
        positions = predict(
            model, norm, flip=flip, window=window, device=device, progress=_progress_logger(f"{label} pose")
        )
        if checkpoint.model_traj is not None:
            traj = checkpoint.model_traj.to(device).eval()
            positions = positions + predict(
                traj,
                norm,
                flip=flip,
                window=window,
                device=device,
                joints_left=None,
                joints_right=None,
                progress=_progress_logger(f"{label} trajectory"),
            )
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    return positions.astype(np.float32)


def lift_at_rate(
    keypoints: np.ndarray, times: np.ndarray, *, model_fps: float, lift: Callable = lift_keypoints, **options
) -> np.ndarray:
    """Lift one segment at the model's frame rate: 2D (T, 17, 2) at ``times`` (T,) seconds is
    resampled by linear interpolation to ``model_fps`` over the same span, lifted with ``lift``
    (default :func:`lift_keypoints`, given ``options``), and the 3D resampled back to ``times``."""
    grid = model_times(float(times[0]), float(times[-1]), model_fps)
    lifted = lift(resample(keypoints, times, grid).astype(np.float32), **options)
    return resample(lifted, grid, times).astype(np.float32)
