"""The one list of posepipe's stages and backends, read by the package AND the rule files.

Nothing here imports a stage (the module is plain data, cheap to import in ``common.smk``).

Stage versions are the policy for re-running after a code change: each rule passes its stage's
version as a Snakemake ``params`` value, and every output records it. Bump a number when a change
to that stage's code changes its output for the same input: Snakemake then sees changed params and
re-runs that stage and everything downstream of it for every video. Refactors that keep outputs
identical leave the number alone, so nobody re-runs hours of GPU work for a renamed variable.

Adding a stage, a 2D backend, a lifter or an export format: one entry here (see CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    """A stage of the workflow.

    ``entry``: "module:function" of its driver (``run_<stage>``); ``cli``: the module whose
    ``register_cli(sub)`` adds ``python -m posepipe <stage>``; ``section``: its config section (None:
    none); ``gpu``: its jobs take a GPU; ``preload``: modules a warm-start server imports for it;
    ``output``: the file under ``results/{video}/`` whose presence means the stage is done (None:
    not per video); ``reads``: the stages whose outputs it reads (the first present in a run is
    the one the summary compares times against); ``benchmark``: the rule writes
    ``results/{video}/benchmarks/<name>.tsv``.
    """

    name: str
    version: int
    entry: str
    cli: str
    section: str | None = None
    gpu: bool = False
    preload: tuple[str, ...] = ()
    output: str | None = None
    reads: tuple[str, ...] = ()
    benchmark: bool = True
    settings: str | None = None


# In workflow order (the summary's columns follow it).
STAGES: tuple[Stage, ...] = (
    Stage("probe", 2, "posepipe.video:run_probe", "posepipe.video", None, preload=("av", "posepipe.video"),
          output="probe.json"),  # 2: damage record (frames promised, decoded, decode errors)
    Stage("frames", 2, "posepipe.video:run_frames", "posepipe.video", "frames", preload=("pandas", "cv2"),
          output="frames/timeline.json", reads=("probe",),  # 2: warnings for frames lost to damage
          settings="posepipe.video:FramesSettings"),
    Stage("shards", 1, "posepipe.shards:run_shards", "posepipe.shards", None, output=None, benchmark=False),
    Stage("keypoints2d", 1, "posepipe.keypoints2d.cli:run_keypoints2d", "posepipe.keypoints2d.cli", "keypoints2d",
          gpu=True, output="keypoints2d.npz", reads=("frames",),
          settings="posepipe.keypoints2d.cli:Keypoints2DSettings"),
    Stage("tracks", 1, "posepipe.tracks:run_tracks", "posepipe.tracks", "tracks",
          preload=("scipy.optimize", "posepipe.tracks"), output="tracks.npz", reads=("keypoints2d",),
          settings="posepipe.tracks:TracksSettings"),
    Stage("dataset2d", 1, "posepipe.dataset2d:run_dataset2d", "posepipe.dataset2d", "dataset2d",
          preload=("scipy.signal", "posepipe.dataset2d"), output="dataset2d.npz", reads=("tracks", "keypoints2d"),
          settings="posepipe.dataset2d:Dataset2DSettings"),
    Stage("lift3d", 1, "posepipe.lift3d.stage:run_lift3d", "posepipe.lift3d.cli", "lift3d", gpu=True,
          preload=("torch", "posepipe.lift3d.stage", "posepipe.lift3d.videopose3d"), output="pose3d.npz",
          reads=("dataset2d",), settings="posepipe.lift3d.stage:Lift3DSettings"),
    Stage("qc", 1, "posepipe.qc:run_qc", "posepipe.qc", "qc", preload=("posepipe.qc",), output="qc/qc.json",
          reads=("lift3d", "world"), settings="posepipe.qc:QCSettings"),
    Stage("render", 1, "posepipe.render.stage:run_render", "posepipe.render", "render",
          preload=("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "mpl_toolkits.mplot3d",
                   "posepipe.render.stage", "posepipe.render.scene"),
          output="render.mp4", reads=("lift3d",), settings="posepipe.render.stage:RenderSettings"),
    Stage("export", 1, "posepipe.exports.stage:run_export", "posepipe.exports.stage", "export",
          preload=("scipy.spatial.transform", "posepipe.exports.stage", "posepipe.exports.tables",
                   "posepipe.exports.trc", "posepipe.exports.bvh"),
          benchmark=False, settings="posepipe.exports.stage:ExportSettings"),
    Stage("summary", 1, "posepipe.summary:write_summary", "posepipe.summary", None, preload=("posepipe.summary",),
          benchmark=False),
    Stage("world", 1, "posepipe.world.stage:run_world", "posepipe.world.stage", "world",
          preload=("cv2", "posepipe.world.stage"), output="world.npz", reads=("lift3d", "dataset2d", "frames"),
          settings="posepipe.world.stage:WorldSettings"),
    Stage("angles", 1, "posepipe.angles:run_angles", "posepipe.angles", "angles", preload=("posepipe.angles",),
          output="angles.npz", reads=("world", "lift3d"), settings="posepipe.angles:AnglesSettings"),
    # Only for videos with a reference recording, so no per-video output the summary waits for.
    Stage("evaluate", 1, "posepipe.evaluate.stage:run_evaluate", "posepipe.evaluate.stage", "evaluate",
          preload=("posepipe.evaluate.stage",), output=None, reads=("lift3d", "world"),
          settings="posepipe.evaluate.stage:EvaluateSettings"),
    # Off by default (opensim.enabled); opensim itself is an optional extra, not preloaded.
    Stage("opensim", 2, "posepipe.osim.stage:run_opensim", "posepipe.osim.stage", "opensim",
          preload=("posepipe.osim.stage",), output="opensim/summary.json", reads=("world", "lift3d"),
          settings="posepipe.osim.stage:OpenSimSettings"),
)  # fmt: skip

STAGE_BY_NAME = {stage.name: stage for stage in STAGES}
STAGE_VERSIONS = {stage.name: stage.version for stage in STAGES}
# Stages whose rules write a benchmark file per video (QC reports their seconds).
BENCHMARK_STAGES = tuple(stage.name for stage in STAGES if stage.benchmark)
# Sub-commands that are tools, not stages (weights download, GPU lease, config check).
TOOL_CLI = ("posepipe.weights", "posepipe.gpu", "posepipe.settings", "posepipe.calibrate")
# Imported by a warm-start server besides each stage's preload (what every stage imports at start).
COMMON_PRELOAD = ("numpy", "yaml", "posepipe.cli")


def upstream(name: str) -> tuple[str, ...]:
    """The stages whose outputs ``name`` reads, directly or through others, in workflow order."""
    found, todo = set(), list(STAGE_BY_NAME[name].reads)
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo += STAGE_BY_NAME[stage].reads
    return tuple(stage.name for stage in STAGES if stage.name in found)


def cli_modules() -> tuple[str, ...]:
    """Modules with ``register_cli``, stages in workflow order then the tools, each once."""
    return tuple(dict.fromkeys([stage.cli for stage in STAGES] + list(TOOL_CLI)))


def preload_modules(sources: tuple[str, ...] = ()) -> tuple[str, ...]:
    """What a warm-start server imports: the common modules, each stage's and each 2D source's."""
    mods = list(COMMON_PRELOAD)
    for stage in STAGES:
        mods += stage.preload
    for name in sources or tuple(SOURCES2D):
        mods += SOURCES2D[name].preload
    return tuple(dict.fromkeys(mods))


def entry_point(spec: str):
    """The function named by "module:function" (imported on call)."""
    import importlib

    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


# ---- backends ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source2D:
    """A 2D keypoint source (``keypoints2d.source``).

    ``module``: its module (the stage runs its ``run_source(settings, inputs)``); ``gpu``: its
    jobs take a GPU (and run under ``python -m posepipe with-gpu``), or a dotted key of the
    ``keypoints2d`` section ("rtmlib.device") whose value decides it, a GPU when it starts with
    "cuda" (:func:`source_uses_gpu`); ``input``: the rule input it
    needs besides the timeline, "weights" (a model file, ``--weights FILE``), "onnx" (rtmlib's ONNX
    files, ``--weights POSE [--det-weights DET]``) or "keypoints" (the
    video's keypoints file, ``--input FILE``); ``options``: the keys of the ``keypoints2d`` config
    section (dotted in a sub-section) that change its output, as {key: command-line flag}; ``align_batches``: shards start at
    multiples of ``keypoints2d.batch_size`` (batched inference), so the joined arrays equal an
    unsharded run's; ``install``: how to get its packages.
    """

    name: str
    module: str
    gpu: bool | str
    input: str
    options: dict = field(default_factory=dict)
    align_batches: bool = False
    preload: tuple[str, ...] = ()
    install: str = ""


SOURCES2D: dict[str, Source2D] = {
    "detectron2": Source2D(
        "detectron2", "posepipe.keypoints2d.detectron2_backend", gpu=True, input="weights",
        options={"model": "--config", "score_threshold": "--score-threshold", "min_size": "--min-size",
                 "max_size": "--max-size", "amp": "--amp"},
        align_batches=True,
        install="pip install 'git+https://github.com/facebookresearch/detectron2.git' (see envs/detectron2.yaml)",
    ),
    "file": Source2D(
        "file", "posepipe.keypoints2d.importers", gpu=False, input="keypoints",
        options={"score_threshold": "--score-threshold"}, preload=("posepipe.keypoints2d.importers",),
    ),
    "rtmlib": Source2D(
        "rtmlib", "posepipe.keypoints2d.rtmlib_backend", gpu="rtmlib.device", input="onnx",
        options={"rtmlib.model": "--rtmlib-model", "score_threshold": "--score-threshold",
                 "rtmlib.nms_threshold": "--nms-threshold", "rtmlib.device": "--rtmlib-device"},
        align_batches=True, preload=("posepipe.keypoints2d.rtmlib_backend",),
        install="pip install onnxruntime (or onnxruntime-gpu for keypoints2d.rtmlib.device: cuda)",
    ),
}  # fmt: skip


def source_uses_gpu(source: Source2D, keypoints2d: dict) -> bool:
    """Whether ``source``'s jobs take a GPU under the ``keypoints2d`` config section."""
    if isinstance(source.gpu, bool):
        return source.gpu
    value = keypoints2d
    for part in source.gpu.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return isinstance(value, str) and value.startswith("cuda")


@dataclass(frozen=True)
class Lifter:
    """A 2D-to-3D lifter (``lift3d.lifter``): ``module`` implements the lifter interface
    (``build(checkpoint_path, device, causal) -> model``, ``receptive_field(model)``,
    ``infer(model, keypoints (T, 17, 2) normalised, ...) -> (T, 17, 3)``); ``weights``: the
    :data:`posepipe.weights.PUBLISHED` name of its default checkpoint (URL, size, SHA-256 there)."""

    name: str
    module: str
    weights: str
    install: str = ""


LIFTERS: dict[str, Lifter] = {
    "videopose3d": Lifter(
        "videopose3d",
        "posepipe.lift3d.videopose3d",
        weights="videopose3d_h36m_detectron_coco",
        install="python -m posepipe download videopose3d_h36m_detectron_coco (or snakemake downloads it)",
    ),
}
DEFAULT_LIFTER = "videopose3d"


@dataclass(frozen=True)
class ExportFormat:
    """An export format: ``writer`` is "module:function" taking ``(path, motion)``; the file's
    extension is the format's name."""

    name: str
    writer: str


EXPORT_FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat("csv", "posepipe.exports.tables:write_csv"),
        ExportFormat("json", "posepipe.exports.tables:write_json"),
        ExportFormat("trc", "posepipe.exports.trc:write_trc"),
        ExportFormat("c3d", "posepipe.exports.c3d:write_c3d"),
        ExportFormat("bvh", "posepipe.exports.bvh:write_bvh"),
    )
}
