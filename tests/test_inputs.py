"""Video discovery, ids and the sample sheet."""

from __future__ import annotations

import pytest

from posepipe.errors import PosepipeError
from posepipe.inputs import collect_videos, find_videos, load_sample_sheet, video_id_from_name

PATTERNS = ["*.mp4", "*.mov"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tänzer 1 (take 2).MOV", "Tanzer_1_take_2"),
        ("a b.mp4", "a_b"),
        ("clip.v2.mp4", "clip.v2"),
        ("--weird--.mp4", "weird"),
    ],
)
def test_ids_are_safe_and_readable(name, expected):
    assert video_id_from_name(name) == expected


def test_names_without_latin_letters_get_a_stable_hash_id():
    first, second = video_id_from_name("日本語.mp4"), video_id_from_name("中文.mp4")
    assert first.startswith("video_") and first != second
    assert video_id_from_name("日本語.mp4") == first


def test_patterns_match_case_insensitively_and_skip_hidden_files(tmp_path):
    for name in ("a.mp4", "B.MOV", "c.txt", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.mp4").write_bytes(b"x")
    assert [p.name for p in find_videos(tmp_path, PATTERNS)] == ["B.MOV", "a.mp4"]
    assert [p.name for p in find_videos(tmp_path, PATTERNS, recursive=True)] == ["B.MOV", "a.mp4", "d.mp4"]
    assert find_videos(tmp_path / "missing", PATTERNS) == []


def test_same_id_from_two_files_is_an_error(tmp_path):
    (tmp_path / "x y.mp4").write_bytes(b"x")
    (tmp_path / "x_y.mov").write_bytes(b"x")
    with pytest.raises(PosepipeError, match="maps to video id 'x_y'"):
        collect_videos(directory=tmp_path, patterns=PATTERNS)


def test_sample_sheet_gives_ids_and_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the sheet are relative to the working directory
    (tmp_path / "clip one.mp4").write_bytes(b"x")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("video\tpath\tstart\tend\tfps\nfirst\tclip one.mp4\t1.5\t\t50\n")
    videos = collect_videos(directory=tmp_path, patterns=PATTERNS, samples=sheet)
    # The sheet's entry wins over the folder's copy of the same file.
    assert list(videos) == ["first"]
    assert videos["first"]["start"] == 1.5 and videos["first"]["fps"] == 50.0 and "end" not in videos["first"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("video\tpath\tspeed\nv\ta.mp4\t2\n", "unknown: \\['speed'\\]"),
        ("video\tpath\tstart\nv\ta.mp4\tsoon\n", "line 2: start must be a number"),
        ("video\tpath\nbad/id\ta.mp4\n", "line 2: video id 'bad/id'"),
    ],
)
def test_bad_sample_sheets_name_the_problem(tmp_path, content, reason):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(content)
    with pytest.raises(PosepipeError, match=reason):
        load_sample_sheet(sheet)


def test_listed_video_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("path\nnowhere.mp4\n")
    with pytest.raises(PosepipeError, match="not found"):
        collect_videos(directory=None, patterns=PATTERNS, samples=sheet)
