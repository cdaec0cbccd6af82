"""BVH motion files: a Human3.6M hierarchy with rest offsets and per-frame joint rotations.

Hierarchy. The root ``hip`` has position and rotation channels; every other joint three rotation
channels, ``Zrotation Xrotation Yrotation`` (the local rotation is Rz · Rx · Ry). A joint's
rotation orients the bones to its children, so a joint with several children (``hip``: both hips
and the spine; ``thorax``: the neck and both shoulders) could not give each of them its own
direction: each of those bones hangs from a branch joint of its own at the parent's place
(``hip_to_right_hip``, offset 0), so every bone of the skeleton points where it points in the data.

Rest pose and rotations. Each bone's rest offset is its median direction over the frames present,
scaled to its median length (the person's proportions); each frame's rotation of the joint that
carries a bone is the smallest rotation taking the rest direction to that frame's direction. The
turn of a bone about its own axis (twist) cannot be seen in joint positions: the rotations carry
none, and the end joints (wrists, feet, head) keep their parent's orientation, so wrist, ankle and
head twist is not in the file. Forward kinematics of the file gives every joint's position
exactly where the bone lengths equal their medians; otherwise each joint is off by the difference
of the lengths along its chain (the lifter does not hold bone lengths fixed: see QC's bone CV).

Units and axes: centimetres, Y up (``posepipe.exports.motion.y_up`` of the display frame). Frames
span the person's first to last frame present; frames inside it where the person is absent hold
the last pose (BVH has no missing values). BVH states no start time: a person who enters late
starts their file later than the video. ``start="video"`` (config ``export.bvh_start: video``)
pads the file from the timeline's first frame instead, holding the first pose present until the
person enters, so frame k of the file is frame k of the video; either way ``timing.csv`` beside
the files gives each file's first timeline frame and its time (:mod:`posepipe.exports.stage`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from posepipe.atomic import write_text
from posepipe.exports.motion import Motion, y_up
from posepipe.skeleton import H36M_JOINTS, H36M_PARENTS

CM = 100.0
ROT_CHANNELS = "Zrotation Xrotation Yrotation"
END_SITE_FRACTION = 0.25  # end-site offset: this share of the joint's incoming rest bone


@dataclass
class Node:
    """A BVH joint: its name, parent index in the node list, the data joint it sits at, and the bone
    it orients (data joint indices (from, to)) or None (it keeps its parent's orientation)."""

    name: str
    parent: int
    at: int
    bone: tuple[int, int] | None
    end_site: bool = False
    children: list[int] = field(default_factory=list)


def hierarchy() -> list[Node]:
    """The BVH joints in file (depth-first) order."""
    children = {j: [c for c, p in enumerate(H36M_PARENTS) if p == j] for j in range(len(H36M_JOINTS))}
    nodes: list[Node] = []

    def add(name, parent, at, bone, end_site=False) -> int:
        nodes.append(Node(name, parent, at, bone, end_site))
        if parent >= 0:
            nodes[parent].children.append(len(nodes) - 1)
        return len(nodes) - 1

    def visit(joint: int, parent: int) -> None:
        kids = children[joint]
        if len(kids) > 1:  # each bone from here gets a branch joint of its own
            me = add(H36M_JOINTS[joint], parent, joint, None)
            for kid in kids:
                branch = add(f"{H36M_JOINTS[joint]}_to_{H36M_JOINTS[kid]}", me, joint, (joint, kid))
                visit(kid, branch)
        elif kids:
            me = add(H36M_JOINTS[joint], parent, joint, (joint, kids[0]))
            visit(kids[0], me)
        else:
            add(H36M_JOINTS[joint], parent, joint, None, end_site=True)

    visit(0, -1)
    return nodes


def _fill_held(points: np.ndarray) -> np.ndarray:
    """Frames with NaN take the last complete frame before them (the first frame is complete)."""
    out = points.copy()
    ok = np.isfinite(out).all(axis=(1, 2))
    last = np.maximum.accumulate(np.where(ok, np.arange(len(out)), 0))
    return out[last]


def rest_offsets(points: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Per bone (parent, child): median direction × median length over ``points`` (T, 17, 3)."""
    offsets = {}
    for child, parent in enumerate(H36M_PARENTS):
        if parent < 0:
            continue
        vectors = points[:, child] - points[:, parent]
        lengths = np.linalg.norm(vectors, axis=1)
        direction = np.median(vectors / np.maximum(lengths, 1e-12)[:, None], axis=0)
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 1e-9 else np.array([0.0, 1.0, 0.0])
        offsets[(parent, child)] = direction * np.median(lengths)
    return offsets


def align(rest: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(T, 3, 3): the smallest rotations taking direction ``rest`` (3,) to each of ``vectors`` (T, 3)."""
    a = rest / np.linalg.norm(rest)
    b = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    axis = np.cross(a, b)
    cos = b @ a
    k = np.zeros((len(b), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    factor = np.divide(1.0, 1.0 + cos, out=np.zeros_like(cos), where=1.0 + cos > 1e-12)
    rot = np.eye(3) + k + k @ k * factor[:, None, None]  # Rodrigues for unit a, b
    opposite = 1.0 + cos <= 1e-12
    if opposite.any():  # half a turn about any axis perpendicular to a
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        rot[opposite] = 2 * np.outer(perp, perp) - np.eye(3)
    return rot


def channels(points: np.ndarray, *, rest_from: slice = slice(None)) -> tuple[list[Node], dict, np.ndarray]:
    """(nodes, rest offsets, motion (T, channels)) for ``points`` (T, 17, 3), complete frames; the
    rest offsets from the frames ``rest_from`` (padding frames take no part)."""
    from scipy.spatial.transform import Rotation

    nodes = hierarchy()
    rest = rest_offsets(points[rest_from])
    T = len(points)
    world = [np.tile(np.eye(3), (T, 1, 1)) for _ in nodes]
    columns = [points[:, 0]]  # root position
    for i, node in enumerate(nodes):
        parent = world[node.parent] if node.parent >= 0 else np.tile(np.eye(3), (T, 1, 1))
        if node.bone is not None:
            a, b = node.bone
            world[i] = align(rest[node.bone], points[:, b] - points[:, a])
        else:
            world[i] = parent
        local = parent.transpose(0, 2, 1) @ world[i]
        columns.append(Rotation.from_matrix(local).as_euler("ZXY", degrees=True))
    return nodes, rest, np.concatenate(columns, axis=1)


def node_offset(node: Node, nodes: list[Node], rest: dict) -> np.ndarray:
    """A node's OFFSET: the rest bone from its parent's data joint to its own (0 for branch joints)."""
    if node.parent < 0:
        return np.zeros(3)
    parent = nodes[node.parent]
    if parent.at == node.at:
        return np.zeros(3)
    return rest[(parent.at, node.at)]


def bvh_text(points: np.ndarray, *, fps: float, rest_from: slice = slice(None)) -> str:
    """The BVH file of ``points`` (T, 17, 3) in file units (complete frames); rest offsets from
    the frames ``rest_from``."""
    nodes, rest, motion = channels(points, rest_from=rest_from)
    lines = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        node, pad = nodes[i], "  " * depth
        offset = " ".join(f"{v:.6f}" for v in node_offset(node, nodes, rest))
        lines.append(f"{pad}{'ROOT' if node.parent < 0 else 'JOINT'} {node.name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset}")
        lines.append(
            f"{pad}  CHANNELS {'6 Xposition Yposition Zposition ' if node.parent < 0 else '3 '}{ROT_CHANNELS}"
        )
        for child in node.children:
            emit(child, depth + 1)
        if node.end_site:
            incoming = (
                rest[(nodes[node.parent].at, node.at)] if nodes[node.parent].at != node.at else np.zeros(3)
            )
            tip = " ".join(f"{v:.6f}" for v in incoming * END_SITE_FRACTION)
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {tip}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(points)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    return "\n".join(lines) + "\n"


BVH_STARTS = ("person", "video")


def bvh_frames(motion: Motion, *, start: str = "person") -> slice:
    """The timeline frames a BVH file covers: the person's span, or (``start="video"``) from the
    timeline's first frame to the person's last."""
    if start not in BVH_STARTS:
        raise ValueError(f"start must be one of {BVH_STARTS}, got {start!r}")
    span = motion.span
    return slice(0, span.stop) if start == "video" and span.stop > 0 else span


def bvh_points(motion: Motion, *, start: str = "person") -> np.ndarray:
    """(T', 17, 3) centimetres, Y up, over :func:`bvh_frames`: absent frames hold the last pose
    present, frames before the person's first hold that first pose."""
    frames = bvh_frames(motion, start=start)
    points = y_up(motion.display[frames]) * CM
    first = motion.span.start - frames.start
    points[:first] = points[first]
    return _fill_held(points)


def write_bvh(path: str | os.PathLike, motion: Motion, *, start: str = "person") -> None:
    """The BVH file of ``motion`` (see the module docstring); padding frames (``start="video"``)
    take no part in the rest pose, so the person's own frames are those of a ``start="person"`` file."""
    padding = motion.span.start - bvh_frames(motion, start=start).start
    write_text(
        path, bvh_text(bvh_points(motion, start=start), fps=motion.fps, rest_from=slice(padding, None))
    )
