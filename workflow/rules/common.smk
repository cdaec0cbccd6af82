# Shared set-up: the video table, wildcard constraints and input functions.
import os
import sys

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


def final_targets(wildcards):
    """What `rule all` builds for every video; later stages extend this list."""
    targets = []
    for video in VIDEOS:
        targets.append(f"results/{video}/frames/timeline.json")
        if config["frames"]["jpeg"]:
            targets.append(f"results/{video}/frames/jpeg")
    return targets
