"""Fixtures shared by the test modules, and the opt-in for the SLURM test.

Fixtures (pytest finds them in every module under tests/; a module's own fixture of the same
name takes precedence):

- ``main``: posepipe's command line run in this process: ``main(argv)`` returns the exit
  status, and error lines go to stderr (``capsys``).
- ``test_data``: ``test_data("media/dance.mp4")`` is the path of a file or folder under
  tests/data (the real sample clip with its keypoints, the VideoPose3D parity fixture; see
  tests/data/README.md). They are part of the repository: a missing one fails the test.

Synthetic inputs (videos, COCO keypoints, random checkpoints and detectron2 weights) are built by
:mod:`posepipe.testing`.

The ``slurm`` tests (tests/test_slurm.py) run as root install SLURM with apt-get, start its
daemons, and purge the packages again at the end: they change the machine, so they run only
when asked, with ``--run-slurm`` or with a ``-m`` expression that names the marker
(``pytest -m slurm``). Otherwise they are deselected, and ``make test`` changes no system
package. CI (.ci/run) passes ``--run-slurm``.

tests/test_opensim.py runs in a pytest process of its own (``make test`` runs it second):
OpenSim's Python package and ezc3d's are both SWIG modules, and in one process whichever is
imported second fails to convert ``std::vector<std::string>`` arguments (measured: opensim's
``setColumnLabels`` after an ezc3d C3D write, and the reverse). The workflow's stages never import
both (each job is its own process). So the module is collected only when named on the command
line (``pytest tests/test_opensim.py``); any other run says it left it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import TEST_DATA


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slurm",
        action="store_true",
        help="also run the slurm tests: as root they install SLURM with apt-get, start it and purge it again",
    )


SLURM_LEFT_OUT = pytest.StashKey[int]()
# Modules that need a process of their own, and why (see the module docstring).
APART = {"test_opensim.py": "OpenSim's and ezc3d's SWIG modules clash in one process"}
APART_LEFT_OUT = pytest.StashKey[list]()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """Leave out a module of APART unless it is named on the command line."""
    if collection_path.name not in APART:
        return None
    args = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    if collection_path.resolve() in args:
        return None
    if any(arg.is_dir() and collection_path.resolve().is_relative_to(arg) for arg in args):
        config.stash.setdefault(APART_LEFT_OUT, []).append(collection_path.name)  # it would have run
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slurm") or "slurm" in (config.option.markexpr or ""):
        return  # asked for: `-m` (pytest's own selection) decides
    slurm = [item for item in items if item.get_closest_marker("slurm")]
    if slurm:
        config.hook.pytest_deselected(items=slurm)
        items[:] = [item for item in items if not item.get_closest_marker("slurm")]
        config.stash[SLURM_LEFT_OUT] = len(slurm)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for name in dict.fromkeys(config.stash.get(APART_LEFT_OUT, [])):
        terminalreporter.write_line(
            f"tests/{name} left out of this run ({APART[name]}): run it alone, pytest tests/{name} "
            "(make test does)"
        )
    if left_out := config.stash.get(SLURM_LEFT_OUT, 0):
        terminalreporter.write_line(
            f"{left_out} slurm tests deselected: as root they install SLURM packages; "
            "run them with --run-slurm or -m slurm"
        )


@pytest.fixture
def main():
    """``posepipe`` run in-process: ``main(["render", ...])`` -> exit status."""
    from posepipe import cli

    return cli.main


@pytest.fixture(scope="session")
def test_data():
    """``test_data(relative)``: the path of a file or folder under tests/data (fails when missing)."""

    def get(relative: str) -> Path:
        path = TEST_DATA / relative
        if not path.exists():
            pytest.fail(f"{path} not found: tests/data is part of the repository (see tests/data/README.md)")
        return path

    return get
