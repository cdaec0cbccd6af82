"""Videos and keypoint files listed from an S3 bucket (posepipe.objectstore, posepipe.inputs),
against a real S3 API on loopback (moto's server, tests/s3_server.py)."""

from __future__ import annotations

import re

import pytest

from posepipe.errors import PosepipeError
from posepipe.inputs import collect_videos, load_sample_sheet
from posepipe.objectstore import ObjectIndex, list_objects, make_client, split_url
from tests import s3_server as fixtures
from tests.s3_server import free_port

s3_server, s3 = fixtures.s3_server, fixtures.s3  # the fixtures of this module

PATTERNS = ["*.mp4", "*.mov"]
NAMES = [
    "videos/Tänzer 1 (take 2).MOV",
    "videos/walk.mp4",
    "videos/walk.coco.json",
    "videos/.hidden.mp4",
    "videos/notes.txt",
    "videos/day2/run.mp4",
    "videos/.trash/old.mp4",
    "videos/results/walk/render.mp4",
    "other/elsewhere.mp4",
]


def put(client, bucket, keys):
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"not a video")


@pytest.fixture
def lab(s3):
    client = s3.client()
    client.create_bucket(Bucket="lab")
    put(client, "lab", NAMES)
    return client


def local_ids(tmp_path, names, **options):
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return list(collect_videos(directory=tmp_path / "videos", patterns=PATTERNS, **options))


def test_lists_a_prefix_like_a_folder_with_the_same_ids(lab, tmp_path):
    videos = collect_videos(directory="s3://lab/videos", patterns=PATTERNS)
    assert {v: e["path"] for v, e in videos.items()} == {
        "Tanzer_1_take_2": "s3://lab/videos/Tänzer 1 (take 2).MOV",
        "walk": "s3://lab/videos/walk.mp4",
    }
    assert list(videos) == local_ids(tmp_path, NAMES)
    assert not any(e.get("missing") for e in videos.values())


def test_recursive_listing_skips_hidden_folders_and_excluded_results(lab, tmp_path):
    videos = collect_videos(
        directory="s3://lab/videos/",
        patterns=PATTERNS,
        recursive=True,
        exclude=("results", "s3://lab/videos/results"),
    )
    assert sorted(videos) == ["Tanzer_1_take_2", "run", "walk"]
    assert videos["run"]["path"] == "s3://lab/videos/day2/run.mp4"
    assert sorted(videos) == sorted(
        local_ids(tmp_path, NAMES, recursive=True, exclude=(tmp_path / "videos/results",))
    )


def test_keypoint_files_beside_the_videos_are_found_from_the_same_listing(lab, s3):
    index = ObjectIndex()
    collect_videos(directory="s3://lab/videos", patterns=PATTERNS, objects=index)
    assert len(index.requests) == 1
    assert index.exists("s3://lab/videos/walk.coco.json")
    assert not index.exists("s3://lab/videos/Tänzer 1 (take 2).coco.json")
    assert len(index.requests) == 1  # answered from the listing already made
    assert index.exists("s3://lab/other/elsewhere.mp4")  # another prefix: one listing more
    assert len(index.requests) == 2


def test_sample_sheet_with_urls(lab, tmp_path):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "video\tpath\tkeypoints2d\tstart\n"
        "w1\ts3://lab/videos/walk.mp4\ts3://lab/videos/walk.coco.json\t1.5\n"
        "\ts3://lab/other/elsewhere.mp4\t\t\n"
        "gone\ts3://lab/videos/deleted.mp4\t\t\n"
        "here\tlocal.mp4\t\t\n"
    )
    rows = load_sample_sheet(sheet, base=tmp_path)
    assert (
        rows[0]["path"] == "s3://lab/videos/walk.mp4"
        and rows[0]["keypoints2d"] == "s3://lab/videos/walk.coco.json"
    )
    assert rows[3]["path"] == tmp_path / "local.mp4"
    videos = collect_videos(directory="s3://lab/videos", patterns=PATTERNS, samples=rows)
    assert list(videos) == ["w1", "elsewhere", "gone", "here", "Tanzer_1_take_2"]  # walk.mp4 is w1
    assert videos["w1"]["start"] == 1.5 and "missing" not in videos["w1"]
    assert videos["gone"]["missing"] and videos["here"]["missing"]


def test_two_objects_with_one_id_are_refused(s3):
    client = s3.client()
    client.create_bucket(Bucket="lab")
    put(client, "lab", ["v/a b.mp4", "v/a_b.mov"])
    with pytest.raises(PosepipeError, match=r"maps to video id 'a_b'"):
        collect_videos(directory="s3://lab/v", patterns=PATTERNS)


def test_listing_is_one_request_per_page_of_1000(s3):
    """1,050 placeholder objects: two ListObjectsV2 requests, counted by the server."""
    client = s3.client()
    client.create_bucket(Bucket="big")
    put(client, "big", [f"clips/{i:05d}.mp4" for i in range(1050)])
    before = s3.requests("list-type=2")
    index = ObjectIndex()
    videos = collect_videos(directory="s3://big/clips", patterns=PATTERNS, objects=index)
    assert len(videos) == 1050
    assert len(index.requests) == 2
    assert s3.requests("list-type=2") - before == 2
    assert s3.requests("/big/clips/") == 0  # no request per object


def test_endpoint_and_credentials_from_the_plugin_variables(lab, s3, monkeypatch):
    """SNAKEMAKE_STORAGE_S3_* (what Snakemake's S3 plugin reads) beat boto3's AWS_* ones."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("SNAKEMAKE_STORAGE_S3_ENDPOINT_URL", s3.url)
    monkeypatch.setenv("SNAKEMAKE_STORAGE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("SNAKEMAKE_STORAGE_S3_SECRET_KEY", "testing")
    assert [o.url for o in list_objects(make_client(), "s3://lab/other")] == ["s3://lab/other/elsewhere.mp4"]


def test_missing_bucket(s3):
    with pytest.raises(PosepipeError) as err:
        collect_videos(directory="s3://no-such-bucket/videos", patterns=PATTERNS)
    assert str(err.value) == "s3://no-such-bucket/videos: cannot list the objects: the bucket does not exist"


def test_wrong_credentials(lab, s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    s3.require_auth(True)
    try:
        with pytest.raises(PosepipeError) as err:
            collect_videos(directory="s3://lab/videos", patterns=PATTERNS)
    finally:
        s3.require_auth(False)
    assert str(err.value).startswith(
        "s3://lab/videos: cannot list the objects: the server does not know this access key"
    )


def test_no_credentials(s3, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(
        PosepipeError, match=r"^s3://lab/videos: cannot list the objects: no S3 credentials found"
    ):
        collect_videos(directory="s3://lab/videos", patterns=PATTERNS)


def test_endpoint_down(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(PosepipeError) as err:
        collect_videos(directory="s3://lab/videos", patterns=PATTERNS)
    assert re.match(
        rf"s3://lab/videos: cannot list the objects: cannot connect to the S3 endpoint {url} \(is it up",
        str(err.value),
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("url", ["s3://A_B/videos", "s3://", "s3:/lab/x"])
def test_bad_urls(url):
    with pytest.raises(PosepipeError):
        split_url(url)


def test_probe_names_a_missing_object_by_its_url(main, capsys, tmp_path):
    """A sample sheet's object that is not in the bucket reaches probe by its URL (see
    workflow/rules/common.smk, video_argument): the error line names the URL as written."""
    assert main(
        ["probe", "s3://lab/in/gone.mp4", "--out", str(tmp_path / "p.json"), "--pts", str(tmp_path / "p.npy")]
    )
    assert "s3://lab/in/gone.mp4: file not found" in capsys.readouterr().err
