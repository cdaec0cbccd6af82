"""2D keypoints: one module per source (:data:`posepipe.registry.SOURCES2D`): ``importers`` (other
tools' files) and ``detectron2_backend`` (Keypoint R-CNN, the only module that imports detectron2);
``cli`` is the stage. The keypoints2d.npz format: :mod:`posepipe.artefacts.keypoints2d`."""
