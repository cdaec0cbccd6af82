# Shared set-up: the video table, wildcard constraints and input functions.
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

# The posepipe package lives beside the Snakefile; jobs (local or on a cluster) import it from there.
sys.path.insert(0, workflow.basedir)

from posepipe.inputs import VIDEO_ID_PATTERN, collect_videos
from posepipe.jobenv import prepare_job_environment
from posepipe.stages import STAGE_VERSIONS

USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
prepare_job_environment(workflow.basedir, conda=USE_CONDA)

VIDEOS = collect_videos(
    directory=config["input"]["directory"],
    patterns=config["input"]["patterns"],
    recursive=config["input"]["recursive"],
    samples=config["input"]["samples"],
)
if not VIDEOS:
    logger.warning(
        f"posepipe: no videos found in {config['input']['directory']!r} "
        f"matching {config['input']['patterns']} (nothing to do)"
    )


wildcard_constraints:
    video=VIDEO_ID_PATTERN,


def video_file(wildcards):
    return str(VIDEOS[wildcards.video]["path"])


def frames_setting(key):
    """Input function for a per-video frames setting: the sample sheet's value, else config's."""

    def get(wildcards):
        value = VIDEOS[wildcards.video].get(key, config["frames"][key])
        return "none" if value is None else value

    return get


# ---- models -------------------------------------------------------------------------------------

from posepipe.weights import PUBLISHED

ZOO_WEIGHTS = {f.config: name for name, f in PUBLISHED.items() if f.config}
LIFTER_WEIGHTS = "videopose3d_h36m_detectron_coco"
LIFTER_FILE = f"resources/models/{PUBLISHED[LIFTER_WEIGHTS].filename}"  # the published file name


def detector_weights():
    """The detector's weights: the configured local file, else the zoo file the download rule fetches."""
    cfg = config["keypoints2d"]
    if cfg["weights"]:
        return cfg["weights"]
    if cfg["model"] not in ZOO_WEIGHTS:
        raise WorkflowError(
            f"keypoints2d.model {cfg['model']!r} is not a model-zoo config "
            f"({', '.join(ZOO_WEIGHTS)}): set keypoints2d.weights to its weights file"
        )
    return f"resources/models/{ZOO_WEIGHTS[cfg['model']]}.pkl"


def lifter_checkpoint():
    return config["lift3d"]["checkpoint"] or LIFTER_FILE


# ---- per-video inputs ---------------------------------------------------------------------------


def keypoints2d_input(wildcards):
    """detectron2: the weights file; file: the other tool's keypoints for this video."""
    cfg = config["keypoints2d"]
    if cfg["source"] == "detectron2":
        return detector_weights()
    video = VIDEOS[wildcards.video]
    if "keypoints2d" in video:
        return str(video["keypoints2d"])
    path = Path(video["path"])
    return cfg["file_pattern"].format(
        directory=config["input"]["directory"] or str(path.parent), stem=path.stem, video=wildcards.video
    )


def untracked(value):
    """A param that cannot change an output (batch size, device, GPU ids). Snakemake leaves params
    computed from `resources` out of its "params changed" check, so tuning these re-runs nothing."""
    return lambda wildcards, resources: value


def keypoints2d_options():
    """Command-line options of the keypoints2d stage that decide its output (ending in the
    option that takes the source file)."""
    cfg = config["keypoints2d"]
    threshold = f"--score-threshold {cfg['score_threshold']}"
    if cfg["source"] == "file":
        return f"--source file {threshold} --input"
    amp = "--amp" if cfg["amp"] else "--no-amp"
    return (
        f"--source detectron2 --config {shlex.quote(cfg['model'])} {threshold}"
        f" --min-size {cfg['min_size']} --max-size {cfg['max_size']} {amp} --weights"
    )


def keypoints2d_launcher():
    """Detection takes a GPU of its own (see posepipe.gpu); an import needs none."""
    if config["keypoints2d"]["source"] == "detectron2":
        return f"python -m posepipe with-gpu --ids {gpu_ids()} --"
    return ""


def gpu_ids():
    ids = config["resources"]["gpu_ids"]
    return ",".join(map(str, ids)) if ids else "auto"


def final_targets(wildcards):
    """Targets of the default target: every deliverable of every video, and the merged 2D dataset.

    The 2D files are targets in their own right (people use them without the 3D stage), so a
    deleted one is rebuilt even when the 3D outputs made from it are still up to date.
    """
    targets = []
    for video in VIDEOS:
        targets += [f"results/{video}/{name}" for name in ("probe.json", "keypoints2d.npz", "dataset2d.npz")]
        targets += [f"results/{video}/pose3d.npz", f"results/{video}/pose3d.csv"]
        if config["render"]["enabled"]:
            targets.append(f"results/{video}/render.mp4")
            if config["render"]["preview"]:
                targets.append(f"results/{video}/preview.gif")
        if config["frames"]["jpeg"]:
            targets.append(f"results/{video}/frames/jpeg")
    if VIDEOS:
        targets.append("results/dataset2d_custom.npz")
    return targets
