"""Joint sets used by the pipeline: COCO (2D detector input) and Human3.6M (3D model output).

Index orders are the ones of detectron2's COCO keypoint head and of VideoPose3D's 17-joint
Human3.6M skeleton (the 32-joint motion-capture skeleton with static joints removed).
"""

from __future__ import annotations

import numpy as np

COCO_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_LEFT = (1, 3, 5, 7, 9, 11, 13, 15)
COCO_RIGHT = (2, 4, 6, 8, 10, 12, 14, 16)
COCO_BONES = (
    (0, 1), (0, 2), (1, 3), (2, 4),
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip

H36M_JOINTS = (
    "hip", "right_hip", "right_knee", "right_foot",
    "left_hip", "left_knee", "left_foot",
    "spine", "thorax", "neck_nose", "head",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_LEFT = (4, 5, 6, 11, 12, 13)
H36M_RIGHT = (1, 2, 3, 14, 15, 16)
H36M_BONES = tuple((child, parent) for child, parent in enumerate(H36M_PARENTS) if parent >= 0)


def flip_permutation(left: tuple[int, ...], right: tuple[int, ...], num_joints: int) -> np.ndarray:
    """Index array that swaps left and right joints: ``mirrored = joints[..., perm, :]``."""
    perm = np.arange(num_joints)
    perm[list(left)] = right
    perm[list(right)] = left
    return perm


def side_of(joint: int, left: tuple[int, ...], right: tuple[int, ...]) -> str:
    """'left', 'right' or 'center' for colouring."""
    return "left" if joint in left else "right" if joint in right else "center"


def bone_side(bone: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...]) -> str:
    """A bone takes the side of whichever end is lateral (the child for H36M, either for COCO)."""
    sides = {side_of(j, left, right) for j in bone} - {"center"}
    return sides.pop() if len(sides) == 1 else "center"
