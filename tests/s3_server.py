"""A real S3 API on loopback for the tests: moto in server mode, one process per test module.

No MinIO server can be installed from PyPI or Debian (PyPI's ``minio`` is the client library;
Debian packages only MinIO's Go libraries), so the tests use ``moto_server`` (moto's S3 over HTTP,
the same wire protocol boto3 and Snakemake's S3 plugin speak to AWS, MinIO or Ceph).

``S3Server`` starts it on a free loopback port, waits until it answers, logs every request to
a file (so tests can count them), and stops it. ``env`` is what a client (boto3, Snakemake and
its jobs) needs to reach it: the endpoint, fake credentials and a region, through the usual
variables; nothing is written to a config file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, log: Path):
        self.log_path = log
        self.process = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self, attempts: int = 5) -> S3Server:
        for _ in range(attempts):  # another process may take the free port first: try another
            self.port = free_port()
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"moto_server did not start (log: {self.log_path})")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if getattr(self, "_log", None):
            self._log.close()

    def reset(self) -> None:
        """Forget every bucket and object."""
        self._post("/moto-api/reset", b"")

    def require_auth(self, on: bool) -> None:
        """From now on, accept only credentials the server knows (on), or any (off)."""
        self._post("/moto-api/reset-auth", b"0" if on else b"inf")

    def _post(self, path: str, data: bytes) -> None:
        urllib.request.urlopen(
            urllib.request.Request(
                self.url + path, data=data, method="POST", headers={"Content-Type": "text/plain"}
            ),
            timeout=10,
        ).close()

    def requests(self, text: str) -> int:
        """Requests logged so far whose log line contains ``text`` (e.g. 'list-type=2')."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if '"GET ' in line and text in line)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A moto S3 server for the module (stopped after its last test)."""
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The module's server, emptied, with its endpoint and credentials in this test's environment."""
    s3_server.reset()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", *PLUGIN_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


PLUGIN_VARIABLES = (
    "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL",
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY",
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY",
    "SNAKEMAKE_STORAGE_S3_TOKEN",
    "SNAKEMAKE_STORAGE_S3_REGION",
)
