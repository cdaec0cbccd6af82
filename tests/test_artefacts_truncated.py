"""A cut-short npz (a full disk, a killed copy) is one PosepipeError naming the file for every
artefact loader, never a traceback (numpy raises zipfile.BadZipFile, not OSError or ValueError)."""

from __future__ import annotations

import numpy as np
import pytest

from posepipe.artefacts.angles import load_angles
from posepipe.artefacts.keypoints2d import load_keypoints2d
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.artefacts.tracks import load_tracks
from posepipe.artefacts.world import load_world
from posepipe.errors import PosepipeError


@pytest.mark.parametrize("load", [load_pose3d, load_world, load_keypoints2d, load_tracks, load_angles])
def test_a_cut_short_file_is_one_line(load, tmp_path):
    whole = tmp_path / "whole.npz"
    np.savez_compressed(whole, a=np.random.default_rng(0).normal(size=(200, 17, 3)), meta=np.array("{}"))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(PosepipeError) as err:
        load(cut)
    assert "cut.npz" in str(err.value)
