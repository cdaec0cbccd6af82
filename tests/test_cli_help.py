"""What a user reads first: the command line's help texts, and the pointers in pyproject.toml."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from posepipe.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
MARKUP = re.compile(r"``|:(?:func|mod|data|class|meth):`")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_top_level_help_is_plain_text():
    text = build_parser().format_help()
    assert not MARKUP.search(text), text
    assert "One sub-command per stage" in text and "posepipe STAGE --help" in text


@pytest.mark.parametrize("stage", sorted(subcommands()))
def test_no_stage_help_shows_raw_markup(stage):
    text = subcommands()[stage].format_help()
    assert not MARKUP.search(text), text


def test_export_help_describes_the_stage_and_every_option():
    export = subcommands()["export"]
    assert export.description and "one file per person" in export.description
    for action in export._actions:
        assert action.help, action.dest


def test_pyproject_points_at_readme_sections_that_exist():
    text = (REPO / "pyproject.toml").read_text()
    pointers = re.findall(r'see README(?:\.md)?, section "([^"]+)",\s*#?\s*"([^"]+)"', text)
    assert pointers, "pyproject.toml names no README section"
    readme = (REPO / "README.md").read_text()
    for section, paragraph in pointers:
        assert f"\n## {section}\n" in readme, section
        body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
        assert f"**{paragraph}.**" in body, paragraph
