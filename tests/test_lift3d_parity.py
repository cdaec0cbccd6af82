"""Number-for-number parity with upstream VideoPose3D on the fixture in tests/data/vp3d (see its README)."""

from __future__ import annotations

import numpy as np
import pytest

from posepipe.artefacts.dataset2d import load_dataset2d
from posepipe.lift3d.checkpoint import load_checkpoint
from posepipe.lift3d.infer import camera_to_display, lift_keypoints

CLIPS = ("clip_long", "clip_short", "clip_one")
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def fixture_dir(test_data):
    """tests/data/vp3d: the upstream checkpoint, its 2D input and upstream's outputs."""
    return test_data("vp3d/checkpoint.bin").parent


@pytest.fixture(scope="module")
def checkpoint(fixture_dir):
    return load_checkpoint(fixture_dir / "checkpoint.bin")


def test_fixture_architecture(checkpoint):
    arch = checkpoint.architecture
    assert arch.filter_widths == (3, 3, 3) and arch.channels == 64 and arch.receptive_field == 27
    assert (arch.num_joints_in, arch.num_joints_out) == (17, 17) and not arch.dense


@pytest.mark.parametrize("window", [None, 7])
@pytest.mark.parametrize("clip", CLIPS)
def test_matches_upstream(fixture_dir, checkpoint, clip, window):
    ds = load_dataset2d(fixture_dir / "data_2d_custom_fixture.npz", subject=f"{clip}.mp4")
    assert (ds.width, ds.height) == (640, 360)
    for flip, suffix in ((True, "tta"), (False, "notta")):
        expected = np.load(fixture_dir / "expected" / f"{clip}_{suffix}.npy")
        got = lift_keypoints(
            ds.keypoints,
            width=ds.width,
            height=ds.height,
            checkpoint=checkpoint,
            flip=flip,
            window=window,
            device="cpu",
        )
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{clip} {suffix}")
        if flip:
            display = np.load(fixture_dir / "expected" / f"{clip}_tta_display.npy")
            np.testing.assert_allclose(camera_to_display(got), display, rtol=0, atol=TOLERANCE)
