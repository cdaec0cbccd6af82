"""posepipe: videos to 3D human poses (detectron2 2D keypoints lifted by VideoPose3D)."""

__version__ = "0.1.0"
