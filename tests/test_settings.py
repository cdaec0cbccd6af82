"""One source for settings: every stage command line defaults to the workflow's config schema.

A stage run by hand with no options must do what the workflow does with the default
config.yaml. Every setting of the per-stage sections is either bound to a command-line option
(whose default must equal the schema's) or listed below as a workflow-only key with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from posepipe import cli, registry, settings

# Settings that choose files or targets in the workflow, not what a stage computes from its input.
WORKFLOW_ONLY = {
    "frames.jpeg": "whether the frames_jpeg rule is a target",
    "keypoints2d.file_pattern": "how the workflow finds each video's keypoints file (the CLI takes --input)",
    "keypoints2d.weights": "which file the workflow downloads or uses (the CLI takes --weights)",
    "keypoints2d.rtmlib.onnx": "which file the workflow downloads or uses (the CLI takes --weights)",
    "keypoints2d.rtmlib.det_onnx": "which file the workflow downloads or uses (the CLI takes --det-weights)",
    "lift3d.checkpoint": "which file the workflow downloads or uses (the CLI takes --checkpoint)",
    "render.enabled": "whether render.mp4 is a target",
    "render.preview": "whether the preview rule is a target",
    "dataset2d.undistort": "whether the workflow passes the video's calibration (the CLI takes --undistort FILE)",
    "render.frame": "whether the workflow passes world.npz (the CLI takes --world)",
    "world.calibration": "how the workflow finds each video's calibration (the CLI takes --calibration)",
    "world.persons": "how the workflow finds each video's persons file (the CLI takes --persons)",
    "evaluate.enabled": "whether videos with a reference recording get an evaluate job",
    "angles.enabled": "whether the angles rule is a target",
    "opensim.enabled": "whether the opensim rule is a target",
    "opensim.max_marker_error_mm": "a threshold of the qc stage (qc --max-ik-marker-error-mm)",
}
# Every config section of a stage (the registry's), in workflow order.
SECTIONS = tuple(dict.fromkeys(stage.section for stage in registry.STAGES if stage.section))
TOP_LEVEL = ("person",)


def _bound_options() -> dict[str, argparse.Action]:
    parser = cli.build_parser()
    bound = {}
    for action in parser._subparsers._group_actions:  # the sub-command chooser
        for sub in action.choices.values():
            for option in sub._actions:
                key = getattr(option, "config_key", None)
                if key is not None:
                    assert key not in bound or bound[key].default == option.default, key
                    bound[key] = option
    return bound


def test_every_stage_setting_is_a_cli_option_with_the_schema_default():
    bound = _bound_options()
    keys = [key for section in SECTIONS for key in settings.leaf_keys(section)] + list(TOP_LEVEL)
    unclassified = [k for k in keys if k not in bound and k not in WORKFLOW_ONLY]
    assert not unclassified, f"config keys with no CLI option and not workflow-only: {unclassified}"
    for key, option in bound.items():
        assert option.default == settings.schema_default(key), (key, option.option_strings)


def test_schema_defaults_equal_the_commented_config_file():
    config = yaml.safe_load((Path(settings.SCHEMA_PATH).parents[2] / "config.yaml").read_text())
    for section in SECTIONS:
        for key in settings.leaf_keys(section):
            name = key.split(".", 1)[1]
            assert config[section][name] == settings.schema_default(key), key
    for key in TOP_LEVEL:
        assert config[key] == settings.schema_default(key), key


def test_known_disagreements_are_gone():
    bound = _bound_options()
    assert bound["keypoints2d.score_threshold"].default == 0.7
    assert bound["render.audio"].default is True


def test_unknown_key_is_a_clear_error():
    with pytest.raises(KeyError, match="'render.nope' is not a key of config.schema.yaml"):
        settings.schema_default("render.nope")


def test_check_config_names_the_line_or_the_key(tmp_path, main, capsys):
    (tmp_path / "syntax.yaml").write_text("frames:\n  fps: [50\nrender: {}\n")
    (tmp_path / "value.yaml").write_text("frames:\n  fps: -5\n")
    (tmp_path / "fine.yaml").write_text("frames:\n  fps: 50\n")
    assert main(["check-config", str(tmp_path / "syntax.yaml")]) == 1
    assert "syntax.yaml, line 3, column 7: YAML syntax error" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "fine.yaml"), str(tmp_path / "value.yaml")]) == 1
    assert "config frames.fps: -5 is less than or equal to the minimum of 0" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "fine.yaml")]) == 0


def test_command_options_and_back_to_a_settings_object():
    """The rules' one helper (config section -> options) and the package's (options -> settings
    object) meet: the tracks section's options parse back into the TracksSettings of the config."""
    import argparse

    from posepipe.settings import command_options, settings_from_args
    from posepipe.tracks import TracksSettings, register_cli

    section = {"iou_weight": 0.25, "max_cost": 0.5, "min_track_frames": 3, "keypoint_score": 0.2,
               "velocity": False, "max_lost_frames": None, "model": "a b.yaml"}  # fmt: skip
    assert command_options(
        section, ["velocity", "max_lost_frames", "model"], flags={"model": "--config"}
    ) == ("--no-velocity --config 'a b.yaml'")
    keys = ["iou_weight", "max_cost", "min_track_frames", "keypoint_score", "velocity", "max_lost_frames"]
    line = command_options(section, keys)
    assert line == "--iou-weight 0.25 --max-cost 0.5 --min-track-frames 3 --keypoint-score 0.2 --no-velocity"
    sub = argparse.ArgumentParser().add_subparsers(dest="stage")
    register_cli(sub)
    args = sub.choices["tracks"].parse_args(
        ["k.npz", "--out", "t.npz", "--timeline", "t.json", *line.split()]
    )
    assert settings_from_args(TracksSettings, args) == TracksSettings(
        iou_weight=0.25,
        max_cost=0.5,
        max_lost_frames=None,
        min_track_frames=3,
        keypoint_score=0.2,
        velocity=False,
    )


@pytest.mark.parametrize("stage", [s for s in registry.STAGES if s.section], ids=lambda s: s.name)
def test_every_stage_takes_one_frozen_settings_object_of_its_section(stage):
    """Item 3 of the shape: each stage's settings are one frozen object built from its schema
    section. Its fields are the section's keys (those a stage computes with: every key of the
    section but the workflow-only ones, sub-sections as nested settings objects), each defaulting
    to the schema's value; the stage's entry point takes it as ``settings=``."""
    assert stage.settings, f"stage {stage.name} names no settings object in the registry"
    cls = registry.entry_point(stage.settings)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, stage.settings
    fields = {f.name: f for f in dataclasses.fields(cls)}
    keys = {key.split(".", 1)[1] for key in settings.leaf_keys(stage.section)}
    subsections = {
        name for name, node in settings.schema_node(stage.section).get("properties", {}).items()
        if node.get("type") == "object"
    }  # fmt: skip
    computed = {key for key in keys if f"{stage.section}.{key}" not in WORKFLOW_ONLY}
    assert computed - set(fields) == set(), f"{stage.settings}: keys of {stage.section} it lacks"
    extra = set(fields) - keys - subsections - set(TOP_LEVEL)
    assert not extra, f"{stage.settings}: fields that are no key of {stage.section}: {sorted(extra)}"
    made = cls()  # every field has a default: the schema's
    for name in fields:
        key = name if name in TOP_LEVEL else f"{stage.section}.{name}"
        value = getattr(made, name)
        if name in subsections:
            assert dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen, key
            for sub in dataclasses.fields(value):
                assert getattr(value, sub.name) == settings.schema_default(f"{key}.{sub.name}"), (
                    f"{key}.{sub.name}"
                )
        else:
            assert value == settings.schema_default(key), key
    entry = registry.entry_point(stage.entry)
    assert "settings" in inspect.signature(entry).parameters, f"{stage.entry} takes no settings="


def test_command_line_overrides_get_the_schema_types():
    """Snakemake reads `--config frames='{fps: 50}'` with YAML's BaseLoader: every nested scalar is
    a string. Where the schema wants no string it is read again as YAML; strings stay strings."""
    given = {
        "frames": {"fps": "50", "start": "1.5", "end": "null", "jpeg": "true", "jpeg_quality": "80"},
        "input": {"directory": "50", "patterns": ["*.mp4"]},
        "render": {"audio": "false", "nope": "7"},
        "typo": {"fps": "50"},
    }
    typed = settings.typed_overrides(given)
    assert typed["frames"] == {"fps": 50, "start": 1.5, "end": None, "jpeg": True, "jpeg_quality": 80}
    assert typed["input"] == {"directory": "50", "patterns": ["*.mp4"]}  # string keys keep strings
    assert typed["render"] == {"audio": False, "nope": "7"}  # unknown keys: as given, for the schema
    assert typed["typo"] == {"fps": "50"}
    # a value that is no number stays the string, so the schema names it
    assert settings.typed_overrides({"frames": {"fps": "fifty"}}) == {"frames": {"fps": "fifty"}}


def test_misspelt_keys_get_did_you_mean(tmp_path, main, capsys):
    (tmp_path / "section.yaml").write_text("frames:\n  fsp: 50\n")
    assert main(["check-config", str(tmp_path / "section.yaml")]) == 1
    err = capsys.readouterr().err
    assert "config frames: 'fsp' is not a key of frames; did you mean 'fps'?" in err, err
    assert "(keys of frames: fps, start, end," in err, err
    (tmp_path / "top.yaml").write_text("rendr:\n  audio: false\n")
    assert main(["check-config", str(tmp_path / "top.yaml")]) == 1
    assert "config (top level): 'rendr' is not a key; did you mean 'render'?" in capsys.readouterr().err
    (tmp_path / "far.yaml").write_text("frames:\n  zzzz: 1\n")
    assert main(["check-config", str(tmp_path / "far.yaml")]) == 1
    err = capsys.readouterr().err
    assert "'zzzz' is not a key of frames (keys of frames:" in err and "did you mean" not in err, err
