"""Read pickled numbers without running code: object-array ``.npz`` members and zoo ``.pkl`` files.

Two formats of the field keep plain data in pickles: VideoPose3D's 2D datasets and
``infer_video_d2.py`` outputs (``.npz`` whose object arrays hold dicts and lists of arrays), and
the detectron2 model zoo (``.pkl``: ``{"model": {name: ndarray}, ...}``). ``pickle.load`` and
``np.load(allow_pickle=True)`` would call any function a crafted file names. Here the unpickler
resolves only the globals that numpy uses to rebuild arrays, dtypes and scalars (plus
``collections.OrderedDict`` and ``_codecs.encode``, which Python 2-era pickles use for byte
strings); lists, dicts, tuples, strings, numbers and None need no global. Anything else is refused
with a :class:`~posepipe.errors.PosepipeError` naming the file and the refused global, before
it is called.

``load_npz(path)`` parses the archive member by member: arrays of numbers are read with
``allow_pickle=False``; object arrays go through the restricted unpickler.

:func:`preload` reads a weights file ahead of time into this process (the warm-start server does,
so that every stage job it forks finds the model's tensors already read and unpickled); a later
:func:`load_pickle` or :func:`torch_load` of the same unchanged file returns that object.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np

from posepipe.errors import PosepipeError

_PRELOADED: dict[tuple[str, int, int], object] = {}


def _file_key(path) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def preload(path: str | os.PathLike) -> bool:
    """Read the weights file ``path`` (.pkl: restricted pickle; else torch) and keep it for later
    loads of the same unchanged file in this process and its forked children. False if unreadable."""
    key = _file_key(path)
    if key is None:
        return False
    try:
        if os.fspath(path).endswith(".pkl"):
            with open(path, "rb") as fh:
                _PRELOADED[key] = restricted_load(fh, encoding="latin1")
        else:
            import torch

            _PRELOADED[key] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # the job's own load reports what is wrong with the file
        return False
    return True


# (module, name) pairs a pickle of plain numpy data may name; numpy 2 moved numpy.core to numpy._core.
ALLOWED_GLOBALS = frozenset(
    {
        (core, name)
        for core in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {(core, "_frombuffer") for core in ("numpy.core.numeric", "numpy._core.numeric")}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode")}
)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and Python containers and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid):  # noqa: D102 (no external objects in a data file)
        raise pickle.UnpicklingError("persistent ids are not allowed in a data file")


def refusal(path, exc: BaseException, what: str) -> PosepipeError:
    """The one-line error for a pickle that could not be read safely."""
    if isinstance(exc, RefusedGlobal):
        return PosepipeError(
            path,
            f"refused for safety: the {what} would call {exc} while loading; a data file may hold only "
            "arrays, lists, dicts and numbers (it was not loaded, nothing in it ran)",
        )
    return PosepipeError(path, f"cannot read as {what} ({type(exc).__name__}: {exc})")


def restricted_load(fh, *, encoding: str = "ASCII"):
    """``pickle.load`` through :class:`RestrictedUnpickler` (raises RefusedGlobal / UnpicklingError)."""
    return RestrictedUnpickler(fh, encoding=encoding).load()


def load_pickle(path: str | os.PathLike, *, what: str = "pickle", encoding: str = "latin1"):
    """Read a whole pickle file of plain data; PosepipeError naming ``path`` if refused or unreadable.

    ``latin1`` reads the byte strings of Python 2 pickles, as detectron2 does for zoo files.
    """
    if (key := _file_key(path)) in _PRELOADED:
        return _PRELOADED[key]
    try:
        with open(path, "rb") as fh:
            return restricted_load(fh, encoding=encoding)
    except Exception as exc:  # every failure of a foreign file means "not readable as this"
        raise refusal(path, exc, what) from exc


def _read_member(fh) -> np.ndarray:
    """One ``.npy`` stream: numbers with allow_pickle=False, object arrays restricted."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    if not dtype.hasobject:
        fh.seek(0)
        return np.lib.format.read_array(fh, allow_pickle=False)
    array = restricted_load(fh, encoding="ASCII")
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise pickle.UnpicklingError(f"object member is not an array of shape {tuple(shape)}")
    return array


def load_npz(path: str | os.PathLike, *, what: str = "npz archive") -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` as an array, object members through the restricted unpickler.

    Raises:
        PosepipeError: not a zip archive, a damaged member, or a pickle naming a refused global.
    """
    if not os.path.isfile(path):
        raise PosepipeError(path, "file not found")
    if not zipfile.is_zipfile(path):
        raise PosepipeError(path, f"cannot read as {what} (not an .npz archive)")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                key = name[:-4] if name.endswith(".npy") else name
                with zf.open(name) as member:
                    arrays[key] = _read_member(io.BytesIO(member.read()))
    except Exception as exc:
        raise refusal(path, exc, what) from exc
    return arrays


def torch_load(path: str | os.PathLike, *, what: str = "torch checkpoint"):
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    A file that names a global outside torch's weights-only allow-list is refused for safety, and
    the message names that global (torch's own text mostly advises turning the check off).
    """
    import re

    import torch

    if (key := _file_key(path)) in _PRELOADED:
        return _PRELOADED[key]
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", text)
        if isinstance(exc, pickle.UnpicklingError) and found:
            raise PosepipeError(
                path,
                f"refused for safety: the {what} would call {found.group(1)} while loading, and only tensors "
                "and plain containers are accepted (weights_only=True; it was not loaded, nothing in it ran)",
            ) from exc
        if isinstance(
            exc, pickle.UnpicklingError
        ):  # keep torch's finding, not its advice to turn the check off
            paragraphs = [p for p in text.split("\n\n") if p.strip()]
            kept = [
                p
                for p in paragraphs
                if not p.startswith(("Weights only load failed", "Check the documentation"))
            ]
            text = " ".join(kept).split("WeightsUnpickler error:")[-1]
        detail = " ".join(text.split())[:300]
        raise PosepipeError(path, f"cannot read as a {what} ({type(exc).__name__}: {detail})") from exc
