"""Stage ``qc``: quality numbers of one video, a per-joint table and a figure; the qc artefact.

Reads the stages' own files through their loaders: the timeline (fps, frame count), keypoints2d.npz
(people per frame), tracks.npz when people are tracked, dataset2d.npz (detected / interpolated
frames, keypoint scores, per person) and pose3d.npz (bone lengths, joint speeds), plus the
Snakemake benchmark files of the stages before it, which its rule declares as inputs (each stage's
seconds).

Files in ``results/{video}/qc/``:

- ``qc.json``: ``stage``, ``stage_version``, ``video``, ``frames``, ``fps``, ``duration_s``,
  ``person_mode``; ``people_per_frame``: ``max``, ``mean``, ``several_share`` (share of frames with
  two or more detections); ``tracks`` (tracked videos): ``count``, ``fragments_merged`` (times a
  lost track was re-found), ``frames_with_two_or_more``; ``persons``: one entry per lifted person
  (one for ``person: top_score``) with ``name``, ``track``, ``frames_present``, ``detection_rate``
  (detected / present frames), ``interpolated_frames``, ``interpolated_runs``,
  ``longest_interpolated_run``, ``longest_gap`` (longest run without a detection between the
  person's first and last detection, absences included), ``mean_keypoint_score``,
  ``bone_cv`` ({bone: coefficient of variation of its 3D length}), ``max_bone_cv``,
  ``mean_joint_speed`` and ``p99_joint_speed`` (m/s, camera space, root-relative),
  ``conditioning`` (what dataset2d did, when anything); ``stage_seconds`` ({stage: s});
  ``checkpoint`` (the lifter's weights as pose3d.npz records them: ``path``, ``sha256``, and
  ``published``, the name of the published file with that SHA-256 in
  :data:`posepipe.weights.PUBLISHED`, or null: then a warning says the poses come from other
  weights); ``thresholds`` and ``warnings`` (short reasons, the list summary.csv joins).
- ``qc_joints.csv``: per person and COCO joint: ``mean_score``, ``p10_score`` (detected frames);
  per person and Human3.6M joint: ``mean_speed``, ``p99_speed`` (m/s). Columns
  ``person, skeleton, joint, mean_score, p10_score, mean_speed, p99_speed``.
- ``qc.png``: keypoint score over time, detected / interpolated / absent frames, bone-length
  stability, joint speed; one colour per person.
- ``qc.html``: the warnings, the figure (qc.png embedded), the render's preview when asked
  (``--preview``: a relative link to the GIF, which the render stage may write later), the evaluate
  stage's figure for a video with a reference recording (``--evaluation``, likewise), a table of
  the numbers per person and the per-joint table, one page that also works opened alone (what
  ``snakemake --report`` shows for the video).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.artefacts.qc import JOINT_COLUMNS, STAGE, VERSION, save_qc, save_qc_joints
from posepipe.atomic import atomic_path
from posepipe.benchmarks import stage_seconds
from posepipe.conditioning import runs
from posepipe.errors import PosepipeError
from posepipe.settings import add_option, schema_default, settings_from_args
from posepipe.skeleton import COCO_JOINTS, H36M_BONES, H36M_JOINTS

log = logging.getLogger(__name__)

BENCHMARK_STAGES = ("probe", "frames", "keypoints2d", "tracks", "dataset2d", "lift3d", "render")
BONE_NAMES = tuple(f"{H36M_JOINTS[parent]}-{H36M_JOINTS[child]}" for child, parent in H36M_BONES)


@dataclass(frozen=True)
class QCSettings:
    """When a number becomes a warning (config ``qc:``)."""

    max_interpolated_share: float = schema_default("qc.max_interpolated_share")
    max_several_people_share: float = schema_default("qc.max_several_people_share")
    max_bone_cv: float = schema_default("qc.max_bone_cv")
    max_p99_joint_speed: float = schema_default("qc.max_p99_joint_speed")


# ---------------------------------------------------------------------------------------------
# numbers


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a bool (T,) array (0 if none)."""
    return max((stop - start for start, stop in runs(mask)), default=0)


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (T, 16): length of each Human3.6M bone (order of ``H36M_BONES``)."""
    child = np.array([c for c, _ in H36M_BONES])
    parent = np.array([p for _, p in H36M_BONES])
    return np.linalg.norm(positions[:, child] - positions[:, parent], axis=-1)


def bone_cv(positions: np.ndarray) -> np.ndarray:
    """(T, 17, 3) with NaN frames -> (16,) coefficient of variation of each bone's length (std / mean)."""
    lengths = bone_lengths(positions)
    lengths = lengths[np.isfinite(lengths).all(axis=1)]
    if len(lengths) == 0:
        return np.full(len(H36M_BONES), np.nan)
    mean = lengths.mean(axis=0)
    return np.divide(lengths.std(axis=0), mean, out=np.zeros_like(mean), where=mean > 0)


def joint_speeds(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T, 17, 3) metres -> (T - 1, 17) m/s between consecutive frames; NaN where either frame is absent."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1) * fps


def person_numbers(
    *, keypoints2d_person, positions: np.ndarray, fps: float
) -> tuple[dict, np.ndarray, np.ndarray]:
    """QC numbers of one person, plus (per-joint score stats (17, 2), per-joint speed stats (17, 2))."""
    ds = keypoints2d_person
    present = ds.present
    detected = ds.detected & present
    interpolated = present & ~detected
    seen = np.flatnonzero(detected)
    span = np.zeros_like(detected)
    if len(seen):
        span[seen[0] : seen[-1] + 1] = True
    scores = (
        ds.scores[detected] if ds.scores is not None and detected.any() else np.zeros((0, len(COCO_JOINTS)))
    )
    speeds = joint_speeds(positions, fps)
    valid = np.isfinite(speeds)
    cv = bone_cv(positions)
    numbers = {
        "name": ds.name,
        "track": int(ds.track_id),
        "frames_present": int(present.sum()),
        "detection_rate": round(float(detected.sum() / max(present.sum(), 1)), 4),
        "interpolated_frames": int(interpolated.sum()),
        "interpolated_runs": len(runs(interpolated)),
        "longest_interpolated_run": longest_run(interpolated),
        "longest_gap": longest_run(span & ~detected),
        "mean_keypoint_score": round(float(scores.mean()), 4) if len(scores) else None,
        "bone_cv": {
            name: None if np.isnan(v) else round(float(v), 5) for name, v in zip(BONE_NAMES, cv, strict=True)
        },
        "max_bone_cv": None if np.isnan(cv).all() else round(float(np.nanmax(cv)), 5),
        "mean_joint_speed": round(float(speeds[valid].mean()), 4) if valid.any() else None,
        "p99_joint_speed": round(float(np.percentile(speeds[valid], 99)), 4) if valid.any() else None,
    }
    if "conditioning" in ds.meta:
        numbers["conditioning"] = ds.meta["conditioning"]
    score_stats = (
        np.stack([scores.mean(axis=0), np.percentile(scores, 10, axis=0)], axis=1)
        if len(scores)
        else np.full((len(COCO_JOINTS), 2), np.nan)
    )
    speed_stats = np.full((len(H36M_JOINTS), 2), np.nan)
    for j in range(len(H36M_JOINTS)):
        column = speeds[valid[:, j], j]
        if len(column):
            speed_stats[j] = column.mean(), np.percentile(column, 99)
    return numbers, score_stats, speed_stats


def checkpoint_record(pose_meta: dict) -> dict | None:
    """qc.json's ``checkpoint``: the lifter weights recorded in pose3d.npz's meta (path, SHA-256)
    and ``published``, the :data:`posepipe.weights.PUBLISHED` name of the file with that SHA-256
    (None: not a published file). None when the meta records no checkpoint."""
    from posepipe.weights import PUBLISHED

    recorded = pose_meta.get("checkpoint")
    if not isinstance(recorded, dict) or not recorded.get("sha256"):
        return None
    sha = str(recorded["sha256"]).lower()
    name = next((n for n, f in PUBLISHED.items() if f.sha256 and f.sha256.lower() == sha), None)
    return {"path": recorded.get("path"), "sha256": sha, "published": name}


def checkpoint_warning(checkpoint: dict | None) -> str | None:
    """The warning for poses lifted with weights that are not a published file, else None."""
    from posepipe.weights import PUBLISHED

    if checkpoint is None or checkpoint["published"] is not None:
        return None
    lifter = PUBLISHED["videopose3d_h36m_detectron_coco"]
    name = os.path.basename(checkpoint["path"] or "") or "?"
    return (
        f"lifted with {name} (SHA-256 {checkpoint['sha256'][:12]}...), not the published "
        f"{lifter.filename} (SHA-256 {lifter.sha256[:12]}...)"
    )


def warnings_for(report: dict, thresholds: QCSettings) -> list[str]:
    """Short reasons for summary.csv, e.g. '38% of frames interpolated'."""
    out = []
    if unpublished := checkpoint_warning(report.get("checkpoint")):
        out.append(unpublished)
    several = report["people_per_frame"]["several_share"]
    if report["person_mode"] == "top_score" and several > thresholds.max_several_people_share:
        out.append(f"two or more people in view in {several:.0%} of frames (person: top_score follows one)")
    for person in report["persons"]:
        who = "" if person["track"] < 0 else f"{person['name']}: "
        share = person["interpolated_frames"] / max(person["frames_present"], 1)
        if share > thresholds.max_interpolated_share:
            out.append(f"{who}{share:.0%} of frames interpolated")
        if person["max_bone_cv"] is not None and person["max_bone_cv"] > thresholds.max_bone_cv:
            worst = max(person["bone_cv"], key=lambda k: person["bone_cv"][k] or 0)
            out.append(f"{who}bone length varies {person['max_bone_cv']:.0%} ({worst})")
        if (
            person["p99_joint_speed"] is not None
            and person["p99_joint_speed"] > thresholds.max_p99_joint_speed
        ):
            out.append(f"{who}joints move at {person['p99_joint_speed']:.1f} m/s (99th percentile): jitter?")
    return out


def world_numbers(world_npz, *, frame_count: int) -> dict:
    """qc.json's ``world`` section: where the camera, scale and floor came from, the floor fit's
    RMS residual (m, None unless fitted to contacts) and the reprojection error (px) overall and per
    person (mean and 95th percentile over the frames a person is placed in)."""
    from posepipe.artefacts.world import load_world

    world = load_world(world_npz, frame_count=frame_count)

    def stats(values: np.ndarray) -> dict:
        values = values[np.isfinite(values)]
        if not len(values):
            return {"mean": None, "p95": None}
        return {"mean": round(float(values.mean()), 3), "p95": round(float(np.percentile(values, 95)), 3)}

    residual = world.meta.get("floor_residual_m")
    return {
        "intrinsics_source": world.meta["intrinsics_source"],
        "scale_source": world.meta["scale_source"],
        "floor_source": world.meta["floor_source"],
        "floor_residual_m": None if residual is None else round(float(residual), 4),
        "lens": world.lens,
        "reprojection_px": stats(world.reprojection_px.reshape(-1)),
        "persons": [
            {"track": int(track), "scale": round(float(world.scale[p]), 4), "reprojection_px": stats(world.reprojection_px[p]),
             "contact_share": round(float(world.contacts[p][world.present()[p]].mean()), 4) if world.present()[p].any() else None}
            for p, track in enumerate(world.track_ids)
        ],
    }  # fmt: skip


def opensim_numbers(opensim_dir, *, max_marker_error_mm: float) -> dict:
    """qc.json's ``opensim`` section from the opensim stage's ``summary.json``: per person, its
    status and the IK marker error per joint (mm, mean and maximum over the solved frames: the
    solved model's marker against the joint it tracks), and the warning threshold (a joint whose
    mean error is above it is named in the warnings)."""
    import json

    path = Path(opensim_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PosepipeError(path, f"cannot be read ({exc})") from None
    persons = []
    for person in summary.get("persons", []):
        if person.get("status") == "ok" and "marker_error_mm" not in person:
            raise PosepipeError(path, "has no per-joint marker errors (an opensim stage before version 2)")
        persons.append({
            "person": person["person"], "track": person["track"], "status": person["status"],
            "marker_error_mm": person.get("marker_error_mm"), "reason": person.get("reason"),
        })  # fmt: skip
    return {"max_marker_error_mm": max_marker_error_mm, "persons": persons}


def opensim_warnings(section: dict) -> list[str]:
    """A warning per person whose IK marker error (mean over frames) is above the threshold at
    some joint, naming the worst joint; and one per person IK could not solve."""
    out = []
    for person in section["persons"]:
        if person["status"] != "ok":
            out.append(f"{person['person']}: OpenSim IK failed ({person['reason']})")
            continue
        errors = {j: e for j, e in person["marker_error_mm"].items() if e is not None}
        large = [j for j, e in errors.items() if e["mean"] > section["max_marker_error_mm"]]
        if large:
            worst = max(large, key=lambda j: errors[j]["mean"])
            out.append(
                f"{person['person']}: OpenSim IK marker error {errors[worst]['mean']:.0f} mm at {worst} "
                f"(mean; {len(large)} joint(s) over {section['max_marker_error_mm']:g} mm)"
            )
    return out


def opensim_table(section: dict):
    """qc.html's IK marker error table: person, joint, mean and maximum (mm)."""
    import pandas as pd

    rows = [
        {"person": person["person"], "joint": joint, "mean_mm": (e or {}).get("mean"), "max_mm": (e or {}).get("max")}
        for person in section["persons"] if person["status"] == "ok"
        for joint, e in person["marker_error_mm"].items()
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["person", "joint", "mean_mm", "max_mm"])


def keypoints2d_record(meta: dict) -> dict:
    """qc.json's ``keypoints2d``: which 2D model made the keypoints, from keypoints2d.npz's meta:
    ``detector`` ("detectron2 Keypoint R-CNN", "rtmlib rtmo-m", "import:coco", ...), ``model``
    (the detectron2 config, the rtmlib model, or the imported file's format) and ``sha256`` (of the
    weights, or of the imported file)."""
    return {
        "detector": meta.get("detector"),
        "model": meta.get("model") or meta.get("config") or meta.get("format"),
        "sha256": meta.get("weights_sha256") or meta.get("source_sha256"),
    }


def compute_qc(
    *,
    timeline_json,
    keypoints2d_npz,
    dataset2d_npz,
    pose3d_npz,
    tracks_npz=None,
    thresholds: QCSettings,
    benchmarks=(),
    world_npz=None,
    opensim_dir=None,
    max_ik_marker_error_mm: float | None = None,
) -> tuple[dict, list[dict], dict]:
    """(qc.json content, qc_joints.csv rows, arrays for the figure); ``benchmarks``: Snakemake
    benchmark files ``{stage}.tsv`` of the stages before qc (their seconds)."""
    from posepipe.artefacts.dataset2d import load_persons2d
    from posepipe.artefacts.keypoints2d import load_keypoints2d
    from posepipe.artefacts.pose3d import load_pose3d
    from posepipe.artefacts.timeline import load_timeline_header

    header = load_timeline_header(timeline_json)
    T, fps = int(header["frame_count"]), float(header["fps"])
    kp = load_keypoints2d(keypoints2d_npz)
    if kp.num_frames != T:
        raise PosepipeError(keypoints2d_npz, f"has {kp.num_frames} frames, the timeline has {T}")
    people = load_persons2d(dataset2d_npz)
    pose = load_pose3d(pose3d_npz, frame_count=T)
    positions = pose.positions
    if len(positions) != len(people):
        raise PosepipeError(pose3d_npz, f"holds {len(positions)} persons, {dataset2d_npz} {len(people)}")
    counts = kp.counts()
    report = {
        "stage": STAGE, "stage_version": VERSION, "posepipe_version": __version__,
        "video": header.get("video_id"), "frames": T, "fps": fps, "duration_s": round(T / fps, 4),
        "person_mode": "top_score" if people[0].track_id < 0 else people[0].meta.get("person", "all"),
        "people_per_frame": {
            "max": int(counts.max(initial=0)), "mean": round(float(counts.mean()), 4) if T else 0.0,
            "several_share": round(float((counts > 1).mean()), 4) if T else 0.0,
        },
    }  # fmt: skip
    report["keypoints2d"] = keypoints2d_record(kp.meta)
    if tracks_npz is not None:
        from posepipe.artefacts.tracks import load_tracks

        tracks = load_tracks(tracks_npz, detections=len(kp.boxes))
        report["tracks"] = {
            "count": tracks.num_tracks,
            "fragments_merged": int(tracks.refound.sum()),
            "frames_with_two_or_more": int((counts > 1).sum()),
        }
    rows, figure = [], {"scores": [], "detected": [], "present": [], "bones": [], "speed": [], "names": []}
    persons = []
    for ds, person_positions in zip(people, positions, strict=True):
        numbers, score_stats, speed_stats = person_numbers(
            keypoints2d_person=ds, positions=person_positions, fps=fps
        )
        persons.append(numbers)
        label = numbers["name"]  # as in the per-person table (the video's name with person: top_score)
        rows += [{"person": label, "skeleton": "coco", "joint": name, "mean_score": score_stats[j, 0],
                  "p10_score": score_stats[j, 1]} for j, name in enumerate(COCO_JOINTS)]  # fmt: skip
        rows += [{"person": label, "skeleton": "h36m", "joint": name, "mean_speed": speed_stats[j, 0],
                  "p99_speed": speed_stats[j, 1]} for j, name in enumerate(H36M_JOINTS)]  # fmt: skip
        lengths = bone_lengths(person_positions)
        figure["scores"].append(
            np.where(ds.detected, ds.scores.mean(axis=1), np.nan) if ds.scores is not None else None
        )
        figure["detected"].append(ds.detected & ds.present)
        figure["present"].append(ds.present)
        figure["bones"].append(lengths / np.nanmedian(lengths, axis=0))
        figure["speed"].append(np.nanmean(joint_speeds(person_positions, fps), axis=1))
        figure["names"].append(label)
    report["persons"] = persons
    report["stage_seconds"] = stage_seconds(benchmarks)
    report["checkpoint"] = checkpoint_record(pose.meta)
    if world_npz is not None:
        report["world"] = world_numbers(world_npz, frame_count=T)
    report["thresholds"] = asdict(thresholds)
    report["warnings"] = warnings_for(report, thresholds)
    if opensim_dir is not None:
        limit = max_ik_marker_error_mm
        if limit is None:
            limit = schema_default("opensim.max_marker_error_mm")
        report["opensim"] = opensim_numbers(opensim_dir, max_marker_error_mm=float(limit))
        report["warnings"] += opensim_warnings(report["opensim"])
    figure["fps"] = fps
    return report, rows, figure


# ---------------------------------------------------------------------------------------------
# the figure and the files


def draw_figure(path: str | os.PathLike, figure: dict, *, title: str) -> None:
    """Write the four-panel QC figure (PNG, atomic)."""
    import warnings

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fps = figure["fps"]
    colours = matplotlib.colormaps["tab10"].colors
    fig = Figure(figsize=(11, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    (a, b), (c, d) = fig.subplots(2, 2, sharex=True)
    fig.suptitle(title)
    for i, name in enumerate(figure["names"]):
        colour = colours[i % len(colours)]
        t = np.arange(len(figure["present"][i])) / fps
        if figure["scores"][i] is not None:
            a.plot(t, figure["scores"][i], color=colour, lw=0.8, label=name)
        for mask, alpha in (
            (figure["present"][i] & ~figure["detected"][i], 0.35),
            (figure["detected"][i], 1.0),
        ):
            spans = [(start / fps, (stop - start) / fps) for start, stop in runs(mask)]
            b.broken_barh(spans, (i - 0.35, 0.7), color=colour, alpha=alpha)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames where a person is absent
            bones = figure["bones"][i]
            c.plot(t, np.nanmax(np.abs(bones - 1), axis=1) * 100, color=colour, lw=0.8, label=name)
        d.plot(t[1:], figure["speed"][i], color=colour, lw=0.8, label=name)
    a.set(ylabel="mean keypoint score", ylim=(0, 1.05), title="2D keypoint score (detected frames)")
    b.set(
        yticks=range(len(figure["names"])),
        yticklabels=figure["names"],
        title="detected (solid), interpolated (light)",
    )
    c.set(ylabel="% from median length", xlabel="time (s)", title="largest bone-length deviation")
    d.set(ylabel="m/s", xlabel="time (s)", title="mean joint speed (root-relative)")
    for axis in (a, c, d):
        axis.grid(alpha=0.3)
    if len(figure["names"]) > 1:
        a.legend(fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def run_qc(
    *, timeline_json, keypoints2d_npz, dataset2d_npz, pose3d_npz, out_dir, tracks_npz=None,
    settings: QCSettings | None = None, benchmarks=(), preview: str | None = None, world_npz=None,
    angles_figure=None, evaluation: str | None = None, opensim_dir=None, max_ik_marker_error_mm: float | None = None,
) -> dict:  # fmt: skip
    """The ``qc`` stage: writes qc.json, qc_joints.csv, qc.png and qc.html into ``out_dir``; returns
    qc.json's content. ``preview``: the render preview's URL relative to ``out_dir`` (e.g.
    ``../preview.gif``) for qc.html, or None (no render preview); ``angles_figure``: the angles
    stage's angles.png, embedded in qc.html (None: none); ``evaluation``: the evaluate stage's
    figure relative to ``out_dir`` (``../evaluate/evaluate.png``, videos with a reference
    recording), or None."""
    import pandas as pd

    report, rows, figure = compute_qc(
        timeline_json=timeline_json, keypoints2d_npz=keypoints2d_npz, dataset2d_npz=dataset2d_npz,
        pose3d_npz=pose3d_npz, tracks_npz=tracks_npz, thresholds=settings or QCSettings(),
        benchmarks=benchmarks, world_npz=world_npz, opensim_dir=opensim_dir,
        max_ik_marker_error_mm=max_ik_marker_error_mm,
    )  # fmt: skip
    out_dir = Path(out_dir)
    draw_figure(
        out_dir / "qc.png",
        figure,
        title=f"{report['video']}: {report['frames']} frames at {report['fps']:.3f} fps",
    )
    joints = pd.DataFrame(rows).reindex(columns=JOINT_COLUMNS)
    save_qc_joints(out_dir / "qc_joints.csv", joints)
    write_qc_page(
        out_dir / "qc.html",
        report,
        joints,
        figure=out_dir / "qc.png",
        preview=preview,
        angles_figure=angles_figure,
        evaluation=evaluation,
    )
    save_qc(out_dir / "qc.json", report)  # last: its presence means the stage finished
    log.info("%s: qc written to %s (%d warnings)", report["video"], out_dir, len(report["warnings"]))
    return report


def write_qc_page(
    path: str | os.PathLike,
    report: dict,
    joints,
    *,
    figure=None,
    preview: str | None = None,
    angles_figure=None,
    evaluation: str | None = None,
) -> None:
    """qc.html: warnings, the figure (the PNG ``figure`` embedded), the preview (``preview``: a URL
    relative to the page), the joint angles figure (the PNG ``angles_figure`` embedded), the
    per-person numbers and the per-joint table."""
    import pandas as pd

    from posepipe.report import image_tag, linked_image, table, warnings_list, write_page

    keys = ["name", "frames_present", "detection_rate", "interpolated_frames", "longest_interpolated_run",
            "longest_gap", "mean_keypoint_score", "max_bone_cv", "mean_joint_speed", "p99_joint_speed"]  # fmt: skip
    persons = pd.DataFrame([{k: person.get(k) for k in keys} for person in report["persons"]])
    video = {"frames": report["frames"], "fps": round(report["fps"], 4), "duration_s": report["duration_s"],
             "people max": report["people_per_frame"]["max"], "people mean": report["people_per_frame"]["mean"],
             **{f"tracks {k}": v for k, v in report.get("tracks", {}).items()},
             **{f"{stage} s": v for stage, v in report["stage_seconds"].items()}}  # fmt: skip
    if checkpoint := report.get("checkpoint"):
        video["lifter weights"] = (
            f"{os.path.basename(checkpoint['path'] or '') or '?'} "
            f"({'published' if checkpoint['published'] else 'NOT the published file'}; "
            f"SHA-256 {checkpoint['sha256'][:12]}...)"
        )
    pictures = []
    if figure is not None:
        pictures.append(image_tag(figure, alt=f"QC figure of {report['video']}"))

    def written_later(url: str, title: str, what: str, alt: str, stage: str, category: str) -> list[str]:
        """A figure another stage writes beside this page later: linked, with what to do if absent."""
        missing = (
            f"The {what} ({url} from this page) is not here: it is written by the {stage} stage, and "
            f"in the Snakemake report it is under {category}."
        )
        return [f"<h3>{title}</h3>", linked_image(url, alt=f"{alt} of {report['video']}", missing=missing)]

    if preview is not None:
        pictures += written_later(preview, "Preview", "preview", "preview", "render", "Previews")
    if angles_figure is not None:
        pictures += [
            "<h3>Joint angles</h3>",
            image_tag(angles_figure, alt=f"joint angles of {report['video']}"),
        ]
    if evaluation is not None:
        pictures += written_later(evaluation, "Against the reference recording",
                                  "comparison with the reference recording", "evaluation", "evaluate", "Validation")  # fmt: skip
    ik = []
    if "opensim" in report:
        limit = report["opensim"]["max_marker_error_mm"]
        ik = [f"<h3>OpenSim IK marker error per joint (mm; warning above a mean of {limit:g})</h3>",
              table(opensim_table(report["opensim"]))]  # fmt: skip
    write_page(path, f"QC of {report['video']}", [
        warnings_list(report["warnings"]),
        *pictures,
        "<h3>Video</h3>", table(pd.DataFrame([video])),
        "<h3>Per person</h3>", table(persons),
        "<h3>Per joint</h3>", table(joints),
        *ik,
    ])  # fmt: skip


def register_cli(sub) -> None:
    p = sub.add_parser("qc", help="quality numbers, per-joint table and figure of one video")
    p.add_argument("timeline", type=Path, metavar="TIMELINE_JSON")
    p.add_argument("--keypoints2d", type=Path, required=True)
    p.add_argument("--dataset2d", type=Path, required=True)
    p.add_argument("--pose3d", type=Path, required=True)
    p.add_argument("--tracks", type=Path, default=None, help="tracks.npz (person: main / all)")
    p.add_argument(
        "--world", type=Path, default=None, help="world.npz (its numbers go in qc.json's world section)"
    )
    p.add_argument("--out-dir", type=Path, required=True, help="results/{video}/qc")
    p.add_argument(
        "--benchmarks", type=Path, nargs="*", default=[], metavar="TSV",
        help="Snakemake benchmark files {stage}.tsv of the stages before qc (their seconds go in qc.json)",
    )  # fmt: skip
    p.add_argument(
        "--preview", default=None, metavar="URL",
        help="the render preview relative to --out-dir for qc.html (e.g. ../preview.gif); unset: none",
    )  # fmt: skip
    p.add_argument(
        "--angles-figure", type=Path, default=None, help="the angles stage's angles.png, shown in qc.html"
    )
    p.add_argument(
        "--evaluation", default=None, metavar="URL",
        help="the evaluate stage's figure relative to --out-dir for qc.html (e.g. ../evaluate/evaluate.png); "
        "unset: none",
    )  # fmt: skip
    p.add_argument(
        "--opensim", type=Path, default=None, metavar="DIR",
        help="the opensim stage's folder (its IK marker errors per joint go in qc.json and qc.html); unset: none",
    )  # fmt: skip
    add_option(
        p, "--max-ik-marker-error-mm", key="opensim.max_marker_error_mm", type=float,
        help="warning threshold: a joint's mean IK marker error (mm), with --opensim",
    )  # fmt: skip
    for name in QCSettings.__dataclass_fields__:
        add_option(p, f"--{name.replace('_', '-')}", key=f"qc.{name}", type=float, help="warning threshold")

    def run(args: argparse.Namespace) -> None:
        thresholds = settings_from_args(QCSettings, args)
        run_qc(
            timeline_json=args.timeline, keypoints2d_npz=args.keypoints2d, dataset2d_npz=args.dataset2d,
            pose3d_npz=args.pose3d, tracks_npz=args.tracks, out_dir=args.out_dir, settings=thresholds,
            benchmarks=args.benchmarks,
            preview=args.preview, world_npz=args.world, angles_figure=args.angles_figure,
            evaluation=args.evaluation, opensim_dir=args.opensim,
            max_ik_marker_error_mm=args.max_ik_marker_error_mm,
        )  # fmt: skip

    p.set_defaults(handler=run)
