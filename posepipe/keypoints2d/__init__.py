"""2D keypoints: the per-video store (``store``), importers of other tools' files (``importers``)
and the detectron2 Keypoint R-CNN runner (``detectron2_backend``, the only module that imports
detectron2)."""
