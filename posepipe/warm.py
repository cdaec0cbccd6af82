"""Warm start: one server process with the heavy modules imported forks a child for each stage job.

A folder of thousands of short clips spends most of its time starting Python and importing torch,
matplotlib, pandas, OpenCV and PyAV once per job (about 1 s for torch alone), not computing. With
``resources.warm_start`` on, the workflow starts ``python -m posepipe.warm serve`` when a local run
begins (``onstart``), puts its socket in the jobs' environment (``POSEPIPE_WARM_SOCKET``) and stops
it at the end. A stage job's ``python -m posepipe STAGE ARGS`` (``posepipe/__main__.py``) then
acts as a client that imports nothing but the standard library: it hands the server its command
line, working directory, environment, umask and its stdin, stdout and stderr (file descriptors
over a UNIX socket), and waits. The server forks; the child takes over those descriptors,
directory, environment and umask and runs ``posepipe.cli.main`` exactly as a fresh
``python -m posepipe`` would, with every module already imported (and, with ``--weights``, the
model files already read: :func:`posepipe.safeload.preload`). The job's log, exit status and
outputs are the same; only the start-up is gone.

Why it keeps "only stale work re-runs" true: nothing about the DAG changes. Each video keeps its
own job per stage with the same inputs, outputs, params and shell command; the warm start only
changes how the process of a job comes to exist, so turning it on or off re-runs nothing.

Safety and failure:
- The server never runs model code itself (no CUDA, no parallel kernels) and has no Python
  threads: one select loop, so forking is safe; a child starts with the state of a fresh import.
- The socket lives in a folder only its user can open (mode 0700), and both ends check the other's
  user id (``SO_PEERCRED``); ``start_server`` also checks that the process answering is the one it
  started. Requests are posepipe command lines only.
- A client runs the stage itself (a cold start) when there is no server, when the server runs
  another Python (a conda or container environment of the rule), or when the server cannot fork.
- SIGTERM/SIGINT/SIGHUP to a client are passed to its child; a client that dies (SIGKILL) closes
  its connection and the server stops the child with SIGTERM; a client whose server dies stops its
  child and fails. The server stops when the Snakemake process that started it is gone.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from posepipe.registry import preload_modules

# Set in a job's environment to the server's socket: ``python -m posepipe`` then runs warm.
WARM_SOCKET_VARIABLE = "POSEPIPE_WARM_SOCKET"
# Imported by the server before it accepts jobs: what the stages and 2D sources of the registry
# import at start (each Stage's ``preload``).
PRELOAD = preload_modules()
HEADER = struct.Struct("!I")
INT = array.array("i").itemsize
UCRED = struct.Struct("3i")  # pid, uid, gid of SO_PEERCRED


def socket_path(workdir: str | os.PathLike | None = None) -> Path:
    """The server's socket for ``workdir`` (default: the current directory): in a folder of the
    temporary directory that only this user may open (a UNIX socket path must stay short)."""
    folder = Path(tempfile.gettempdir()) / f"posepipe-warm-{os.getuid()}"
    digest = hashlib.sha1(os.path.realpath(workdir or os.getcwd()).encode()).hexdigest()[:16]
    return folder / f"{digest}.sock"


def _private_folder(path: Path) -> bool:
    """Make (or check) the socket's folder: ours and 0700. False if someone else owns it."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    return st.st_uid == os.getuid() and (st.st_mode & 0o777) == 0o700 and not path.is_symlink()


def _peer(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a UNIX socket."""
    pid, uid, _ = UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return pid, uid


def _send(conn: socket.socket, obj, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    message = HEADER.pack(len(data)) + data
    if fds:
        conn.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        conn.sendall(message)


def _recv_exact(conn: socket.socket, size: int, head: bytes = b"") -> bytes | None:
    data = head
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            return None
        data += more
    return data


def _recv(conn: socket.socket, *, with_fds: int = 0):
    """One message (read to its exact length, so the next one stays in the socket) and up to
    ``with_fds`` descriptors sent with it; (None, fds) at the end of the stream."""
    fds: list[int] = []
    if with_fds:
        head, ancillary, _, _ = conn.recvmsg(HEADER.size, socket.CMSG_LEN(with_fds * INT))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % INT])
    else:
        head = b""
    head = _recv_exact(conn, HEADER.size, head) if head is not None else None
    if head is None:
        return None, fds
    body = _recv_exact(conn, HEADER.unpack(head)[0])
    return (None if body is None else json.loads(body)), fds


# ---------------------------------------------------------------------------------------------
# client


def run_client(argv: list[str], *, socket_file: str | os.PathLike | None = None) -> int | None:
    """Run the stage ``ARGV`` in a child of the warm server at ``socket_file`` (default: this
    directory's); returns its exit status, or None when it is to run here (no server, another
    Python, no fork)."""
    path = socket_path() if socket_file is None else Path(socket_file)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0)
    os.umask(umask)
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
               "executable": sys.executable, "prefix": sys.prefix}  # fmt: skip
    try:
        conn.settimeout(5)
        conn.connect(os.fspath(path))
        conn.settimeout(None)
        if _peer(conn)[1] != os.getuid():
            raise OSError("the warm-start server runs as another user")
        _send(conn, request, fds=[0, 1, 2])
        reply, _ = _recv(conn)
    except (OSError, ValueError):
        reply = None
    if reply is None or "pid" not in reply:  # a cold start
        conn.close()
        return None
    child = int(reply["pid"])

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        status, _ = _recv(conn)
    except (OSError, ValueError):
        status = None
    if status is None:  # the server died: its child must not go on writing outputs
        forward(signal.SIGTERM, None)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        print(f"posepipe {argv[0] if argv else ''}: error: the warm-start server stopped during the job; "
              "the job was stopped (run it again)", file=sys.stderr)  # fmt: skip
        return 1
    return int(status["code"])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# server


def _child(request: dict, fds: list[int]) -> int:
    """In the forked child: become the client's job, run it, return its exit status."""
    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the job's own descriptors, kept open)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a fresh process
    os.chdir(request["cwd"])
    os.umask(int(request.get("umask", 0o022)))
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = ["posepipe", *request["argv"]]
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():  # the job's thread count, as a fresh import would read it
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        if "cv2" in sys.modules:
            sys.modules["cv2"].setNumThreads(int(threads))
    import logging

    logging.root.handlers.clear()  # cli.main configures logging for the job's stderr
    from posepipe import cli

    try:
        return cli.main(request["argv"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _accept(listener: socket.socket, children: dict) -> None:
    """Take one request: fork its job, or tell the client to start cold. Never raises."""
    conn, fds = None, []
    try:
        conn, _ = listener.accept()
        if _peer(conn)[1] != os.getuid():
            conn.close()
            return
        conn.settimeout(10)  # a client that connects and says nothing does not stall the others
        request, fds = _recv(conn, with_fds=3)
        conn.settimeout(None)
        if (
            request is None
            or request.get("executable") != sys.executable
            or request.get("prefix") != sys.prefix
        ):
            if request is not None:  # another Python (a rule's conda or container environment)
                _send(conn, {"cold": True})
            conn.close()
            return
        try:
            pid = os.fork()
        except OSError:
            _send(conn, {"cold": True})
            conn.close()
            return
        if pid == 0:  # the job
            code = 1
            try:
                listener.close()
                conn.close()
                for other in children.values():
                    other.close()
                code = _child(request, fds)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        children[pid] = conn
        conn = None
        _send(children[pid], {"pid": pid})
    except (OSError, ValueError):
        if conn is not None:
            conn.close()
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def serve(
    path: str | os.PathLike,
    *,
    preload: tuple[str, ...] = PRELOAD,
    weights: tuple[str, ...] = (),
    parent: int | None = None,
) -> None:
    """Import ``preload`` (and detectron2 when it is installed), read the ``weights`` files
    (:func:`posepipe.safeload.preload`: the jobs' model loading then skips reading and
    unpickling them), then fork a child per request until SIGTERM or SIGINT, or until the process
    ``parent`` is gone (one select loop, no threads)."""
    import importlib
    import select

    import matplotlib

    matplotlib.use("Agg")
    for name in (*preload, "detectron2.modeling", "detectron2.checkpoint", "detectron2.config"):
        with contextlib.suppress(ImportError):  # optional modules (detectron2 where installed)
            importlib.import_module(name)
    from posepipe.safeload import preload as preload_weights

    for file in weights:
        print(f"preloaded {file}: {preload_weights(file)}", flush=True)
    path = Path(path)
    if not _private_folder(path.parent):
        raise SystemExit(f"{path.parent}: not a folder of this user's with mode 0700; not serving")
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(path))
    ours = os.stat(path).st_ino
    listener.listen(128)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    children: dict[int, socket.socket] = {}  # running jobs and their clients' connections
    orphans: set[int] = set()  # jobs whose client went away: stopped, waiting to be reaped
    checked = time.monotonic()
    print(f"posepipe warm-start server {os.getpid()} on {path}", flush=True)
    try:
        while not stop:
            if parent and time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if not _alive(parent):
                    break
            watched = [c for p, c in children.items() if p not in orphans]
            try:
                readable, _, _ = select.select([listener, *watched], [], [], 0.05)
            except InterruptedError:
                continue
            for sock in readable:
                if sock is listener:
                    _accept(listener, children)
                    continue
                pid = next(p for p, c in children.items() if c is sock)
                try:
                    gone = not sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    gone = True
                if gone:  # the client went away (killed): stop its job
                    orphans.add(pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = children.pop(pid, None)
                orphans.discard(pid)
                if conn is not None:
                    code = os.waitstatus_to_exitcode(status)
                    with contextlib.suppress(OSError):
                        _send(conn, {"code": 128 - code if code < 0 else code})
                    conn.close()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ours:  # not a newer server's socket
                path.unlink()


def start_server(*, log: str | os.PathLike, weights: list[str] = (), timeout: float = 120.0) -> int | None:
    """Start a server for the current directory (detached; its output in ``log``; it stops when
    this process is gone) and wait until it, and not another process, answers on the socket.
    Returns its pid, or None when it did not come up (jobs then start cold)."""
    import subprocess

    path = socket_path()
    if not _private_folder(path.parent):
        return None
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "posepipe.warm", "serve", "--socket", os.fspath(path), "--parent",
             str(os.getpid()), *[arg for file in weights for arg in ("--weights", os.fspath(file))]],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(os.fspath(path))
            if _peer(probe) == (proc.pid, os.getuid()):
                return proc.pid  # a connection without a request is closed by the server
        time.sleep(0.1)
    stop_server(proc.pid)
    return None


def stop_server(pid: int | None) -> None:
    """Stop a server started by :func:`start_server` (running jobs finish on their own)."""
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        import argparse

        parser = argparse.ArgumentParser(prog="python -m posepipe.warm serve")
        parser.add_argument("--socket", default=None)
        parser.add_argument("--weights", action="append", default=[], help="a weights file to read ahead")
        parser.add_argument("--parent", type=int, default=None, help="stop when this process is gone")
        args = parser.parse_args(argv[1:])
        serve(args.socket or socket_path(), weights=tuple(args.weights), parent=args.parent)
        return 0
    print(
        "usage: python -m posepipe.warm serve [--socket PATH] [--weights FILE] [--parent PID]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
