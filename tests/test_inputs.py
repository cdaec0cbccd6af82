"""Video discovery, ids and the sample sheet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posepipe.errors import PosepipeError
from posepipe.inputs import (
    RUN_WIDE_NAMES,
    collect_videos,
    find_videos,
    load_sample_sheet,
    periodic_suffix,
    shell_path,
    snakemake_safe_path,
    video_id_from_name,
)

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


def test_a_missing_input_folder_is_an_error(tmp_path):
    with pytest.raises(PosepipeError, match="missing: the input folder .* does not exist"):
        find_videos(tmp_path / "missing", PATTERNS)
    (tmp_path / "file.mp4").write_bytes(b"x")
    with pytest.raises(PosepipeError, match="is not a folder"):
        collect_videos(directory=tmp_path / "file.mp4", patterns=PATTERNS)
    rows = [{"line": 2, "path": tmp_path / "file.mp4"}]
    with pytest.raises(PosepipeError, match="set input.directory to null"):
        collect_videos(directory=tmp_path / "missing", patterns=PATTERNS, samples=rows)
    assert list(collect_videos(directory=None, patterns=PATTERNS, samples=rows)) == ["file"]


def test_results_and_hidden_folders_are_never_inputs(tmp_path):
    for name in ("a.mp4", "results/a/render.mp4", ".snakemake/x.mp4", "sub/b.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_videos(tmp_path, PATTERNS, recursive=True, exclude=(tmp_path / "results",))
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.mp4", "sub/b.mp4"]


def test_ids_that_snakemake_would_take_for_a_recursion_get_a_hash():
    from snakemake.io import PeriodicityDetector

    detector = PeriodicityDetector()
    for name in ("ha" * 20 + ".mp4", "take_" + "0" * 25 + ".mov", "a" * 150 + ".mp4"):
        plain = name.rsplit(".", 1)[0]
        assert detector.is_periodic(plain) and periodic_suffix(plain)
        vid = video_id_from_name(name)
        assert vid.startswith(plain) and vid != plain and detector.is_periodic(vid) is None
        assert video_id_from_name(name) == vid  # stable
    # Fewer repeats than Snakemake's limit keep their plain id.
    assert video_id_from_name("hahahahahahahahaha.mp4") == "hahahahahahahahaha"


def test_paths_never_read_as_options():
    assert shell_path("-dash.mp4") == "./-dash.mp4"
    assert shell_path("videos/-dash.mp4") == "videos/-dash.mp4"
    assert shell_path("/abs/-x.mp4") == "/abs/-x.mp4"


def test_paths_with_braces_are_reached_through_a_link(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "videos").mkdir()
    video = tmp_path / "videos/{x}.mp4"
    video.write_bytes(b"frames")
    os.utime(video, (1_000_000, 1_000_000))
    link = snakemake_safe_path("videos/{x}.mp4", "results/x/links/video.mp4")
    assert link == "results/x/links/video.mp4"
    assert Path(link).read_bytes() == b"frames" and os.readlink(link) == "../../../videos/{x}.mp4"
    # The link's own time is the file's: making it makes nothing look out of date.
    assert os.lstat(link).st_mtime == 1_000_000
    assert snakemake_safe_path("videos/{x}.mp4", link) == link  # again: unchanged
    # A link left pointing elsewhere is corrected.
    (tmp_path / "videos/{y}.mp4").write_bytes(b"other")
    snakemake_safe_path("videos/{y}.mp4", link)
    assert Path(link).read_bytes() == b"other"
    # Plain paths and missing files come back as they are.
    assert snakemake_safe_path("videos/plain.mp4", "unused") == "videos/plain.mp4"
    assert snakemake_safe_path("videos/{gone}.json", "unused") == "videos/{gone}.json"
    assert not Path("unused").exists()


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
        ("video\tpath\tstart\nv\ta.mp4\tsoon\n", "line 2, column start: must be a finite number"),
        ("# sheet\nvideo\tpath\n\nbad/id\ta.mp4\n", "line 4, column video: id 'bad/id'"),
        ("path\tfps\na.mp4\tnan\n", "line 2, column fps: must be a finite number, got 'nan'"),
        ("path\tend\na.mp4\tinf\n", "line 2, column end: must be a finite number"),
        ("video\tpath\n" + "ab" * 20 + "\ta.mp4\n", "line 2, column video: .* repeats of 'ab'"),
        ("path\tpath\na.mp4\tb.mp4\n", "each once"),
        ("video\tpath\nv\t\n", "line 2, column path: empty"),
        ("# only a comment\n", "empty"),
    ],
)
def test_bad_sample_sheets_name_the_problem(tmp_path, content, reason):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(content)
    with pytest.raises(PosepipeError, match=reason):
        load_sample_sheet(sheet)


def test_sample_sheet_rows_keep_their_line_and_a_hash_in_a_path(tmp_path):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("# lab sheet\npath\tfps\n\n# take one\ntake #1.mp4\t50\nb.mp4\t\n")
    rows = load_sample_sheet(sheet)
    assert [(r["line"], r["path"].name, r.get("fps")) for r in rows] == [
        (5, "take #1.mp4", 50.0),
        (6, "b.mp4", None),
    ]


def test_listed_video_that_does_not_exist_is_kept_to_fail_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.mp4").write_bytes(b"x")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("path\nnowhere.mp4\nhere.mp4\n")
    videos = collect_videos(directory=None, patterns=PATTERNS, samples=sheet)
    assert videos == {
        "nowhere": {"path": Path("nowhere.mp4"), "missing": True},
        "here": {"path": Path("here.mp4")},
    }


def test_ids_never_collide_with_run_wide_files(tmp_path, monkeypatch):
    """results/{video}/ must never be a run-wide file (held-out corpus, issue 19): such ids made
    from a file name get a suffix; given in a sample sheet they are refused, naming the line."""
    for name in ("qc_summary.csv.mp4", "dataset2d_custom.npz.mp4", "Summary.CSV.mov", "logs.mp4", "good.mp4"):
        (tmp_path / name).write_bytes(b"x")
    videos = collect_videos(directory=tmp_path, patterns=PATTERNS)
    assert sorted(videos) == ["Summary.CSV_video", "dataset2d_custom.npz_video", "good", "logs_video",
                              "qc_summary.csv_video"]  # fmt: skip
    assert not {v.lower() for v in videos} & {n.lower() for n in RUN_WIDE_NAMES}
    assert video_id_from_name("qc_summary.csv_video.mp4") == "qc_summary.csv_video"  # stable, not re-suffixed
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("video\tpath\nqc_summary.html\tgood.mp4\n")
    with pytest.raises(
        PosepipeError, match="line 2, column video: id 'qc_summary.html' is the name of a run-wide"
    ):
        load_sample_sheet(sheet)
