"""The Makefile's choices on a fresh machine, without installing anything: which torch build
`make setup` / `make run` take (make -n), and detectron2 installed only when the settings need it,
tried once, with one line saying why it failed (a stand-in python/pip records what is run)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="no make on this machine")

# A stand-in for $(VENV)/bin/python: torch imports, detectron2 does not, `-m pip` is recorded (and
# fails as pip fails offline where its arguments hold FAKE_PIP_FAILS), `-m posepipe` is the real one.
FAKE_PYTHON = """#!/bin/sh
if [ "$1" = -c ]; then case "$2" in *detectron2*) exit 1 ;; *) exit 0 ;; esac; fi
if [ "$1 $2" = "-m pip" ]; then
  shift 2; echo "pip $*" >> "$FAKE_PIP_LOG"
  if [ -n "$FAKE_PIP_FAILS" ] && case "$*" in *"$FAKE_PIP_FAILS"*) true ;; *) false ;; esac; then
    echo "  Running command git clone --filter=blob:none --quiet https://github.com/x/y.git /tmp/pip-req"
    echo "  fatal: unable to access 'https://github.com/x/y.git/': Could not resolve host: github.com"
    echo "  error: subprocess-exited-with-error"
    echo "ERROR: No matching distribution found for $*"
    exit 1
  fi
  exit 0
fi
PYTHONPATH={repo} exec {python} "$@"
"""


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_torch_build_follows_the_nvidia_driver(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"
    cpu = make("-n", "setup", venv, "NVIDIA=no").stdout
    assert "pip install -q torch==2.13.0+cpu 2>/dev/null" in cpu
    assert "--extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu" in cpu  # the fallback
    cuda = make("-n", "setup", venv, "NVIDIA=yes").stdout
    assert "pip install -q torch==2.13.0;" in cuda and "+cpu" not in cuda
    # make run without a driver: the CPU build of TEST_TORCH (no torchvision needed without detectron2)
    run = make("-n", "run", venv, "NVIDIA=no").stdout
    assert "torch==2.13.0+cpu" in run and "torch==2.14.1" not in run.split("posepipe settings")[0]
    assert "torch==2.14.1 torchvision==0.29.1;" in make("-n", "run", venv, "NVIDIA=yes").stdout
    # detected: nvidia-smi on PATH (or /proc/driver/nvidia/version) means a driver
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "nvidia-smi").chmod(0o755)
    with_smi = make("-n", "setup", venv, env={"PATH": f"{fake_bin}:{os.environ['PATH']}"}).stdout
    assert "(NVIDIA driver found: CUDA build)" in with_smi
    driver = Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None
    plain = make("-n", "setup", venv).stdout
    assert ("(NVIDIA driver found: CUDA build)" in plain) == driver
    assert ("(no NVIDIA driver: CPU build; NVIDIA=yes for CUDA)" in plain) == (not driver)


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON.replace("{repo}", str(REPO)).replace("{python}", sys.executable))
    python.chmod(0o755)
    (venv / ".posepipe").touch()  # `make setup` is done (newer than pyproject.toml)
    return venv


def test_detectron2_only_when_needed_and_one_line_when_it_fails(fake_venv, tmp_path):
    log = tmp_path / "pip.log"
    env = {"FAKE_PIP_LOG": str(log), "FAKE_PIP_FAILS": "git+https://github.com/facebookresearch/detectron2"}
    venv = f"VENV={fake_venv}"
    settings = tmp_path / "mine.yaml"
    settings.write_text("keypoints2d: {source: file}\n")

    out = make("detectron2-if-needed", venv, "NVIDIA=no", f"SNAKEMAKE_ARGS=--configfile {settings}", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "detectron2: not needed (keypoints2d.source: file)"
    assert not log.exists()  # pip never ran

    # the defaults need it: one try, the first error line as the reason, a marker with it
    out = make("detectron2-if-needed", venv, "NVIDIA=no", env=env)
    assert out.returncode == 0, out.stderr
    commit = re.search(r"^DETECTRON2_COMMIT \?= (\w+)$", (REPO / "Makefile").read_text(), re.M)[1]
    reason = (
        f"could not install git+https://github.com/facebookresearch/detectron2.git@{commit}: fatal: unable "
        "to access 'https://github.com/x/y.git/': Could not resolve host: github.com (no network? Could not "
        "resolve host: github.com)"
    )
    assert f"detectron2: {reason}\n" in out.stdout
    assert len(out.stdout.strip().splitlines()) == 3, out.stdout  # what it does, why it failed, what to do
    assert "pip install -q torch==2.14.1+cpu torchvision==0.29.1+cpu" in log.read_text()
    failed = (fake_venv / ".detectron2-failed").read_text()
    assert failed.startswith("failed on ") and reason in failed

    # the next run says so in one line and does not try again
    calls = log.read_text()
    out = make("detectron2-if-needed", venv, "NVIDIA=no", env=env)
    assert out.stdout.strip().splitlines() == [
        f"detectron2: not installed, {failed.strip()}; `make detectron2` tries again"
    ]
    assert log.read_text() == calls

    # `make detectron2` tries again (and here fails again)
    out = make("detectron2", venv, "NVIDIA=no", env=env)
    assert "Installing detectron2" in out.stdout and log.read_text() != calls
    # with a driver the CUDA pair is what detectron2 is built against
    (fake_venv / ".detectron2-failed").unlink()
    log.unlink()
    make("detectron2-if-needed", venv, "NVIDIA=yes", env=env)
    assert "pip install -q torch==2.14.1 torchvision==0.29.1\n" in log.read_text()

    # a failing torch step is named as such (CPU build: pip's configuration, then PyTorch's CPU index)
    (fake_venv / ".detectron2-failed").unlink()
    log.unlink()
    out = make("detectron2-if-needed", venv, "NVIDIA=no", env={**env, "FAKE_PIP_FAILS": "+cpu"})
    assert (
        "detectron2: could not install torch for it (torch==2.14.1+cpu torchvision==0.29.1+cpu): "
        in out.stdout
    )
    assert log.read_text().splitlines() == [
        "pip install -q torch==2.14.1+cpu torchvision==0.29.1+cpu",
        "pip install -q --extra-index-url https://download.pytorch.org/whl/cpu torch==2.14.1+cpu torchvision==0.29.1+cpu",
    ]
