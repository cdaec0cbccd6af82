"""Exports of the 3D motion to the file formats of the field, one writer per format
(registered in :data:`posepipe.registry.EXPORT_FORMATS`).

``python -m posepipe export`` (stage driver: :mod:`posepipe.exports.stage`) reads pose3d.npz and
writes, per person, one file into ``results/{video}/exports/{format}/``, named ``{video}.{ext}``
(one person per frame, ``person: top_score``) or ``{video}.p{track}.{ext}`` (per person):

- ``csv`` (:mod:`~posepipe.exports.tables`): one row per frame, ``frame, time`` and
  ``{joint}_x, _y, _z``; camera space, metres (what pose3d.csv holds, wide).
- ``json`` (:mod:`~posepipe.exports.tables`): header (video, person, fps, units, axes, joints) and
  per frame its ``frame``, ``time`` and ``joints: {name: [x, y, z]}``; camera space, metres.
- ``trc`` (:mod:`~posepipe.exports.trc`): OpenSim marker file, millimetres, Y up.
- ``c3d`` (:mod:`~posepipe.exports.c3d`): C3D points with joint labels, millimetres, Z up.
- ``bvh`` (:mod:`~posepipe.exports.bvh`): a Human3.6M hierarchy with rotations, centimetres, Y up.

Axes. Camera space (csv, json) is the lifter's: x right, y down, z forward from the camera,
root-relative as the lifter outputs it: the hip is the model's own output for it, not set to 0
(subtract ``hip_*`` for coordinates exactly relative to the hip). The others use the display frame the render shows (a Human3.6M
camera's orientation: z up, the lowest point of the sequence on the floor z = 0; with several
people each is moved along the floor by their place in the image): C3D keeps it (Z up, the
convention of most motion-capture suites); TRC and BVH turn it to Y up (OpenSim, Blender's BVH
importer): ``(x, y, z) -> (x, z, -y)``.

Frames where a person is absent are left out (csv, json), written as missing markers (trc: empty
fields; c3d: NaN, which C3D stores as an invalid residual), or, in BVH, which has no missing
values, held from the last frame present; trc, c3d and bvh span the person's first to last
frame present, and their frame numbers are the timeline's frame + 1.
"""
