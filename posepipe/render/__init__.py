"""Render stage: the timeline's frames with the 2D skeleton beside the lifted 3D skeleton (H.264 mp4).

The pieces, each importing only those above it in this list:

- :mod:`~posepipe.render.scene`: geometry. Output layout (:func:`plan_layout`), the 3D panel's
  fixed axis limits and its static background drawn once with matplotlib, with the projection
  kept so a frame projects its joints with numpy (:func:`build_view3d`, :class:`View3D`).
- :mod:`~posepipe.render.visualizer`: drawing one output frame with OpenCV
  (:class:`FrameRenderer`): video panel with the 2D skeleton, 3D skeleton on the background,
  caption; non-finite joints are skipped and far-off points clipped, so finite data always draws.
- :mod:`~posepipe.render.encode`: ffmpeg. The streaming libx264 encoder, joining segments,
  audio arguments, GIF/mp4 previews (:func:`write_preview`).
- :mod:`~posepipe.render.stage`: the stage. Inputs through their contract loaders, the split into
  contiguous parts rendered by a thread pool, :func:`run_render` (its settings: config ``render:``
  as :class:`RenderSettings`), and the ``render`` and
  ``render-preview`` sub-commands (:func:`register_cli`).

``render.mp4``: same frame count and exact rational frame rate as the timeline (``every`` divides
the rate, ``max_frames`` shortens), H.264 yuv420p BT.709, even dimensions, ``+faststart``; its
``comment`` tag records the stage, its version, posepipe's version and the options as JSON
(:func:`read_render_meta`).
"""

from posepipe.render.encode import DEFAULT_PRESET, EncoderOptions, write_preview
from posepipe.render.scene import (
    DEFAULT_AZIMUTH,
    DEFAULT_ELEVATION,
    LAYOUTS,
    Layout,
    View3D,
    build_view3d,
    plan_layout,
    view_limits,
)
from posepipe.render.stage import (
    RenderInputs,
    RenderSettings,
    load_inputs,
    read_render_meta,
    register_cli,
    render_meta,
    run_render,
)
from posepipe.render.visualizer import COLOURS, FrameRenderer, default_thickness

__all__ = [
    "COLOURS",
    "DEFAULT_AZIMUTH",
    "DEFAULT_ELEVATION",
    "DEFAULT_PRESET",
    "LAYOUTS",
    "EncoderOptions",
    "FrameRenderer",
    "Layout",
    "RenderInputs",
    "RenderSettings",
    "View3D",
    "build_view3d",
    "default_thickness",
    "load_inputs",
    "plan_layout",
    "read_render_meta",
    "register_cli",
    "render_meta",
    "run_render",
    "view_limits",
    "write_preview",
]
