"""Real data sets as binary tasks, for experiments with a finite training set.

Each data set is a classification of handwritten digits turned into a binary task: the
label is y = +1 for an even digit and y = -1 for an odd one (``even_odd``).

- ``digits``: scikit-learn's 8x8 digits (1797 samples, N = 64), shipped with the package.
- ``mnist``:  MNIST-like IDX files (images (n, h, w), labels (n,)), plain or gzip, read
  from disk (``read_idx``); N = h * w, 784 for MNIST itself. Pixels are scaled by 1/255.

Inputs are standardised (``standardise``): every feature has zero mean and unit variance
over *all* samples of the set; features that never change (the blank border pixels) are
set to 0. For images seen by a convolutional network, ``scale="global"``
(``standardise_global``) applies one affine map to every pixel instead: zero mean and
unit variance over all pixels of all samples (per-pixel scaling would blow up rare border
pixels, up to |x| = 42 on the digits, and break the translation symmetry convolutions
rely on). Standardisation is done over the whole set, before ``split`` draws the disjoint
training and test parts, so both parts share the same centring and scale (the test part's
statistics leak into them, which is harmless for the teacher-free tasks here but worth
knowing).

``shape`` and ``input_dim`` give a set's size from the IDX headers, after checking that
the files are complete and agree (read through, not kept), so that a config can be checked
before anything is loaded or compiled. The module needs only NumPy; scikit-learn is
imported when the digits are loaded.

IDX format (the MNIST files): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B
int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each dimension
as a big-endian uint32, then the data in C order, big-endian.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

__all__ = [
    "DATASETS",
    "IDX_TYPES",
    "RealData",
    "SCALINGS",
    "standardise",
    "standardise_global",
    "even_odd",
    "read_idx",
    "write_idx",
    "load_digits_binary",
    "load_mnist_binary",
    "shape",
    "input_dim",
    "load",
    "split",
]


DATASETS = ("digits", "mnist")


# IDX type code -> big-endian dtype of the data
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


_GZIP_MAGIC = b"\x1f\x8b"


_IMAGES_TAG = "images-idx3-ubyte"


_LABELS_TAG = "labels-idx1-ubyte"


_DIGITS_SHAPE = (1797, 64)  # sklearn.datasets.load_digits: samples, 8 x 8 pixels


class RealData(NamedTuple):
    """n samples of a real data set as a binary task: standardised inputs x (n, N),
    labels y (n,) in {+1 (even digit), -1 (odd digit)}, the original class digit (n,)
    in 0..9 and the set's name."""

    x: np.ndarray
    y: np.ndarray
    digit: np.ndarray
    name: str


SCALINGS = ("feature", "global")
"""How inputs are standardised: each feature (pixel) on its own, or all together."""


def standardise_global(x: np.ndarray) -> np.ndarray:
    """x (n, N) minus its mean over every entry, divided by the standard deviation over
    every entry (images: the same affine map for every pixel, so a blank border stays
    uniform and rare pixels are not amplified). Returns float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.size < 2:
        raise ValueError(f"standardise_global needs a 2-D array of >= 2 entries, got {x.shape}")
    std = x.std()
    return (x - x.mean()) / (std if std > 0 else 1.0)


def standardise(x: np.ndarray) -> np.ndarray:
    """Each feature (column) of x (n, N) to zero mean and unit variance over the samples
    (rows); a feature with zero variance becomes 0, never NaN. Returns float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"standardise needs a 2-D array (n, N) with n >= 1, got shape {x.shape}")
    centred = x - x.mean(axis=0)
    std = np.sqrt(np.mean(centred**2, axis=0))
    # exactly constant columns can leave a rounding residue in ``centred``: zero them outright
    constant = (np.ptp(x, axis=0) == 0) | (std == 0)
    return np.where(constant, 0.0, centred / np.where(constant, 1.0, std))


def even_odd(digit: np.ndarray) -> np.ndarray:
    """Binary labels of digit classes: +1.0 for an even class, -1.0 for an odd one."""
    digit = np.asarray(digit)
    if digit.size and not np.array_equal(digit, np.round(digit)):
        raise ValueError("even_odd needs whole-number classes, got non-integer values")
    return np.where(np.asarray(digit, dtype=np.int64) % 2 == 0, 1.0, -1.0)


def _binary(x: np.ndarray, digit: np.ndarray, name: str, scale: str = "feature") -> RealData:
    if scale not in SCALINGS:
        raise ValueError(f"scale={scale!r}; choose one of {', '.join(SCALINGS)}")
    digit = np.asarray(digit, dtype=np.int64)
    x = standardise(x) if scale == "feature" else standardise_global(x)
    return RealData(x=x, y=even_odd(digit), digit=digit, name=name)


def _missing(path: Path) -> str:
    """Why ``path``, not a file, cannot be read."""
    return "is a folder, expected a file" if path.is_dir() else "does not exist"


def _open_idx(path: str | Path) -> tuple[Path, BinaryIO]:
    """The file opened for binary reading, decompressing it if it starts with the gzip
    magic bytes (whatever its name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} {_missing(path)}")
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    return path, (gzip.open(path, "rb") if compressed else open(path, "rb"))


def _read_header(f: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the IDX header at the start of f: the data's big-endian dtype and its shape."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise ValueError(
            f"{path} is not an IDX file: "
            + (f"it starts with {head.hex(' ')}" if head else "it is empty")
            + ", expected the header 00 00 <type> <ndim>"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"IDX file {path} has unknown type code 0x{code:02X}, allowed {allowed}")
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise ValueError(
            f"IDX file {path} is truncated: its header declares {ndim} dims "
            f"({4 * ndim} bytes) but only {len(raw)} bytes follow"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4"))
    return IDX_TYPES[code], dims


@contextlib.contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    """Turn the errors of a damaged gzip stream into a ValueError naming the file."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"IDX file {path} is a damaged gzip file: {e}") from e


def _check_size(path: Path, size: int, dtype: np.dtype, dims: tuple[int, ...]) -> None:
    """``ValueError`` unless ``size`` data bytes are what the header (dtype, dims) declares."""
    expected = math.prod(dims) * dtype.itemsize
    if size != expected:
        what = "the file is truncated" if size < expected else "extra bytes at the end"
        raise ValueError(
            f"IDX file {path} has {size} data bytes, expected {expected} for shape {dims} "
            f"of {dtype.newbyteorder('=').name} ({what})"
        )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, as an array in native byte order."""
    path, f = _open_idx(path)
    with f, _gzip_errors(path):
        dtype, dims = _read_header(f, path)
        data = f.read()
    _check_size(path, len(data), dtype, dims)
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array (uint8, int8, int16, int32, float32 or float64; 1 to 255 dims) as an
    uncompressed IDX file, big-endian as the format requires."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("=").name: code for code, dt in IDX_TYPES.items()}
    name = array.dtype.newbyteorder("=").name
    if name not in codes:
        raise ValueError(f"write_idx cannot store dtype {name}, allowed {', '.join(codes)}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx needs 1 to 255 dims, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx needs every dim below 2**32, got shape {array.shape}")
    code = codes[name]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    Path(path).write_bytes(header + data)


def load_digits_binary(scale: str = "feature") -> RealData:
    """scikit-learn's 8x8 digits (1797 samples, N = 64), standardised (``scale``: per
    feature, or globally), even/odd labels."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 (scikit-learn is slow to import)

    x, digit = load_digits(return_X_y=True)
    return _binary(x, digit, "digits", scale)


def load_mnist_binary(images: str | Path, labels: str | Path, scale: str = "feature") -> RealData:
    """MNIST-like IDX files: images (n, h, w) flattened to (n, h*w), scaled by 1/255 and
    standardised (``scale``: per feature, or globally); labels (n,) classes 0..9 turned
    into even/odd labels."""
    img, lab = read_idx(images), read_idx(labels)
    _check_mnist(img.shape, lab, images, labels)
    x = img.reshape(img.shape[0], -1).astype(np.float64) / 255.0
    return _binary(x, lab, "mnist", scale)


def _check_mnist(
    dims: tuple[int, ...], lab: np.ndarray, images: str | Path, labels: str | Path
) -> None:
    """``ValueError`` unless images of shape ``dims`` and labels ``lab`` make a data set:
    (n, h, w) images with n, h, w >= 1, n labels, classes 0..9."""
    where = f"(images {images}, labels {labels})"
    if len(dims) != 3:
        raise ValueError(f"MNIST images must be 3-D (n, h, w), got shape {dims} {where}")
    if lab.ndim != 1:
        raise ValueError(f"MNIST labels must be 1-D (n,), got shape {lab.shape} {where}")
    if dims[0] != lab.shape[0]:
        raise ValueError(
            f"MNIST count mismatch: {dims[0]} images but {lab.shape[0]} labels {where}"
        )
    if dims[0] < 1:
        raise ValueError(f"MNIST files hold no samples {where}")
    if dims[1] * dims[2] < 1:
        raise ValueError(f"MNIST images of shape {dims} have no pixels {where}")
    if not (np.array_equal(lab, np.round(lab)) and lab.min() >= 0 and lab.max() <= 9):
        bad = np.unique(lab[(lab < 0) | (lab > 9) | (lab != np.round(lab))])[:5]
        raise ValueError(f"MNIST labels must be classes 0..9, found {bad.tolist()} {where}")


def _labels_path(images: str | Path) -> Path:
    """The labels file beside an MNIST images file: 'images-idx3-ubyte' in the name
    replaced by 'labels-idx1-ubyte' (train-images-idx3-ubyte.gz -> train-labels-...)."""
    images = Path(images)
    if not images.is_file():
        raise FileNotFoundError(f"MNIST images file {images} {_missing(images)}")
    if _IMAGES_TAG not in images.name:
        raise ValueError(
            f"cannot find the labels of MNIST images {images}: the file name must contain "
            f"'{_IMAGES_TAG}' (its labels are the file with '{_LABELS_TAG}' in its place)"
        )
    labels = images.with_name(images.name.replace(_IMAGES_TAG, _LABELS_TAG))
    if not labels.is_file():
        raise ValueError(f"MNIST labels file {labels} (for images {images}) {_missing(labels)}")
    return labels


def _check(name: str, path: str | Path) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}, allowed {', '.join(DATASETS)}")
    if name == "mnist" and not str(path):
        raise ValueError("data set 'mnist' needs path, the images IDX file (...-images-idx3-ubyte)")


def shape(name: str, path: str | Path = "") -> tuple[int, int]:
    """(samples n, input dimension N) of a data set without loading it: (1797, 64) for
    digits; (n, h*w) from the header of the images file for mnist, after the checks of
    ``load`` (``ValueError`` naming the file): both files complete (as many data bytes as
    their headers declare), as many labels as images, classes 0..9. The images are read
    through but not kept."""
    _check(name, path)
    if name == "digits":
        return _DIGITS_SHAPE
    images = Path(path)
    labels = _labels_path(images)
    _, f = _open_idx(images)
    with f, _gzip_errors(images):
        dtype, dims = _read_header(f, images)
        if len(dims) != 3:
            raise ValueError(f"MNIST images must be 3-D (n, h, w), {images} has shape {dims}")
        size = 0
        while chunk := f.read(1 << 22):  # count the data bytes without keeping them
            size += len(chunk)
    _check_size(images, size, dtype, dims)
    _check_mnist(dims, read_idx(labels), images, labels)
    return dims[0], dims[1] * dims[2]


def input_dim(name: str, path: str | Path = "") -> int:
    """The input dimension N of a data set without loading it (see ``shape``)."""
    return shape(name, path)[1]


def load(name: str, path: str | Path = "", scale: str = "feature") -> RealData:
    """Load a data set by name. For 'mnist' path is the images file; its labels file is
    found beside it (see ``_labels_path``). 'digits' ignores path. ``scale``: standardise
    each feature ("feature") or all inputs together ("global")."""
    _check(name, path)
    if name == "digits":
        return load_digits_binary(scale)
    return load_mnist_binary(path, _labels_path(path), scale)


def split(data: RealData, n_train: int, n_test: int, seed: int) -> tuple[RealData, RealData]:
    """Disjoint random training and test parts of n_train and n_test samples, drawn by a
    seeded permutation (``np.random.default_rng(seed).permutation``). The inputs keep the
    standardisation over the whole set."""
    n = data.x.shape[0]
    if n_train < 1 or n_test < 1:
        raise ValueError(f"split needs n_train >= 1 and n_test >= 1, got {n_train} and {n_test}")
    if n_train + n_test > n:
        raise ValueError(
            f"n_train + n_test = {n_train} + {n_test} = {n_train + n_test} exceeds the "
            f"{n} samples of {data.name}"
        )
    perm = np.random.default_rng(seed).permutation(n)

    def part(idx: np.ndarray) -> RealData:
        return RealData(x=data.x[idx], y=data.y[idx], digit=data.digit[idx], name=data.name)

    return part(perm[:n_train]), part(perm[n_train : n_train + n_test])
