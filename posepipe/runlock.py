"""Snakemake's lock of a working directory, and clearing one that a killed Snakemake left.

Snakemake locks the files of a run in ``.snakemake/locks/<n>.input.lock`` / ``<n>.output.lock``
(plain text, one path a line; its file persistence backend) and removes them when it ends. A
Snakemake killed with SIGKILL (a lost node, a power cut, ``kill -9``) cannot, and the next run
stops with "Directory cannot be locked" until someone runs ``snakemake --unlock``, which is safe
only when no Snakemake still runs for that directory.

:func:`clear_stale_lock` makes that check and clears the lock only when it holds:

- no other process on this machine works in this directory as Snakemake (``snakemake`` as its
  program or ``-m snakemake``) or as a posepipe job (``-m posepipe``, a job a killed Snakemake
  left running), read from ``/proc/<pid>/cmdline`` and ``/proc/<pid>/cwd``; and
- the lock was not taken on another machine: each run records its host and process id in
  :data:`OWNER_FILE` once it holds the lock (:func:`record_owner`, called by the workflow's
  ``onstart``). A lock taken on another host (a shared file system) is left alone: this machine
  cannot see whether that Snakemake still runs.

Linux only (``/proc``); elsewhere nothing is cleared.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

LOCK_FOLDER = Path(".snakemake/locks")
OWNER_FILE = Path(".snakemake/posepipe-lock-owner.json")


def lock_files(workdir: str | os.PathLike = ".") -> list[Path]:
    """Snakemake's lock files in ``workdir`` (none when it is not locked)."""
    folder = Path(workdir) / LOCK_FOLDER
    return sorted(folder.glob("*.lock")) if folder.is_dir() else []


def record_owner(workdir: str | os.PathLike = ".", *, pid: int | None = None) -> None:
    """Record this host and ``pid`` (default: this process) as the holder of the lock."""
    path = Path(workdir) / OWNER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": pid or os.getpid()}))
    os.replace(tmp, path)


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parents, as far as /proc shows them."""
    seen = set()
    while pid > 0 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the field after the state: ppid
    return seen


def is_run_process(argv: list[str]) -> bool:
    """Whether a command line runs Snakemake or a posepipe stage: ``snakemake ...``,
    ``python -m snakemake ...``, ``python -m posepipe STAGE ...``."""
    if any(os.path.basename(arg) == "snakemake" for arg in argv):
        return True
    return any(a == "-m" and b in ("snakemake", "posepipe") for a, b in zip(argv, argv[1:], strict=False))


def run_processes(workdir: str | os.PathLike = ".", *, me: int | None = None) -> list[tuple[int, str]]:
    """(pid, command line) of the processes on this machine, other than ``me`` (default: this
    process) and its parents, that work in ``workdir`` as Snakemake or a posepipe job."""
    target = os.path.realpath(workdir)
    skip = _ancestors(me or os.getpid())
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone meanwhile, or another user's
            continue
        if cwd == target and is_run_process(argv):
            found.append((int(entry.name), " ".join(argv)[:200]))
    return found


def clear_stale_lock(workdir: str | os.PathLike = ".") -> str | None:
    """Remove the lock of ``workdir`` when no Snakemake can still hold it (see the module
    docstring). Returns what was done or why not, in one line; None when there is no lock."""
    locks = lock_files(workdir)
    if not locks:
        return None
    if not Path("/proc/self").exists():
        return None
    try:
        owner = json.loads((Path(workdir) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        owner = {}
    host = socket.gethostname()
    if owner.get("host") not in (None, host):
        return (
            f"the lock in {LOCK_FOLDER} was taken by Snakemake process {owner.get('pid')} on host "
            f"{owner['host']}, which this machine cannot check: once it no longer runs, `snakemake --unlock`"
        )
    running = run_processes(workdir)
    if running:
        listed = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in running[:3])
        return f"not clearing the lock in {LOCK_FOLDER}: still running in this directory: {listed}"
    for path in locks:
        path.unlink(missing_ok=True)
    return (
        f"removed the lock in {LOCK_FOLDER} left by a Snakemake that no longer runs "
        f"(process {owner.get('pid', '?')} on {host}, killed?); nothing else runs in this directory"
    )
