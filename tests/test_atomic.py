import os
import stat

import pytest

from posepipe.atomic import atomic_path, write_json


def test_failure_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("job died")
    assert list(tmp_path.iterdir()) == []


def test_result_has_umask_permissions_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_sigterm_mid_write_leaves_no_temporary_file(tmp_path):
    """A stage stopped by SIGTERM (scheduler, Snakemake) cleans up its half-written output."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "slow.py"
    script.write_text(
        "import sys, time\n"
        "from posepipe import cli\n"
        "from posepipe.atomic import atomic_path\n"
        "def slow(args):\n"
        "    with atomic_path(args.out) as tmp:\n"
        "        tmp.write_text('partial')\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(30)\n"
        "def register(sub):\n"
        "    p = sub.add_parser('slow'); p.add_argument('out'); p.set_defaults(handler=slow)\n"
        "parser_build = cli.build_parser\n"
        "def build():\n"
        "    parser = parser_build()\n"
        "    register(parser._subparsers._group_actions[0])\n"
        "    return parser\n"
        "cli.build_parser = build\n"
        "sys.exit(cli.main(['slow', sys.argv[1]]))\n"
    )
    out = tmp_path / "out" / "result.txt"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert list((tmp_path / "out").iterdir()) == []


def test_leftovers_of_killed_writes_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "render.mp4"
    (tmp_path / ".render.mp4.abc123.mp4").write_bytes(b"half")
    parts = tmp_path / ".render.mp4.def456.parts.xyz"
    parts.mkdir()
    (parts / "000.mp4").write_bytes(b"segment")
    (tmp_path / ".pose3d.npz.zzz.npz").write_bytes(b"")  # another target's: kept
    (tmp_path / "render.mp4.txt").write_text("not a temporary")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".pose3d.npz.zzz.npz",
        "render.mp4",
        "render.mp4.txt",
    ]
