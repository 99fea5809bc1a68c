"""Files: atomic writes (a file is written next to its target and renamed over it, with
fsync, so an existing file is never left half-written, whatever happens) and a careful
reader of ``.npz`` archives (a damaged, truncated or foreign file is one ``ValueError``
saying what is wrong, never a traceback from numpy or zipfile).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import secrets
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["atomic_target", "atomic_write_bytes", "NpzError", "read_npz"]


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically,
    on failure it is removed and ``path`` is untouched. Parent folders are created. A
    symbolic link is written through: its target is replaced, the link stays."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{secrets.token_hex(4)}")
    # os.open with 0o666 honours the umask, unlike tempfile's private 0o600 files.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); return the path."""
    path = Path(path)
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


# what numpy and zipfile raise on damaged archives (header fields asking for unsupported
# compression, encryption or patched data included)
_NPZ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
               NotImplementedError, RuntimeError, lzma.LZMAError)  # fmt: skip


class NpzError(ValueError):
    """An ``.npz`` file that cannot be read: ``reason`` in words, ``array`` the name of
    the array that failed (None: the archive itself)."""

    def __init__(self, reason: str, array: str | None = None):
        super().__init__(reason if array is None else f"cannot read {array}: {reason}")
        self.reason, self.array = reason, array


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path`` (no pickles). ``FileNotFoundError``
    if there is none; ``NpzError`` saying in words what is wrong (a folder, empty, not a
    zip archive, damaged or truncated, an array that cannot be read)."""
    path = Path(path)
    if path.is_dir():
        raise NpzError("it is a folder")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] != b"PK":  # every zip archive (an .npz) starts with a "PK" record
        raise NpzError(_not_zip(head))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for name in list(npz.files):
                try:
                    arrays[name] = npz[name]
                except _NPZ_ERRORS as err:
                    raise NpzError(_reason(err), name) from None
    except (FileNotFoundError, NpzError):
        raise
    except _NPZ_ERRORS as err:
        raise NpzError(_reason(err)) from None
    return arrays


def _not_zip(head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head == b"\x93NUM":
        return "it is a single .npy array, not an .npz archive of named arrays"
    return f"it starts with {head.hex(' ')}, not with the zip signature 50 4b of an .npz"


def _reason(err: BaseException) -> str:
    """An error of numpy or zipfile reading an ``.npz``, in words."""
    text = (str(err).strip() or type(err).__name__).splitlines()[0]
    if "allow_pickle" in text:
        return "it holds Python objects (pickled data), which hmmjax never writes"
    if isinstance(err, zipfile.BadZipFile | EOFError | zlib.error):
        return f"a damaged or truncated zip archive: {text}"
    return text
