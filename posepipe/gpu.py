"""One GPU per job on a workstation with several GPUs: a lock file per card.

``snakemake --resources gpu=2`` lets two GPU jobs run at once but does not say which card each
should use, so both would start on GPU 0. :func:`claim_gpu` picks a card no other job holds,
by taking an exclusive ``fcntl.flock`` on ``<lock_dir>/gpu-<id>.lock``; the lock is released
when the block ends or the process dies (the kernel drops it), so a crashed job never leaves a
card locked. When every card is held, it waits for one, logging who holds them.

Where a scheduler already chose (SLURM sets ``CUDA_VISIBLE_DEVICES`` for a job that asked for a
GPU), that choice is kept and nothing is locked; on a machine without a GPU the job runs on the
CPU. From the command line, ``python -m posepipe with-gpu -- CMD ARGS...`` runs a command with
``CUDA_VISIBLE_DEVICES`` set to the claimed card and returns the command's exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from posepipe.errors import PosepipeError

log = logging.getLogger(__name__)

ENV = "CUDA_VISIBLE_DEVICES"
POLL_SECONDS = 0.5
LOG_EVERY_SECONDS = 300.0


def default_lock_dir() -> Path:
    """Per user, so that one user's stale lock folder can never block another's jobs."""
    return Path(tempfile.gettempdir()) / f"posepipe-gpu-locks-{os.getuid()}"


def visible_gpus() -> list[str]:
    """GPU indices that ``nvidia-smi`` lists; empty when there is no NVIDIA driver or GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed (%s); running without a GPU", exc)
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]  # fmt: skip


def parse_ids(text: str | None) -> list[str] | None:
    """argparse type for ``--ids``: '0,1' -> ['0', '1']; '', 'none', 'auto' -> None (ask nvidia-smi)."""
    if text is None or text.strip().lower() in ("", "none", "null", "auto"):
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _lock_path(lock_dir: Path, gpu_id: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu_id)}.lock"


def _prepare_lock_dir(lock_dir: Path) -> None:
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = lock_dir.stat().st_uid
    if owner != os.getuid():
        raise PosepipeError(
            lock_dir, f"GPU lock folder belongs to user id {owner}, not to you ({os.getuid()})"
        )


def _try_lock(path: Path):
    """Open and exclusively lock ``path``; return the open file, or None if another holds it."""
    fh = open(path, "a+")  # noqa: SIM115 (kept open while the lock is held)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    except BaseException:
        fh.close()
        raise
    return fh


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def claim_gpu(
    ids: Sequence[str | int] | None = None,
    lock_dir: str | os.PathLike | None = None,
    *,
    timeout: float | None = None,
    poll: float = POLL_SECONDS,
) -> Iterator[str | None]:
    """Hold one free GPU for the duration of the block; yield its id (a string), or None.

    Args:
        ids: GPU ids to choose from (as ``CUDA_VISIBLE_DEVICES`` spells them: indices, UUIDs);
            None asks ``nvidia-smi``.
        lock_dir: folder of the lock files; every job sharing the cards must use the same one
            (default :func:`default_lock_dir`).
        timeout: seconds to wait for a free GPU when all are held; None waits as long as it takes.

    Yields ``$CUDA_VISIBLE_DEVICES`` unchanged when it is already set (a scheduler chose; nothing
    is locked; an empty value means no GPU and yields None), and None when there is no GPU.
    The environment is never changed: the caller hands the id to whatever runs on the GPU.
    """
    if ENV in os.environ:
        chosen = os.environ[ENV].strip()
        log.info("%s=%r already set (by the scheduler?); using it, no GPU lock taken", ENV, chosen)
        yield chosen or None
        return
    candidates = visible_gpus() if ids is None else [str(i).strip() for i in ids if str(i).strip()]
    if not candidates:
        log.info("no GPU found; running on the CPU")
        yield None
        return
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    _prepare_lock_dir(lock_dir)

    started = time.monotonic()
    next_log = started
    while True:
        for gpu_id in candidates:
            path = _lock_path(lock_dir, gpu_id)
            fh = _try_lock(path)
            if fh is None:
                continue
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                fh.flush()
                waited = time.monotonic() - started
                log.info(
                    "GPU %s claimed (lock %s)%s",
                    gpu_id,
                    path,
                    f" after waiting {waited:.0f} s" if waited >= 1 else "",
                )
                yield gpu_id
            finally:
                with contextlib.suppress(OSError):
                    fh.truncate(0)
                fh.close()  # releases the flock
                log.info("GPU %s released", gpu_id)
            return
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            held = ", ".join(f"{g} ({_holder(_lock_path(lock_dir, g))})" for g in candidates)
            raise PosepipeError(
                lock_dir, f"no GPU free after waiting {timeout:g} s; held: {held}. Lower --resources gpu=N"
                " to the number of GPUs, or remove stale jobs"
            )  # fmt: skip
        if now >= next_log:
            held = ", ".join(f"{g} ({_holder(_lock_path(lock_dir, g))})" for g in candidates)
            limit = "no time limit" if timeout is None else f"at most {timeout:g} s"
            log.info("all %d GPUs busy: %s; waiting (%s)", len(candidates), held, limit)
            next_log = now + LOG_EVERY_SECONDS
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------
# command line


def run_with_gpu(
    command: Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    lock_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``command`` holding a GPU, with ``CUDA_VISIBLE_DEVICES`` set to it; return its exit status.

    SIGINT, SIGTERM and SIGHUP sent to this process are passed on to the command, and the GPU
    stays locked until the command has ended. A command killed by signal N returns 128 + N.
    """
    command = list(command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise PosepipeError(None, "with-gpu: no command given (usage: with-gpu [--ids 0,1] -- CMD ARGS...)")
    with claim_gpu(ids, lock_dir, timeout=timeout) as gpu_id:
        env = dict(os.environ)
        if gpu_id is not None:
            env[ENV] = gpu_id
        try:
            child = subprocess.Popen(command, env=env)
        except FileNotFoundError as exc:
            raise PosepipeError(command[0], "command not found") from exc
        except PermissionError as exc:
            raise PosepipeError(command[0], "command is not executable") from exc

        def forward(signum, _frame):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        # Signal handlers can only be set from the main thread (the command line's case).
        forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        in_main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, forward) for s in forwarded} if in_main else {}
        try:
            returncode = child.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    return 128 - returncode if returncode < 0 else returncode


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' if a GPU is usable, else 'cpu'; an explicit device must exist."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise PosepipeError(None, f"unknown device {device!r} ({exc})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise PosepipeError(
            None, f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA GPU"
        )
    return device


def register_cli(sub) -> None:
    p = sub.add_parser(
        "with-gpu",
        help="run a command on a GPU no other posepipe job holds (sets CUDA_VISIBLE_DEVICES)",
        description="Claim a free GPU (a lock file per card), run CMD with CUDA_VISIBLE_DEVICES set "
        "to it, and exit with CMD's status. Keeps CUDA_VISIBLE_DEVICES when it is already set (e.g. by "
        "SLURM); runs CMD unchanged on a machine without a GPU.",
    )
    p.add_argument(
        "--ids", type=parse_ids, help="GPU ids to choose from, e.g. 0,1 (default: all nvidia-smi lists)"
    )
    p.add_argument("--lock-dir", help=f"folder of the lock files (default: {default_lock_dir()})")
    p.add_argument("--timeout", type=float, help="give up after waiting this many seconds (default: wait)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")

    def handler(a):
        code = run_with_gpu(a.command, ids=a.ids, lock_dir=a.lock_dir, timeout=a.timeout)
        sys.stdout.flush()
        raise SystemExit(code)

    p.set_defaults(handler=handler)
