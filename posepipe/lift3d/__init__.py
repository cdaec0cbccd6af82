"""3D lifting: the dilated temporal CNN of VideoPose3D, reimplemented.

- ``model``: the network (``TemporalCNN``), state-dict compatible with the published checkpoints.
- ``checkpoint``: safe loading, architecture inference from tensor shapes, saving in the published format.
- ``infer``: normalisation, padding, windowed inference with flip augmentation, display alignment.
- ``videopose3d``: the lifter interface (build, receptive field, infer, describe) over the above.
- ``stage``: the ``lift3d`` stage that writes pose3d.npz + pose3d.csv (:mod:`posepipe.artefacts.pose3d`).
- ``cli``: the ``lift3d`` sub-command.

torch is imported by ``model``, ``checkpoint``, ``infer``, ``videopose3d`` and ``stage``; this package file and ``cli`` stay light.
"""

from posepipe.settings import schema_default

# Output frames per model pass: memory stays flat for long videos (the workflow's default).
DEFAULT_WINDOW = schema_default("lift3d.window")
