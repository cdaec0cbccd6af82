"""Warm start: one server process with the heavy modules imported forks a child for each stage job.

A folder of thousands of short clips spends most of its time starting Python and importing torch,
matplotlib, pandas, OpenCV and PyAV once per job (about 1 s for torch alone), not computing. With
``resources.warm_start`` on, the workflow starts ``python -m posepipe.warm serve`` when a local run
begins (``onstart``), puts its socket in the jobs' environment (``POSEPIPE_WARM_SOCKET``) and stops
it at the end. A stage job's ``python -m posepipe STAGE ARGS`` (``posepipe/__main__.py``) then
acts as a client that imports nothing but the standard library: it hands the server its command
line, working directory, environment and its stdin, stdout and stderr (file descriptors over a
UNIX socket), and waits. The server forks; the child takes
over those descriptors, directory and environment and runs ``posepipe.cli.main`` exactly as a
fresh ``python -m posepipe`` would, with every module already imported. The job's log, exit status
and outputs are the same; only the start-up is gone.

Why it keeps "only stale work re-runs" true: nothing about the DAG changes. Each video keeps its
own job per stage with the same inputs, outputs, params and shell command; the warm start only
changes how the process of a job comes to exist, so turning it on or off re-runs nothing.

Safety and failure:
- The server never runs model code itself (no thread pools, no CUDA): a forked child starts with
  the state of a fresh import. It is single-threaded (one select loop), so forking is safe.
- The socket (mode 0600, in the temporary folder, named after the user and the working
  directory) accepts only posepipe command lines, from the same user.
- A client that cannot reach the server runs the stage itself (``python -m posepipe``): jobs on a
  cluster node, a server that died, or warm start off all give the ordinary behaviour.
- SIGTERM/SIGINT to a client are passed to its child; a client that dies (SIGKILL) closes its
  connection and the server stops the child with SIGTERM, so no orphan writes outputs late.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import os
import signal
import socket
import socket as _socket
import struct
import sys
import tempfile
from pathlib import Path

# Set in a job's environment to the server's socket: ``python -m posepipe`` then runs warm.
WARM_SOCKET_VARIABLE = "POSEPIPE_WARM_SOCKET"
# Imported by the server before it accepts jobs; each is what some stage imports at start.
PRELOAD = (
    "numpy", "pandas", "scipy.optimize", "scipy.signal", "scipy.spatial.transform", "cv2", "av", "yaml",
    "matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "mpl_toolkits.mplot3d", "torch",
    "posepipe.cli", "posepipe.video", "posepipe.keypoints2d.importers", "posepipe.tracks", "posepipe.dataset2d",
    "posepipe.lift3d.infer", "posepipe.render.stage", "posepipe.render.scene", "posepipe.qc",
    "posepipe.exports.stage", "posepipe.exports.tables", "posepipe.exports.trc", "posepipe.exports.bvh",
    "posepipe.summary",
)  # fmt: skip
HEADER = struct.Struct("!I")


def socket_path(workdir: str | os.PathLike | None = None) -> Path:
    """The server's socket for ``workdir`` (default: the current directory), in the temporary
    folder (a UNIX socket path must stay short), named after the user and the folder."""
    folder = os.path.realpath(workdir or os.getcwd())
    digest = hashlib.sha1(folder.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"posepipe-warm-{os.getuid()}-{digest}.sock"


def _send(conn: socket.socket, obj, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    message = HEADER.pack(len(data)) + data
    if fds:
        conn.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        conn.sendall(message)


def _recv(conn: socket.socket, *, with_fds: int = 0):
    """One message (and up to ``with_fds`` descriptors); None at end of stream."""
    fds: list[int] = []
    if with_fds:
        data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(with_fds * array.array("i").itemsize))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % array.array("i").itemsize])
    else:
        data = conn.recv(65536)
    if not data:
        return None, fds
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack(data[: HEADER.size])[0]:
        more = conn.recv(65536)
        if not more:
            return None, fds
        data += more
    size = HEADER.unpack(data[: HEADER.size])[0]
    return json.loads(data[HEADER.size : HEADER.size + size]), fds


# ---------------------------------------------------------------------------------------------
# client


def run_client(argv: list[str], *, socket: str | os.PathLike | None = None) -> int | None:  # noqa: A002
    """Run the stage ``ARGV`` in a child of the warm server at ``socket`` (default: this directory's);
    returns its exit status, or None when there is no server (the caller then runs it itself)."""
    path = socket_path() if socket is None else Path(socket)
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(5)
        conn.connect(os.fspath(path))
        conn.settimeout(None)
        _send(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, fds=[0, 1, 2])
        reply, _ = _recv(conn)
    except OSError:
        reply = None
    if reply is None:  # no server (or it went away before starting the job): a cold start
        conn.close()
        return None
    child = int(reply["pid"])

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            status, _ = _recv(conn)
            break
        except InterruptedError:
            continue
    if status is None:
        print(f"posepipe {argv[0] if argv else ''}: error: the warm-start server stopped during the job",
              file=sys.stderr)  # fmt: skip
        return 1
    return int(status["code"])


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
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    import logging

    logging.root.handlers.clear()  # cli.main configures logging for the job's stderr
    from posepipe import cli

    try:
        return cli.main(request["argv"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def serve(
    path: str | os.PathLike, *, preload: tuple[str, ...] = PRELOAD, weights: tuple[str, ...] = ()
) -> None:
    """Import ``preload`` (and detectron2 when it is installed), read the ``weights`` files
    (:func:`posepipe.safeload.preload`: the jobs' model loading then skips reading and
    unpickling them), then fork a child per request until SIGTERM or SIGINT (one select loop)."""
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
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        listener.bind(os.fspath(path))
    finally:
        os.umask(old_mask)
    listener.listen(128)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    children: dict[int, socket.socket] = {}  # running jobs and their clients' connections
    orphans: set[int] = set()  # jobs whose client went away: stopped, waiting to be reaped
    print(f"posepipe warm-start server {os.getpid()} on {path}", flush=True)
    try:
        while not stop:
            try:
                watched = [c for p, c in children.items() if p not in orphans]
                readable, _, _ = select.select([listener, *watched], [], [], 0.05)
            except InterruptedError:
                continue
            for sock in readable:
                if sock is listener:
                    conn, _ = listener.accept()
                    request, fds = _recv(conn, with_fds=3)
                    if request is None:
                        conn.close()
                        continue
                    pid = os.fork()
                    if pid == 0:  # the job
                        listener.close()
                        conn.close()
                        for other in children.values():
                            other.close()
                        code = 1
                        try:
                            code = _child(request, fds)
                        finally:
                            sys.stdout.flush()
                            sys.stderr.flush()
                            os._exit(code)
                    for fd in fds:
                        os.close(fd)
                    children[pid] = conn
                    _send(conn, {"pid": pid})
                elif not sock.recv(1, socket.MSG_PEEK):  # the client went away (killed): stop its job
                    pid = next(p for p, c in children.items() if c is sock)
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
        path.unlink(missing_ok=True)


def start_server(*, log: str | os.PathLike, weights: list[str] = (), timeout: float = 120.0) -> int | None:
    """Start a server for the current directory (detached; its output in ``log``) and wait until it
    accepts jobs. Returns its pid, or None when it did not come up (jobs then start cold)."""
    import subprocess
    import time

    path = socket_path()
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "posepipe.warm", "serve", "--socket", os.fspath(path),
             *[arg for file in weights for arg in ("--weights", os.fspath(file))]],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(os.fspath(path))
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
    if argv[:1] == ["run"]:
        rest = argv[1:]
        rest = rest[1:] if rest[:1] == ["--"] else rest
        code = run_client(rest)
        if code is None:  # no server: run it here
            os.execv(sys.executable, [sys.executable, "-m", "posepipe", *rest])
        return code
    if argv[:1] == ["serve"]:
        import argparse

        parser = argparse.ArgumentParser(prog="python -m posepipe.warm serve")
        parser.add_argument("--socket", default=None)
        parser.add_argument("--weights", action="append", default=[], help="a weights file to read ahead")
        args = parser.parse_args(argv[1:])
        serve(args.socket or socket_path(), weights=tuple(args.weights))
        return 0
    print("usage: python -m posepipe.warm serve [--socket PATH] | run -- STAGE ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
