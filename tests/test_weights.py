"""posepipe.weights: checked, atomic, idempotent downloads; offline and mismatch messages."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import threading
from pathlib import Path

import pytest

from posepipe import weights
from posepipe.errors import PosepipeError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, more than one read chunk
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
# Nothing listens on port 1 of the loopback: connection refused, as on a machine without network.
OFFLINE_URL = "http://127.0.0.1:1/models/model.bin"


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over tmp_path/www; ``.requests`` lists the paths fetched."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(root))
    )
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.root = root
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert weights.sha256_file(path) == PAYLOAD_SHA


def test_download_checks_and_never_refetches_a_good_file(server, tmp_path, caplog):
    out = tmp_path / "models" / "model.bin"
    caplog.set_level(logging.INFO, logger="posepipe.weights")
    weights.download(f"{server.url}/model.bin", out, sha256=PAYLOAD_SHA, size=len(PAYLOAD))
    assert out.read_bytes() == PAYLOAD
    assert server.requests == ["/model.bin"]
    assert f"SHA-256 {PAYLOAD_SHA} checked" in caplog.text
    assert not weights.sidecar_path(out).exists()  # a published checksum needs no sidecar
    mtime = out.stat().st_mtime_ns

    weights.download(f"{server.url}/model.bin", out, sha256=PAYLOAD_SHA, size=len(PAYLOAD))
    assert server.requests == ["/model.bin"]  # no second request
    assert out.stat().st_mtime_ns == mtime
    assert _leftovers(out.parent) == []


def test_download_logs_progress(server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="posepipe.weights")
    out = tmp_path / "model.bin"
    weights.download(f"{server.url}/model.bin", out, progress_every=0.0)
    assert "/ 1.0 MB" in caplog.text and "MB/s" in caplog.text


def test_no_published_checksum_writes_a_sidecar_and_checks_it_later(server, tmp_path, caplog):
    out = tmp_path / "model.bin"
    caplog.set_level(logging.INFO, logger="posepipe.weights")
    weights.download(f"{server.url}/model.bin", out)
    assert "computed SHA-256" in caplog.text
    assert weights.sidecar_path(out).read_text() == f"{PAYLOAD_SHA}  model.bin\n"
    assert weights.read_sidecar(out) == PAYLOAD_SHA

    weights.download(f"{server.url}/model.bin", out)
    assert len(server.requests) == 1

    # A file that no longer matches its sidecar is fetched again and checked against it.
    out.write_bytes(b"damaged")
    weights.download(f"{server.url}/model.bin", out)
    assert len(server.requests) == 2
    assert out.read_bytes() == PAYLOAD

    # If the server's copy changes, the recorded checksum catches it.
    (server.root / "model.bin").write_bytes(b"another file")
    out.unlink()
    with pytest.raises(
        PosepipeError, match=f"recorded in .*model.bin.sha256 at the first download .* is {PAYLOAD_SHA}"
    ):
        weights.download(f"{server.url}/model.bin", out)
    assert not out.exists()


def test_checksum_mismatch_leaves_nothing_and_names_everything(server, tmp_path):
    out = tmp_path / "model.bin"
    wrong = "0" * 64
    url = f"{server.url}/model.bin"
    with pytest.raises(PosepipeError) as info:
        weights.download(url, out, sha256=wrong)
    message = str(info.value)
    assert str(out) in message and url in message
    assert f"SHA-256 {PAYLOAD_SHA}" in message and wrong in message
    assert f"put it at {out.resolve()}" in message
    assert not out.exists() and _leftovers(tmp_path) == []


def test_size_mismatch(server, tmp_path):
    out = tmp_path / "model.bin"
    with pytest.raises(PosepipeError, match=f"has {len(PAYLOAD):,} bytes, expected 123"):
        weights.download(f"{server.url}/model.bin", out, size=123)
    assert not out.exists()


def test_present_file_with_wrong_checksum_is_replaced(server, tmp_path):
    out = tmp_path / "model.bin"
    out.write_bytes(b"partial")
    weights.download(f"{server.url}/model.bin", out, sha256=PAYLOAD_SHA)
    assert out.read_bytes() == PAYLOAD


def test_offline_message_names_file_url_checksum_and_place(tmp_path):
    out = tmp_path / "models" / "model.bin"
    with pytest.raises(PosepipeError) as info:
        weights.download(OFFLINE_URL, out, sha256=PAYLOAD_SHA, timeout=5)
    message = str(info.value)
    assert message.startswith(f"{out}: could not download {OFFLINE_URL}")
    assert PAYLOAD_SHA in message
    assert f"put it at {out.resolve()}" in message
    assert not out.exists()


def test_offline_registry_file_names_the_published_checksum(tmp_path):
    entry = weights.published("videopose3d_h36m_detectron_coco")
    with pytest.raises(PosepipeError) as info:
        weights.fetch_published(entry.name, models_dir=tmp_path, url=OFFLINE_URL, timeout=5)
    message = str(info.value)
    assert str(tmp_path / "pretrained_h36m_detectron_coco.bin") in message
    assert entry.sha256 in message and "67,892,577 bytes" in message


def test_offline_without_published_checksum_says_so(tmp_path):
    with pytest.raises(PosepipeError, match="SHA-256 not published"):
        weights.download(OFFLINE_URL, tmp_path / "model_final_a6e10b.pkl", timeout=5)


def test_file_url(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    out = weights.download(source.as_uri(), tmp_path / "copy.bin", sha256=PAYLOAD_SHA)
    assert out.read_bytes() == PAYLOAD


def test_registry_records_the_published_files():
    vp = weights.PUBLISHED["videopose3d_h36m_detectron_coco"]
    assert vp.url == "https://dl.fbaipublicfiles.com/video-pose-3d/pretrained_h36m_detectron_coco.bin"
    assert vp.size == 67_892_577
    assert vp.sha256 == "d3219e005b50591f694da5cbaf6849f060d6b2cf895864a779f8a992ac63a232"
    d2 = {e.config: e for e in weights.PUBLISHED.values() if e.config}
    assert d2["COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml"].url == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-Keypoints/"
        "keypoint_rcnn_X_101_32x8d_FPN_3x/139686956/model_final_5ad38f.pkl"
    )
    assert d2["COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"].filename == "model_final_a6e10b.pkl"
    assert d2["COCO-Keypoints/keypoint_rcnn_R_101_FPN_3x.yaml"].filename == "model_final_997cc7.pkl"
    assert all(e.sha256 is None for e in d2.values())
    with pytest.raises(PosepipeError, match="no published file named 'nope'"):
        weights.published("nope")


def test_cli_download_and_offline_error(main, server, tmp_path, capsys):
    out = tmp_path / "m.bin"
    args = ["download", "--url", f"{server.url}/model.bin", "--out", str(out), "--sha256", PAYLOAD_SHA]
    assert main(args) == 0
    assert out.read_bytes() == PAYLOAD

    rc = main(
        [
            "download",
            "--name",
            "keypoint_rcnn_R_50_FPN_3x",
            "--url",
            OFFLINE_URL,
            "--models-dir",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 1
    assert err.startswith(
        f"posepipe download: error: {tmp_path / 'model_final_a6e10b.pkl'}: could not download"
    )

    assert main(["download", "--list"]) == 0
    assert "pretrained_h36m_detectron_coco.bin" in capsys.readouterr().out


@pytest.mark.workflow
def test_readme_offline_steps_name_the_files_the_workflow_reads(tmp_path, main):
    """The README's offline table gives, per file, the name the workflow reads in resources/models,
    the published URL and SHA-256; its `download --url file://` step puts a file there (checked)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("**Offline, step by step.**") :]
    rows = re.findall(r"^\| `([^`]+)` [^|]*\| `(https://[^`]+)` \| (.*) \|$", section, flags=re.M)
    lifter = weights.PUBLISHED["videopose3d_h36m_detectron_coco"]
    detector = weights.PUBLISHED["keypoint_rcnn_X_101_32x8d_FPN_3x"]
    assert rows == [
        (lifter.filename, lifter.url, f"`{lifter.sha256}`"),
        (f"{detector.name}.pkl", detector.url, rows[1][2]),
    ], rows
    assert f"{lifter.size:,} bytes" in section
    # the files a default run downloads, where it puts them (a dry run of the workflow)
    from posepipe.testing import add_video
    from tests.snakemake_run import snakemake

    add_video(tmp_path, "a", frames=3)
    planned = snakemake(tmp_path, "--dry-run", "-p").stdout
    for name, out in ((lifter.name, lifter.filename), (detector.name, f"{detector.name}.pkl")):
        assert f"python -m posepipe download --name {name} --out resources/models/{out} " in planned, planned
    # step 2 as written, with a stand-in for the detector file (no checksum is published for it)
    step = re.search(
        r"(python -m posepipe download --name keypoint_rcnn\S+ \\\n\s+--url \S+ --out \S+)", section
    )
    args = step[1].replace("\\\n", " ").split()[4:]
    source = tmp_path / "model_final_5ad38f.pkl"
    source.write_bytes(PAYLOAD)
    args[args.index("--url") + 1] = source.as_uri()
    args[args.index("--out") + 1] = str(tmp_path / args[args.index("--out") + 1])
    assert main(["download", *args]) == 0
    placed = tmp_path / "resources/models/keypoint_rcnn_X_101_32x8d_FPN_3x.pkl"
    assert placed.read_bytes() == PAYLOAD
    assert weights.read_sidecar(placed) == PAYLOAD_SHA
