"""Published model files: download with a SHA-256 check, and checksums for tracing results.

Weights land in ``resources/models/`` (git-ignored) under their published file names. A download
goes to a temporary name beside the target and is renamed only after its size and checksum
match, so a killed job or a flaky network never leaves a file that looks finished. A file that
is already present and passes the check is never fetched again.

:data:`PUBLISHED` is the repository's record of the published files. detectron2 publishes no
checksums for its model zoo, so for those the first download computes one, logs that it was
computed (not checked), and writes it to a sidecar ``<file>.sha256`` (``sha256sum`` format);
later runs check the file against that sidecar.

Offline, or when a checksum does not match, :class:`PosepipeError` names the file, its URL, the
expected checksum and where to put a copy fetched by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from posepipe.atomic import atomic_path, write_text
from posepipe.errors import PosepipeError
from posepipe.progress import format_duration

log = logging.getLogger(__name__)

MODELS_DIR = Path("resources/models")  # relative to the workflow's working directory
CHUNK_BYTES = 1 << 20
_D2_ZOO = "https://dl.fbaipublicfiles.com/detectron2/COCO-Keypoints"


@dataclass(frozen=True)
class PublishedFile:
    """A file published at a fixed URL.

    ``sha256`` and ``size`` are None where the publisher states none; ``config`` is the
    detectron2 model-zoo config the weights belong to (None for other files). ``member``: the
    file is a zip archive and the model is its member whose name ends so (:func:`fetch_member`
    extracts it to :attr:`member_filename`); ``hash_prefix``: the hex digits the publisher put in
    the file name (see :data:`RTMLIB_ONNX`).
    """

    name: str
    url: str
    sha256: str | None
    size: int | None
    license: str
    config: str | None = None
    member: str | None = None
    hash_prefix: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def member_filename(self) -> str | None:
        """Where the archive's model goes: the archive's name with the member's suffix."""
        if self.member is None:
            return None
        return self.filename.rsplit(".", 1)[0] + Path(self.member).suffix


def _d2(config: str, run_id: str, filename: str) -> PublishedFile:
    return PublishedFile(
        name=f"keypoint_rcnn_{config}",
        url=f"{_D2_ZOO}/keypoint_rcnn_{config}/{run_id}/{filename}",
        sha256=None,
        size=None,
        license="CC BY-SA 3.0 (detectron2 model zoo)",
        config=f"COCO-Keypoints/keypoint_rcnn_{config}.yaml",
    )


PUBLISHED: dict[str, PublishedFile] = {
    f.name: f
    for f in (
        _d2("R_50_FPN_3x", "137849621", "model_final_a6e10b.pkl"),
        _d2("R_101_FPN_3x", "138363331", "model_final_997cc7.pkl"),
        _d2("X_101_32x8d_FPN_3x", "139686956", "model_final_5ad38f.pkl"),
        PublishedFile(
            name="videopose3d_h36m_detectron_coco",
            url="https://dl.fbaipublicfiles.com/video-pose-3d/pretrained_h36m_detectron_coco.bin",
            sha256="d3219e005b50591f694da5cbaf6849f060d6b2cf895864a779f8a992ac63a232",
            size=67_892_577,
            license="CC BY-NC 4.0 (VideoPose3D)",
        ),
    )
}

# ONNX archives of OpenMMLab's RTMO / RTMPose / YOLOX (the files rtmlib 0.0.16 downloads, listed in
# its ``rtmlib/tools/solution/body.py``). Each zip is an MMDeploy SDK folder; the network is its
# ``end2end.onnx``. OpenMMLab publishes no checksum of these zips: the hex digits in a name are, by
# OpenMMLab's naming convention, the start of the SHA-256 of the PyTorch checkpoint the ONNX was
# exported from, not of the zip (so they cannot be checked against the zip; they are kept as
# ``hash_prefix``). What is checked: the first download's SHA-256 is recorded in ``<zip>.sha256``
# and every later use is checked against it (as for detectron2's zoo), and the extracted ONNX's
# SHA-256 is recorded in every keypoints2d.npz made with it.
_OPENMMLAB = "https://download.openmmlab.com/mmpose/v1/projects"
RTMLIB_ONNX = {
    "rtmlib_rtmo-s": "rtmo/onnx_sdk/rtmo-s_8xb32-600e_body7-640x640-dac2bf74_20231211.zip",
    "rtmlib_rtmo-m": "rtmo/onnx_sdk/rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.zip",
    "rtmlib_rtmo-l": "rtmo/onnx_sdk/rtmo-l_16xb16-600e_body7-640x640-b37118ce_20231211.zip",
    "rtmlib_rtmpose-s": "rtmposev1/onnx_sdk/rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504.zip",
    "rtmlib_rtmpose-m": "rtmposev1/onnx_sdk/rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
    "rtmlib_rtmpose-x": "rtmposev1/onnx_sdk/rtmpose-x_simcc-body7_pt-body7_700e-384x288-71d7b7e9_20230629.zip",
    "rtmlib_yolox-tiny": "rtmposev1/onnx_sdk/yolox_tiny_8xb8-300e_humanart-6f3252f9.zip",
    "rtmlib_yolox-m": "rtmposev1/onnx_sdk/yolox_m_8xb8-300e_humanart-c2c7a14a.zip",
    "rtmlib_yolox-x": "rtmposev1/onnx_sdk/yolox_x_8xb8-300e_humanart-a39d44ed.zip",
}


def _openmmlab_prefix(path: str) -> str | None:
    """The 8 hex digits after the last '-' of an OpenMMLab file name (before its date, if any)."""
    import re

    found = re.search(r"-([0-9a-f]{8})(?:_[0-9]{8})?\.zip$", path)
    return found.group(1) if found else None


PUBLISHED.update(
    {
        name: PublishedFile(
            name=name,
            url=f"{_OPENMMLAB}/{path}",
            sha256=None,
            size=None,
            license="Apache-2.0 (OpenMMLab MMPose / MMDetection model weights)",
            member="end2end.onnx",
            hash_prefix=_openmmlab_prefix(path),
        )  # fmt: skip
        for name, path in RTMLIB_ONNX.items()
    }
)


def published(name: str) -> PublishedFile:
    """The registry entry ``name`` (a key of :data:`PUBLISHED`); unknown names raise PosepipeError."""
    try:
        return PUBLISHED[name]
    except KeyError:
        raise PosepipeError(
            None, f"no published file named {name!r}; known: {', '.join(PUBLISHED)}"
        ) from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(path: str | os.PathLike) -> Path:
    """``<file>.sha256``: where a computed checksum is kept for files published without one."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def read_sidecar(path: str | os.PathLike) -> str | None:
    """The checksum recorded beside ``path``, or None if there is no readable sidecar."""
    try:
        text = sidecar_path(path).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return text[0].lower() if text and _is_sha256(text[0]) else None


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def _by_hand(path: Path, url: str, sha256: str | None, size: int | None) -> str:
    """The part of an error message that says how to fix it without this machine's network."""
    expected = f"SHA-256 {sha256}" if sha256 else "SHA-256 not published (any copy of the file is accepted)"
    size_text = f", {size:,} bytes" if size is not None else ""
    return (
        f"expected {expected}{size_text}. Download {url} on a machine with internet access "
        f"(e.g. curl -L -o {path.name} '{url}') and put it at {path.resolve()}; it is checked on the next run"
    )


def _mismatch(path: Path, *, sha256: str | None, size: int | None) -> str | None:
    """Why the file at ``path`` is not the expected one, or None if it is."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size is {actual_size:,} bytes, expected {size:,}"
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            return f"SHA-256 is {actual}, expected {sha256.lower()}"
    return None


def _stream_to(response, tmp: Path, *, url: str, total: int | None, progress_every: float) -> tuple[str, int]:
    """Copy the response body to ``tmp``; return (hex SHA-256, bytes). Logs progress."""
    digest = hashlib.sha256()
    done = 0
    started = last = time.monotonic()
    with open(tmp, "wb") as fh:
        while chunk := response.read(CHUNK_BYTES):
            fh.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if now - last >= progress_every:
                last = now
                rate = done / max(now - started, 1e-9)
                if total:
                    log.info(
                        "%s: %.1f / %.1f MB (%.0f%%), %.1f MB/s, %s left", tmp.name, done / 1e6, total / 1e6,
                        100 * done / total, rate / 1e6, format_duration((total - done) / max(rate, 1e-9)),
                    )  # fmt: skip
                else:
                    log.info("%s: %.1f MB, %.1f MB/s", tmp.name, done / 1e6, rate / 1e6)
    log.info("%s: %.1f MB in %.1f s", url, done / 1e6, time.monotonic() - started)
    return digest.hexdigest(), done


def download(
    url: str,
    out: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    progress_every: float = 5.0,
) -> Path:
    """Make ``out`` hold the file published at ``url``, fetching it only when needed.

    Args:
        url: http(s):// or file:// address.
        out: target path; its folder is created.
        sha256: expected hex SHA-256, or None if none is published. Then the checksum of the
            first download is written to ``<out>.sha256`` and later runs check against it.
        size: expected size in bytes, or None.
        timeout: seconds without network progress before giving up.
        progress_every: seconds between progress lines in the log.

    Returns:
        ``out`` as a Path. A present file that passes the check is left untouched (no network);
        a present file that fails it is replaced by a fresh download.

    Raises:
        PosepipeError: offline, HTTP error, or the downloaded bytes do not match; the message
            names the file, the URL, the expected checksum and where to put a copy by hand.
    """
    out = Path(out)
    if sha256 is not None and not _is_sha256(sha256):
        raise PosepipeError(out, f"{sha256!r} is not a hex SHA-256 (64 hex digits)")
    sha256 = sha256.lower() if sha256 else None
    expected = sha256 or read_sidecar(out)

    if out.is_file():
        problem = _mismatch(out, sha256=expected, size=size)
        if problem is None:
            if expected is None:
                # Present, no published and no recorded checksum (placed by hand): record one now.
                _record_sidecar(out, sha256_file(out), url)
            checked = (
                "checksum matches" if expected else "size matches" if size is not None else "nothing to check"
            )
            log.info("%s: present (%s); not downloading", out, checked)
            return out
        log.warning("%s: present but %s; downloading it again from %s", out, problem, url)
    elif out.exists():
        raise PosepipeError(out, "exists but is not a regular file")

    log.info("%s: downloading %s", out, url)
    with atomic_path(out) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else size
                actual, done = _stream_to(response, tmp, url=url, total=total, progress_every=progress_every)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PosepipeError(
                out, f"could not download {url} ({reason}); {_by_hand(out, url, sha256, size)}"
            ) from exc
        if size is not None and done != size:
            raise PosepipeError(
                out,
                f"download from {url} has {done:,} bytes, expected {size:,}; "
                f"{_by_hand(out, url, sha256, size)}",
            )
        if expected is not None and actual != expected:
            if sha256:
                source = "the published one is"
            else:
                sidecar = sidecar_path(out)
                source = (
                    f"the one recorded in {sidecar} at the first download "
                    "(delete that file if the published one really changed) is"
                )
            raise PosepipeError(
                out,
                f"download from {url} has SHA-256 {actual}, {source} {expected}; "
                f"{_by_hand(out, url, expected, size)}",
            )
    if expected is None:
        _record_sidecar(out, actual, url)
    else:
        log.info("%s: SHA-256 %s checked", out, actual)
    return out


def _record_sidecar(path: Path, digest: str, url: str) -> None:
    log.info(
        "%s: no published checksum for %s; computed SHA-256 %s (checked against nothing), wrote it to %s",
        path, url, digest, sidecar_path(path).name,
    )  # fmt: skip
    write_text(sidecar_path(path), f"{digest}  {path.name}\n")


def fetch_published(
    name: str,
    *,
    models_dir: str | os.PathLike = MODELS_DIR,
    out: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download the registry entry ``name`` to ``out`` (default ``models_dir/<published file name>``).

    ``url`` overrides the published address (a mirror); the published checksum and size still apply.
    """
    entry = published(name)
    target = Path(out) if out is not None else Path(models_dir) / entry.filename
    return download(url or entry.url, target, sha256=entry.sha256, size=entry.size, timeout=timeout)


def fetch_member(
    name: str,
    *,
    models_dir: str | os.PathLike = MODELS_DIR,
    out: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """The model inside the published archive ``name`` (an entry with ``member``), extracted to
    ``out`` (default ``models_dir/<archive name with the member's suffix>``).

    The archive is fetched by :func:`download` into ``models_dir`` (kept there, so its recorded
    checksum is checked on later runs); the member is written atomically. A present ``out`` is
    used as it is (a copy put there by hand works offline), its SHA-256 recorded in the outputs.
    """
    import zipfile

    entry = published(name)
    if entry.member is None:
        raise PosepipeError(None, f"{name} is not an archive; use fetch_published")
    target = Path(out) if out is not None else Path(models_dir) / entry.member_filename
    if target.is_file():
        log.info("%s: present; not downloading %s", target, entry.url)
        return target
    archive = Path(models_dir) / entry.filename
    try:
        download(url or entry.url, archive, sha256=entry.sha256, size=entry.size, timeout=timeout)
    except PosepipeError as exc:
        raise PosepipeError(
            target,
            f"{exc.reason} Alternatively put the extracted model ({entry.member} of that archive) at "
            f"{target.resolve()}, or give a local ONNX file in the config",
        ) from None
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.endswith(entry.member)]
            if len(members) != 1:
                raise PosepipeError(
                    archive, f"holds {len(members)} files named *{entry.member}, expected one"
                )
            with atomic_path(target) as tmp, zf.open(members[0]) as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PosepipeError(
            archive, f"cannot extract {entry.member} ({exc}); delete it to download again"
        ) from exc
    log.info("%s: extracted %s from %s", target, members[0], archive)
    return target


def weights_record(path: str | os.PathLike) -> dict:
    """What an output records about the weights it used: path, size and SHA-256."""
    path = Path(path)
    return {"path": os.fspath(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


# ---------------------------------------------------------------------------------------------
# command line


def _cli_download(args) -> None:
    if args.list:
        for entry in PUBLISHED.values():
            print(
                "\t".join(
                    [entry.name, entry.url, entry.sha256 or "", "" if entry.size is None else str(entry.size)]
                )
            )
        return
    if args.name and published(args.name).member:
        fetch_member(args.name, models_dir=args.models_dir, out=args.out, url=args.url, timeout=args.timeout)
    elif args.name:
        entry = published(args.name)
        out = Path(args.out) if args.out else Path(args.models_dir) / entry.filename
        download(
            args.url or entry.url, out, sha256=args.sha256 or entry.sha256,
            size=args.size if args.size is not None else entry.size, timeout=args.timeout,
        )  # fmt: skip
    elif args.url and args.out:
        download(args.url, args.out, sha256=args.sha256, size=args.size, timeout=args.timeout)
    else:
        raise PosepipeError(None, "give --name KEY, or --url URL and --out PATH (or --list)")


def register_cli(sub) -> None:
    p = sub.add_parser(
        "download", help="fetch a model file with a SHA-256 check (skipped if present and good)"
    )
    p.add_argument("--name", help=f"a published file: {', '.join(PUBLISHED)}")
    p.add_argument("--url", help="address to fetch (with --name: a mirror of the published file)")
    p.add_argument("--out", help=f"target file (with --name: default {MODELS_DIR}/<published file name>)")
    p.add_argument("--models-dir", default=os.fspath(MODELS_DIR), help="folder for --name without --out")
    p.add_argument("--sha256", help="expected hex SHA-256 (default: the published one, if any)")
    p.add_argument("--size", type=int, help="expected size in bytes")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without network progress before failing"
    )
    p.add_argument(
        "--list", action="store_true", help="print the published files (name, url, sha256, bytes) and exit"
    )
    p.set_defaults(handler=_cli_download)
