# Shared set-up: the video table, wildcard constraints and input functions.
import json
import os
import re
import shlex
import string
import sys
from pathlib import Path
from typing import NamedTuple

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod, SharedFSUsage


from posepipe.errors import PosepipeError
from posepipe.inputs import VIDEO_ID_PATTERN, collect_videos, load_sample_sheet, shell_path, snakemake_safe_path
from posepipe.jobenv import prepare_job_environment
from posepipe.objectstore import ObjectIndex, is_url, join_url, url_name, url_parent
from posepipe.artefacts.shards import load_shards
from posepipe.registry import DEFAULT_LIFTER, EXPORT_FORMATS, LIFTERS, SOURCES2D, STAGE_BY_NAME, STAGE_VERSIONS, upstream
from posepipe.registry import source_uses_gpu
from posepipe.settings import command_options
from posepipe.shards import render_segments


USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
prepare_job_environment(workflow.basedir, conda=USE_CONDA)

# A Snakemake killed with SIGKILL leaves its lock; the next run clears it when nothing runs here
# any more (posepipe/runlock.py says how that is decided). Only the main process, before it locks.
if workflow.is_main_process:
    from posepipe.runlock import clear_stale_lock

    if _lock_note := clear_stale_lock():
        logger.warning(f"posepipe: {_lock_note}")


# ---- object storage (S3, MinIO, Ceph; README, Object storage) -----------------------------------
# Videos and keypoint files given as s3:// URLs are listed here (posepipe.objectstore, one request
# per 1000 objects) with the settings Snakemake's S3 plugin uses (--storage-s3-endpoint-url etc. or
# SNAKEMAKE_STORAGE_S3_*, else boto3's AWS_* variables and files), and reach the jobs through the
# plugin, which stages each object for the job that reads it. With --default-storage-provider s3
# --default-storage-prefix s3://bucket/prefix, results/ is written there too.


def s3_settings():
    """The S3 storage plugin's settings of this run (None where not given)."""
    tagged = (workflow.storage_provider_settings or {}).get("s3")
    settings = tagged.get_settings(None) if tagged is not None else None
    keys = ("endpoint_url", "region", "access_key", "secret_key", "token")
    return {key: getattr(settings, key, None) for key in keys}


OBJECTS = ObjectIndex(settings=s3_settings())
DEFAULT_STORAGE = workflow.storage_settings.default_storage_provider
DEFAULT_PREFIX = workflow.storage_settings.default_storage_prefix or ""
# Where results/ is when it is in a bucket, so that a listing of the inputs never takes a render
# for a video.
RESULTS_URLS = (join_url(DEFAULT_PREFIX, "results"),) if DEFAULT_STORAGE == "s3" and is_url(DEFAULT_PREFIX) else ()

# Node-local staging: results in storage and no disk shared for inputs and outputs (the slurm
# profile's storage block: --shared-fs-usage without input-output). Snakemake then runs every job
# that reads a local() file (a checkpoint, weights, a local video: local_file below) on the main
# host, and a group job as soon as one member does; Snakemake 9.27.1 then uploads only the outputs
# of the members that read a local file, waits for the others' in the bucket and fails ("Missing
# files after 60 seconds ... dataset2d.npz (missing in storage)"). Without groups each job goes
# its own way (to the cluster, or to the main host with its local file).
NODE_LOCAL_STAGING = bool(DEFAULT_STORAGE) and SharedFSUsage.INPUT_OUTPUT not in workflow.storage_settings.shared_fs_usage


def job_group(name):
    """The rule's group job ``name``, or None (no group) under node-local staging."""
    return None if NODE_LOCAL_STAGING else name


if DEFAULT_STORAGE and (config["frames"]["jpeg"] or config["shard_frames"]):
    raise WorkflowError(
        "results in a bucket (--default-storage-provider) do not work yet with frames.jpeg or shard_frames: "
        "turn those off, or keep results/ local (README, Object storage)"
    )
# timeline.json names its table, timeline.csv beside it: a job that reads the one from a bucket gets
# the other staged too (an input of no file when results/ is local, so local runs keep their DAG).
TIMELINE_TABLE = "results/{video}/frames/timeline.csv" if DEFAULT_STORAGE else []


def local_file(path):
    """A file the user gives by its local path (a checkpoint, weights): kept local when results/
    goes to the default storage provider (which would otherwise look for it in the bucket)."""
    return local(path) if DEFAULT_STORAGE else path


def stored(url):
    """An object in storage as a job's input: staged by the S3 plugin before the job (its local
    copy is what the command reads)."""
    return storage.s3(url)


def read_sample_sheet(path):
    """The sample sheet's rows, each checked against workflow/schemas/samples.schema.yaml; every
    bad row is named by its line and column in one short error."""
    try:
        rows = load_sample_sheet(path)
    except PosepipeError as exc:
        raise WorkflowError(f"sample sheet {exc}") from None
    problems = []
    for row in rows:
        record = {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in row.items() if k != "line"}
        problem = schema_problem(record, SAMPLES_SCHEMA)
        if problem:
            key, reason = problem
            problems.append(f"line {row['line']}, column {key}: {reason}")
    if problems:
        raise WorkflowError(f"sample sheet {path}: " + "; ".join(problems))
    return rows


class ListedVideos(dict):
    """The videos found at start. A job's own Snakemake (a cluster job) lists the input again; a
    video gone since the run planned it (an object deleted mid-run) fails that job naming it."""

    def __missing__(self, video):
        raise WorkflowError(
            f"video {video} is not (or no longer) in {config['input']['directory'] or config['input']['samples']} "
            "(deleted or renamed after the run listed it?): this video fails; the next run leaves it out"
        )


SAMPLES_SCHEMA = os.path.join(workflow.basedir, "workflow/schemas/samples.schema.yaml")
try:
    VIDEOS = ListedVideos(collect_videos(
        directory=config["input"]["directory"],
        patterns=config["input"]["patterns"],
        recursive=config["input"]["recursive"],
        samples=read_sample_sheet(config["input"]["samples"]) if config["input"]["samples"] else None,
        exclude=("results", *RESULTS_URLS),  # when input.directory holds the results/ of this run
        objects=OBJECTS,
    ))
except PosepipeError as exc:
    raise WorkflowError(f"input: {exc}") from None
for _video, _entry in VIDEOS.items():
    if _entry.get("missing"):
        logger.warning(f"posepipe: {_entry['path']} (sample sheet) does not exist: video {_video} will fail at probe")
if not VIDEOS:
    logger.warning(
        f"posepipe: no videos found in {config['input']['directory']!r} "
        f"matching {config['input']['patterns']} (nothing to do)"
    )


wildcard_constraints:
    video=VIDEO_ID_PATTERN,
    # Shard wildcards are named by their unit: frame_* count timeline frames (keypoints2d shards),
    # out_* count a render's output frames (every render.every-th timeline frame).
    frame_first=r"\d+",
    frame_stop=r"\d+",
    out_first=r"\d+",
    out_stop=r"\d+",


def link_name(video, role, path):
    """Where a path with { or } is linked from (see posepipe.inputs.snakemake_safe_path)."""
    suffix = re.sub(r"[^A-Za-z0-9.]", "", "".join(Path(path).suffixes[-2:]))
    return f"results/{video}/links/{role}{suffix}"


def video_file(wildcards):
    """The video, by a name that Snakemake takes literally and no command takes for an option
    (an object in a bucket: staged by the storage plugin)."""
    path = VIDEOS[wildcards.video]["path"]
    if is_url(path):
        return stored(path)
    return local_file(snakemake_safe_path(path, link_name(wildcards.video, "video", path)))


def video_exists(video):
    path = VIDEOS[video]["path"]
    return not VIDEOS[video].get("missing") if is_url(path) else os.path.exists(path)


def video_input(wildcards):
    """probe's input: the video; nothing for a file that does not exist, so that this video alone
    fails (probe names the file) instead of every video stopping before any job."""
    return video_file(wildcards) if video_exists(wildcards.video) else []


def video_argument(wildcards, output):
    """The video as probe's argument (its own path also when it is missing; an object's local
    copy); untracked (see `untracked`): the input already tracks the file."""
    if not video_exists(wildcards.video):
        return shell_path(VIDEOS[wildcards.video]["path"])
    return os.fspath(video_file(wildcards))


def staged_video(wildcards):
    """An input of the jobs that decode the video again after probe (the timeline names it): an
    object in a bucket is staged for them too, at the local path probe read it from; a local file
    needs nothing (it is where the timeline says)."""
    return video_file(wildcards) if is_url(VIDEOS[wildcards.video]["path"]) and video_exists(wildcards.video) else []


def frames_options(wildcards):
    """--fps/--start/--end of a video: the sample sheet's value, else config's; unset is left out."""
    options = []
    for key in ("fps", "start", "end"):
        value = VIDEOS[wildcards.video].get(key, config["frames"][key])
        if value is not None:
            options.append(f"--{key} {value}")
    return " ".join(options)


# ---- models -------------------------------------------------------------------------------------

from posepipe.weights import PUBLISHED


ZOO_WEIGHTS = {f.config: name for name, f in PUBLISHED.items() if f.config}


LIFTER_WEIGHTS = LIFTERS[DEFAULT_LIFTER].weights


LIFTER_FILE = f"resources/models/{PUBLISHED[LIFTER_WEIGHTS].filename}"  # the published file name


def detector_weights():
    """The detector's weights: the configured local file, else the zoo file the download rule fetches."""
    cfg = config["keypoints2d"]
    if cfg["weights"]:
        return local_file(cfg["weights"])
    if cfg["model"] not in ZOO_WEIGHTS:
        raise WorkflowError(
            f"keypoints2d.model {cfg['model']!r} is not a model-zoo config "
            f"({', '.join(ZOO_WEIGHTS)}): set keypoints2d.weights to its weights file"
        )
    return f"resources/models/{ZOO_WEIGHTS[cfg['model']]}.pkl"


def lifter_checkpoint():
    return local_file(config["lift3d"]["checkpoint"]) if config["lift3d"]["checkpoint"] else LIFTER_FILE


# ---- per-video inputs ---------------------------------------------------------------------------


FILE_PATTERN_FIELDS = ("directory", "stem", "video")


def check_file_pattern(pattern):
    """Stop at start-up on a keypoints2d.file_pattern that cannot be filled in."""
    where = f"config keypoints2d.file_pattern {pattern!r}"
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise WorkflowError(f"{where}: {exc} (write {{{{ or }}}} for a literal brace)") from None
    allowed = ", ".join(f"{{{name}}}" for name in FILE_PATTERN_FIELDS)
    for name in fields:
        if name not in FILE_PATTERN_FIELDS:
            raise WorkflowError(f"{where}: unknown placeholder {{{name}}}; allowed: {allowed}")


check_file_pattern(config["keypoints2d"]["file_pattern"])


def keypoints_file(video_id):
    """keypoints2d.source file: this video's keypoints file (the sample sheet's keypoints2d column,
    else keypoints2d.file_pattern filled in); it may not exist."""
    video = VIDEOS[video_id]
    if "keypoints2d" in video:
        return os.fspath(video["keypoints2d"])
    if is_url(video["path"]):
        parent, stem = url_parent(video["path"]), Path(url_name(video["path"])).stem
    else:
        parent, stem = str(Path(video["path"]).parent), Path(video["path"]).stem
    return config["keypoints2d"]["file_pattern"].format(
        directory=config["input"]["directory"] or parent, stem=stem, video=video_id
    )


# The 2D source of this run (posepipe.registry.SOURCES2D): its rule input, options, GPU and conda env.
SOURCE2D = SOURCES2D[config["keypoints2d"]["source"]]
# Whether its jobs take a GPU: fixed, or (rtmlib) decided by a config key such as
# keypoints2d.rtmlib.device (a GPU only for cuda; posepipe.registry.source_uses_gpu).
SOURCE2D_GPU = source_uses_gpu(SOURCE2D, config["keypoints2d"])


def rtmlib_onnx_files():
    """keypoints2d.source rtmlib: the pose ONNX (`weights`) and, for a top-down model, its person
    detector's (`det_weights`): the configured local files, else the published ones that the
    download rule extracts into resources/models/."""
    from posepipe.keypoints2d.rtmlib_backend import MODELS

    cfg = config["keypoints2d"]["rtmlib"]
    spec = MODELS[cfg["model"]]
    files = {"weights": local_file(cfg["onnx"]) if cfg["onnx"] else f"resources/models/{PUBLISHED[spec.pose].member_filename}"}
    if spec.det is not None:
        files["det_weights"] = (
            local_file(cfg["det_onnx"]) if cfg["det_onnx"] else f"resources/models/{PUBLISHED[spec.det].member_filename}"
        )
    return files


def keypoints2d_inputs(wildcards):
    """Named inputs of keypoints2d besides the timeline: `weights` (a model-file source) or
    `keypoints` (file). A keypoints file that does not exist is not declared, so a missing file
    fails this video's job alone (the command names it) instead of stopping every video before any
    job; once the file is there, the next run declares it and imports it."""
    if SOURCE2D.input == "weights":
        return {"weights": detector_weights(), **({"video": staged} if (staged := staged_video(wildcards)) else {})}
    if SOURCE2D.input == "onnx":
        return {**rtmlib_onnx_files(), **({"video": staged} if (staged := staged_video(wildcards)) else {})}
    path = keypoints_file(wildcards.video)
    if is_url(path):
        return {"keypoints": stored(path)} if OBJECTS.exists(path) else {}
    if not os.path.exists(path):
        return {}
    return {"keypoints": local_file(snakemake_safe_path(path, link_name(wildcards.video, "keypoints", path)))}


def keypoints2d_source_option(wildcards, input):
    """The option naming the source's input, with its value: `--weights FILE` or `--input FILE`
    (the keypoints file's own path, also when it is missing or reached through a link)."""
    if SOURCE2D.input == "weights":
        return f"--weights {shlex.quote(shell_path(input.weights))}"
    if SOURCE2D.input == "onnx":
        det = f" --det-weights {shlex.quote(shell_path(input.det_weights))}" if "det_weights" in input.keys() else ""
        return f"--weights {shlex.quote(shell_path(input.weights))}{det}"
    path = keypoints_file(wildcards.video)
    if is_url(path) and "keypoints" in input.keys():
        path = input.keypoints  # the object's local copy
    return f"--input {shlex.quote(shell_path(path))}"


def timeline_frames(path):
    """Frames of a finished timeline (0 if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return int(json.load(fh)["frame_count"])
    except (OSError, ValueError, KeyError):
        return 0


def threads_by_length(short, long, *, frames=1000):
    """Threads for a job: ``short`` for a timeline of fewer than ``frames`` frames, else ``long``.
    A 2 s clip gains nothing from a second thread, and leaving it free lets another job run."""

    def threads(wildcards, input):
        return short if timeline_frames(input.timeline) < frames else long

    return threads


def untracked_options(**values):
    """One untracked param (see `untracked`) holding several values: `{params.speed[batch_size]}`.
    One function per job instead of one per value keeps the DAG of thousands of videos quick."""
    return untracked(values)


def untracked(value):
    """A param that cannot change an output (batch size, device, GPU ids). Snakemake leaves params
    derived from `input`, `output`, `threads` or `resources` out of its "params changed" check, so
    tuning these re-runs nothing. `output` is the cheap one: asking for `resources` makes Snakemake
    evaluate each job's resources while it builds the DAG (bench/bench_dag.py)."""
    return lambda wildcards, output: value


def keypoints2d_options():
    """Command-line options of the keypoints2d stage that decide its output: the source and its
    registered options (the source's input file comes from keypoints2d_source_option)."""
    section = config["keypoints2d"]
    # Keys of a sub-section (rtmlib.model) are dotted in the registry: look them up one level down.
    values = {**section, **{f"{k}.{kk}": vv for k, v in section.items() if isinstance(v, dict) for kk, vv in v.items()}}
    options = command_options(values, SOURCE2D.options, flags=SOURCE2D.options)
    return f"--source {SOURCE2D.name} {options}"


def keypoints2d_launcher():
    """A GPU source's job takes a GPU of its own (see posepipe.gpu); an import needs none."""
    if SOURCE2D_GPU:
        return f"python -m posepipe with-gpu --ids {gpu_ids()} --"
    return ""


def gpu_ids():
    ids = config["resources"]["gpu_ids"]
    return ",".join(map(str, ids)) if ids else "auto"


# `snakemake --report`: Snakemake refuses a report with a report file missing, so the report
# covers the videos that are complete (the failed ones are named in qc_summary.html, its summary
# page). The Snakefile is read before Snakemake says what it will do: its command line tells.
REPORTING = any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv[1:])


def run_videos():
    """The videos the run-wide files and the report are made from: all of them, or, for
    `--report`, those that are complete (their row in summary.csv says so)."""
    if not REPORTING:
        return list(VIDEOS)
    if REPORT_VIDEOS:
        return REPORT_VIDEOS[0]
    from posepipe.summary import video_row

    done = [v for v in VIDEOS if video_row(Path("results"), v, stages=SUMMARY_STAGES)["status"] == "complete"]
    if len(done) < len(VIDEOS):
        logger.warning(
            f"posepipe: the report covers the {len(done)} of {len(VIDEOS)} videos that are complete; "
            "results/qc_summary.html in it names the others and why"
        )
    REPORT_VIDEOS.append(done)
    return done


REPORT_VIDEOS = []  # run_videos() of a report, found once


def final_targets(wildcards):
    """Targets of the default target: every deliverable of every video, and the merged 2D dataset.

    The 2D files are targets in their own right (people use them without the 3D stage), so a
    deleted one is rebuilt even when the 3D outputs made from it are still up to date.
    """
    targets = []
    for video in run_videos():
        targets += [f"results/{video}/{name}" for name in ("probe.json", "keypoints2d.npz", "dataset2d.npz")]
        targets += [f"results/{video}/pose3d.npz", f"results/{video}/pose3d.csv", f"results/{video}/qc/qc.json"]
        targets.append(f"results/{video}/qc/qc.html")  # the report's page; a target, so it is remade if lost
        targets += [f"results/{video}/exports/{fmt}" for fmt in config["exports"]]
        if config["render"]["enabled"]:
            targets.append(f"results/{video}/render.mp4")
            if config["render"]["preview"]:
                targets += [f"results/{video}/preview.gif", f"results/{video}/preview.html"]
        if config["frames"]["jpeg"]:
            targets.append(f"results/{video}/frames/jpeg")
        targets += [f"results/{video}/world.npz", f"results/{video}/world.csv"]
        if config["angles"]["enabled"]:
            targets += [f"results/{video}/angles{name}" for name in (".npz", ".csv", "_summary.csv")]
        if OPENSIM_RUNS:
            targets.append(f"results/{video}/opensim")
    if VIDEOS:
        targets += ["results/dataset2d_custom.npz", "results/qc_summary.csv", "results/qc_summary.html"]
    targets += evaluate_targets()  # videos with a reference recording (workflow/rules/evaluate.smk)
    return targets


# ---- tracks ----------------------------------------------------------------


def tracks_options():
    """The linker's settings as options; an unset max_lost_frames (one second) is omitted."""
    cfg = config["tracks"]
    keys = ["iou_weight", "max_cost", "min_track_frames", "keypoint_score", "velocity", "max_lost_frames"]
    # Left out at its default (the command's own): finished tracks stay up to date.
    if cfg["duplicate_oks"] != DUPLICATE_OKS_DEFAULT:
        keys.append("duplicate_oks")
    return command_options(cfg, keys)


from posepipe.settings import schema_default

DUPLICATE_OKS_DEFAULT = schema_default("tracks.duplicate_oks")


# ---- dataset2d ----------------------------------------------------------------


from posepipe.conditioning import FILTER_KEYS


# Inputs and file options of dataset2d and qc as wildcard patterns decided once by the config
# (no function to call per video): tracks.npz when people are followed by track, the timeline
# when a filter needs the frame rate.
TRACKED = config["person"] != "top_score"
DATASET2D_INPUT = {"keypoints2d": "results/{video}/keypoints2d.npz"}
DATASET2D_FILES = ""
if TRACKED:
    DATASET2D_INPUT["tracks"] = "results/{video}/tracks.npz"
    DATASET2D_FILES += "--tracks results/{video}/tracks.npz"
if config["dataset2d"]["filter"] != "none":
    DATASET2D_INPUT["timeline"] = "results/{video}/frames/timeline.json"
    DATASET2D_FILES += " --timeline results/{video}/frames/timeline.json"
    DATASET2D_INPUT["timeline_table"] = TIMELINE_TABLE
QC_INPUT = {
    "timeline": "results/{video}/frames/timeline.json",
    "keypoints2d": "results/{video}/keypoints2d.npz",
    "dataset2d": "results/{video}/dataset2d.npz",
    "pose3d": "results/{video}/pose3d.npz",
    **({"tracks": "results/{video}/tracks.npz"} if TRACKED else {}),
    "world": "results/{video}/world.npz",
    # QC's timing source: the benchmark files of the stages before it (declared, so QC runs after
    # they are written).
    "benchmarks": [
        f"results/{{video}}/benchmarks/{stage}.tsv"
        for stage in upstream("qc")
        if STAGE_BY_NAME[stage].benchmark and (stage != "tracks" or TRACKED)
    ],
}
QC_TRACKS = "--tracks results/{video}/tracks.npz" if TRACKED else ""
QC_INPUT["timeline_table"] = TIMELINE_TABLE
# qc's output folder in its command: results/{video}/qc, or the local copy of it when results/ is in
# a bucket (the command text of a local run stays as it was, so finished QC stays up to date).
QC_OUT_DIR = '$(dirname {output.json:q})' if DEFAULT_STORAGE else "results/{wildcards.video}/qc"
ANGLES_OUT_DIR = '$(dirname {output.npz:q})' if DEFAULT_STORAGE else "results/{wildcards.video}"
EVALUATE_OUT_DIR = '$(dirname {output.json:q})' if DEFAULT_STORAGE else "results/{wildcards.video}/evaluate"
if DEFAULT_STORAGE:
    # The same files by their local copies (these params name them by path, not as inputs).
    QC_TRACKS = (lambda wildcards, input: f"--tracks {shlex.quote(input.tracks)}") if TRACKED else ""
    DATASET2D_FILES = lambda wildcards, input: " ".join(
        f"--{name} {shlex.quote(input[name])}" for name in ("tracks", "timeline") if name in input.keys()
    )


def dataset2d_options():
    """Options that are set: the gap setting and the conditioning (only the chosen filter's keys,
    so tuning another filter re-runs nothing)."""
    cfg = config["dataset2d"]
    keys = ["max_gap_frames", "joint_score_threshold"]
    if cfg["filter"] != "none":
        keys += ["filter", *FILTER_KEYS[cfg["filter"]]]
    return command_options(cfg, keys)


# ---- qc ----------------------------------------------------------------


# ---- shards ----------------------------------------------------------------


class JobRule(NamedTuple):
    """Name, output, log, benchmark and part option of the job that does a shardable stage's work
    on the whole video or, with `shard_frames`, on one shard (whose files a local gather named
    after the stage joins). Both variants come from :func:`job_rule`: a stage writes its job once."""

    name: str  # the stage's name, or <stage>_shard
    output: object  # results/{video}/<file>, or a temp file under results/{video}/shards/
    log: str
    benchmark: str
    part: str  # the option choosing the shard, for the shell command ("" for the whole video)


def job_rule(stage, output, *, unit, option):
    """The :class:`JobRule` of ``stage`` writing ``output`` for a whole video, or, with
    `shard_frames` set, one shard: wildcards ``{<unit>_first}``/``{<unit>_stop}`` (named by their
    unit: "frame" counts timeline frames, "out" a render's output frames; see the wildcard
    constraints) passed to the stage as ``option FIRST:STOP``."""
    if not config["shard_frames"]:
        log, benchmark = f"results/{{video}}/logs/{stage}.log", f"results/{{video}}/benchmarks/{stage}.tsv"
        return JobRule(stage, output, log, benchmark, "")
    span = f"{{{unit}_first}}_{{{unit}_stop}}"
    return JobRule(
        f"{stage}_shard",
        temp(f"results/{{video}}/shards/{stage}_{span}{Path(str(output)).suffix}"),
        f"results/{{video}}/logs/{stage}_{span}.log",
        f"results/{{video}}/benchmarks/{stage}_{span}.tsv",
        f" {option} {{wildcards.{unit}_first}}:{{wildcards.{unit}_stop}}",
    )


def shard_ranges(video):
    """The video's [first, stop) timeline ranges, from its shards.json (after the checkpoint ran)."""
    return load_shards(checkpoints.shards.get(video=video).output[0])


def keypoints2d_shard_files(wildcards):
    return [f"results/{wildcards.video}/shards/keypoints2d_{a}_{b}.npz" for a, b in shard_ranges(wildcards.video)]


def render_segment_files(wildcards):
    """Segments of the non-empty output ranges of the video's shards (output frames: {out_first}_{out_stop})."""
    segments = render_segments(
        shard_ranges(wildcards.video), every=config["render"]["every"], max_frames=config["render"]["max_frames"]
    )
    return [f"results/{wildcards.video}/shards/render_{a}_{b}.mp4" for a, b in segments]


# ---- world ----------------------------------------------------------------


WORLD_KEYS = [
    "fov_deg", "assumed_fov_deg", "height_m", "camera_height_m", "camera_tilt_deg", "assumed_tilt_deg",
    "contact_height_m", "contact_speed_mps", "robust", "huber_px", "smooth_hz",
]  # fmt: skip
# Sample-sheet columns -> the stage's options (a sheet value wins over the config's).
WORLD_SHEET = {"fx": "--fx", "fy": "--fy", "cx": "--cx", "cy": "--cy", "fov_deg": "--sheet-fov-deg",
               "focal_mm": "--focal-mm", "sensor_width_mm": "--sensor-width-mm"}  # fmt: skip
WORLD_SHEET_CONFIG = ("height_m", "camera_height_m", "camera_tilt_deg")


def check_world_pattern(key):
    """Stop at start-up on a world.calibration / world.persons pattern that cannot be filled in."""
    pattern = config["world"][key]
    if pattern is None:
        return
    where = f"config world.{key} {pattern!r}"
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise WorkflowError(f"{where}: {exc} (write {{{{ or }}}} for a literal brace)") from None
    for name in fields:
        if name not in FILE_PATTERN_FIELDS:
            allowed = ", ".join(f"{{{field}}}" for field in FILE_PATTERN_FIELDS)
            raise WorkflowError(f"{where}: unknown placeholder {{{name}}}; allowed: {allowed}")


check_world_pattern("calibration")
check_world_pattern("persons")


def world_file(video_id, pattern):
    """A per-video file of the world section: a pattern with {directory}, {stem}, {video} filled in."""
    path = VIDEOS[video_id]["path"]
    if is_url(path):
        parent, stem = url_parent(path), Path(url_name(path)).stem
    else:
        parent, stem = str(Path(path).parent), Path(path).stem
    return pattern.format(directory=config["input"]["directory"] or parent, stem=stem, video=video_id)


def file_input(path):
    """A user's file as an input when it exists (an object in a bucket: staged), else None."""
    if is_url(path):
        return stored(path) if OBJECTS.exists(path) else None
    return local_file(path) if os.path.exists(path) else None


def world_inputs(wildcards):
    """The calibration (sample sheet's column, else world.calibration filled in) and the persons
    file, where they exist: declared inputs, so editing one re-runs world and what follows. A
    calibration named in the sample sheet or without placeholders is declared even when missing,
    so the run stops naming it."""
    video = VIDEOS[wildcards.video]
    found = {}
    given = video.get("calibration") or config["world"]["calibration"]
    if given:
        path = os.fspath(given) if "calibration" in video else world_file(wildcards.video, given)
        if file_input(path) or "calibration" in video or "{" not in config["world"]["calibration"]:
            found["calibration"] = file_input(path) or path
    persons = world_file(wildcards.video, config["world"]["persons"])
    if file_input(persons):
        found["persons"] = file_input(persons)
    return found


def world_options(wildcards, input):
    """The stage's options: the config's world keys, with the sample sheet's values on top."""
    video = VIDEOS[wildcards.video]
    values = {**config["world"], **{k: video[k] for k in WORLD_SHEET_CONFIG if k in video}}
    parts = [command_options(values, WORLD_KEYS)]
    parts += [f"{flag} {video[key]}" for key, flag in WORLD_SHEET.items() if key in video]
    parts += [f"--{name} {shlex.quote(str(getattr(input, name)))}" for name in ("calibration", "persons") if name in input.keys()]
    return " ".join(p for p in parts if p)


def dataset2d_undistort(wildcards):
    """dataset2d.undistort: the video's calibration (as the world stage finds it) and the timeline
    (its rotation), declared so that a new calibration re-runs dataset2d; nothing when off."""
    if not config["dataset2d"]["undistort"]:
        return {}
    found = {k: v for k, v in world_inputs(wildcards).items() if k == "calibration"}
    return {**found, "undistort_timeline": "results/{video}/frames/timeline.json".format(video=wildcards.video)}


def dataset2d_undistort_options(wildcards, input):
    if "calibration" not in input.keys():
        return ""
    return f"--undistort {shlex.quote(str(input.calibration))} --timeline {shlex.quote(str(input.undistort_timeline))}"


# ---- angles ----------------------------------------------------------------


def angles_source():
    """The joints the angles stage reads: "world" (world.npz) when the workflow has a world rule
    (and the config does not turn it off), else "pose3d" (pose3d.npz, camera frame)."""
    world = any(rule.name == "world" for rule in workflow.rules) and config.get("world", {}).get("enabled", True)
    return "world" if world else "pose3d"


def angles_joints_file(wildcards):
    return f"results/{wildcards.video}/{angles_source()}.npz"


ANGLES_FIGURE = (
    {
        "figure": report(
            "results/{video}/angles.png",
            caption="../report/angles_figure.rst",
            category="QC figures",
            labels={"video": "{video}", "figure": "joint angles"},
        )
    }
    if config["angles"]["figure"]
    else {}
)
# qc.html shows the angles figure when the angles stage runs and draws it.
QC_ANGLES_FIGURE = "results/{video}/angles.png" if config["angles"]["enabled"] and config["angles"]["figure"] else []


# ---- evaluate (workflow/rules/evaluate.smk) ------------------------------------


from posepipe.evaluate.reference import JOINT_MAPS
from posepipe.inputs import find_reference

# video -> its reference recording (it may not exist: then that video's job fails alone, naming it).
EVALUATED = {}
if config["evaluate"]["enabled"]:
    for _video, _entry in VIDEOS.items():
        if (_reference := find_reference(_entry, OBJECTS)) is not None:
            EVALUATED[_video] = _reference
_JOINT_MAP = config["evaluate"]["joint_map"]
# A joint map in a file is an input (editing it re-runs evaluate); a shipped name or a mapping in
# the config is a param (changing it re-runs evaluate alone).
EVALUATE_MAP_FILE = _JOINT_MAP if isinstance(_JOINT_MAP, str) and _JOINT_MAP not in JOINT_MAPS else None
EVALUATE_OPTIONS = command_options(
    {**config["evaluate"], "joint_map": json.dumps(_JOINT_MAP, sort_keys=True) if isinstance(_JOINT_MAP, dict) else _JOINT_MAP},
    ["joint_map", "min_overlap_s", "max_offset_s", "trajectory", "figure_joint"],
)


def evaluate_targets():
    """The evaluate outputs of this run's videos that have a reference, and the run-wide table."""
    videos = [video for video in run_videos() if video in EVALUATED]
    targets = [f"results/{video}/evaluate/metrics.json" for video in videos]
    if videos:
        targets += ["results/evaluate_summary.csv", "results/evaluate_intervals.csv", "results/evaluate_summary.html"]
    return targets


def evaluate_inputs(wildcards):
    if wildcards.video not in EVALUATED:
        raise WorkflowError(f"video {wildcards.video} has no reference recording to evaluate against")
    reference = EVALUATED[wildcards.video]
    inputs = {"pose3d": f"results/{wildcards.video}/pose3d.npz", "timeline": f"results/{wildcards.video}/frames/timeline.json"}
    if DEFAULT_STORAGE:
        inputs["timeline_table"] = TIMELINE_TABLE
    if is_url(reference):
        if OBJECTS.exists(reference):
            inputs["reference"] = stored(reference)
    elif os.path.exists(reference):
        inputs["reference"] = local_file(snakemake_safe_path(reference, link_name(wildcards.video, "reference", reference)))
    if EVALUATE_MAP_FILE:
        inputs["joint_map"] = local_file(EVALUATE_MAP_FILE)
    if angles_source() == "world":  # the world stage runs in this workflow: the root trajectory error
        inputs["world"] = f"results/{wildcards.video}/world.npz"
    if config["angles"]["enabled"]:  # the angles stage runs: angle errors
        inputs["angles"] = f"results/{wildcards.video}/angles.npz"
    return inputs


def evaluate_reference(wildcards, input):
    """--reference FILE (the file's own path also when it is missing)."""
    reference = input.get("reference") or os.fspath(EVALUATED[wildcards.video])
    return f"--reference {shlex.quote(shell_path(reference))}"


def evaluate_offset(wildcards, input):
    """--offset-s when the sample sheet gives one; --world / --angles for those inputs."""
    offset = VIDEOS[wildcards.video].get("reference_offset_s")
    options = [] if offset is None else [f"--offset-s {offset}"]
    for name in ("world", "angles"):
        if input.get(name):
            options.append(f"--{name} {shlex.quote(input.get(name))}")
    return " ".join(options)


def write_evaluate_partial():
    """After a failed run: the run-wide evaluate files from the videos whose evaluation is current
    (metrics.json not older than pose3d.npz), naming the others; never raises."""
    if not EVALUATED or DEFAULT_STORAGE:
        return
    from posepipe.evaluate.stage import write_evaluate_summary

    done, left_out = [], []
    for video in EVALUATED:
        metrics, pose = Path(f"results/{video}/evaluate/metrics.json"), Path(f"results/{video}/pose3d.npz")
        if metrics.exists() and pose.exists() and metrics.stat().st_mtime >= pose.stat().st_mtime:
            done.append(metrics)
        else:
            left_out.append(f"{video}: no current evaluation (see results/{video}/logs/evaluate.log)")
    if not done:
        return
    try:
        write_evaluate_summary(
            done, out="results/evaluate_summary.csv", intervals="results/evaluate_intervals.csv",
            html="results/evaluate_summary.html", left_out=left_out,
        )
        logger.error(f"posepipe: results/evaluate_summary.csv covers {len(done)} of {len(EVALUATED)} videos with a reference")
    except Exception as exc:  # the run's own result matters more than its report
        logger.error(f"posepipe: results/evaluate_summary.csv could not be written: {type(exc).__name__}: {exc}")


# ---- opensim ----------------------------------------------------------------


# The opensim stage (off by default) runs when opensim.enabled and OpenSim's Python package is
# importable; enabled without it, one line says how to install it and the stage is left out.
OPENSIM_RUNS = False
if config["opensim"]["enabled"]:
    import importlib.util

    OPENSIM_RUNS = importlib.util.find_spec("opensim") is not None
    if not OPENSIM_RUNS and workflow.is_main_process:
        logger.warning(
            "posepipe: opensim.enabled, but OpenSim's Python package is not installed: "
            "pip install 'posepipe[opensim]' (or pip install opensim); the opensim stage is skipped"
        )


def opensim_inputs(wildcards):
    """world.npz when the workflow has a world rule (world frame), else pose3d.npz (camera frame)."""
    has_world = any(rule.name == "world" for rule in workflow.rules)
    pose = {"world": "results/{video}/world.npz"} if has_world else {"pose3d": "results/{video}/pose3d.npz"}
    table = {"timeline_table": TIMELINE_TABLE} if DEFAULT_STORAGE else {}
    return {**pose, "timeline": "results/{video}/frames/timeline.json", "dataset2d": "results/{video}/dataset2d.npz", **table}


def opensim_source(wildcards, input):
    if "world" in input.keys():
        return f"--world {shlex.quote(input.world)}"
    return f"--pose3d {shlex.quote(input.pose3d)}"


def opensim_options():
    """The stage's options from config (the marker map as JSON)."""
    options = command_options(config["opensim"], ["model", "scaling", "height_m", "mass_kg", "accuracy", "weights"])
    if config["opensim"]["marker_map"]:
        options = f"{options} --marker-map {shlex.quote(json.dumps(config['opensim']['marker_map'], sort_keys=True))}"
    return options


# qc reads the opensim stage's summary.json (IK marker errors per joint) when the stage runs.
QC_OPENSIM = "results/{video}/opensim" if OPENSIM_RUNS else []


def qc_angles_opensim_options(input):
    """qc's --angles-figure and, when the opensim stage runs, --opensim with its warning threshold."""
    options = f"--angles-figure {shlex.quote(input.angles)}" if input.angles else ""
    if input.opensim:
        limit = command_options(config["opensim"], ["max_marker_error_mm"], flags={"max_marker_error_mm": "--max-ik-marker-error-mm"})
        options = f"{options} --opensim {shlex.quote(input.opensim)} {limit}".lstrip()
    return options
