"""Real data sets: the digits task, the IDX format (checked against literal bytes), the
MNIST loader on tiny hand-made files, error messages and the seeded split. NumPy only."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from hmmjax.data import real as ds
from hmmjax.data.real import RealData

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 4), (2, 3, 5)]


@pytest.fixture(scope="module")
def digits() -> RealData:
    return ds.load_digits_binary()


# --------------------------------------------------------------------------- digits


def test_digits_shapes_and_labels(digits):
    from sklearn.datasets import load_digits

    target = load_digits().target
    assert digits.name == "digits"
    assert digits.x.shape == (1797, 64) and digits.x.dtype == np.float64
    assert digits.y.shape == (1797,) and digits.y.dtype == np.float64
    assert digits.digit.dtype == np.int64
    np.testing.assert_array_equal(digits.digit, target)
    assert set(np.unique(digits.y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(digits.y == 1.0, digits.digit % 2 == 0)
    counts = np.bincount(target, minlength=10)
    assert (digits.y == 1).sum() == counts[0::2].sum()
    assert (digits.y == -1).sum() == counts[1::2].sum()


def test_digits_standardised(digits):
    from sklearn.datasets import load_digits

    raw = load_digits().data
    constant = raw.std(axis=0) == 0
    assert constant.any()  # the set has blank pixels: they must come out 0, not NaN
    assert np.isfinite(digits.x).all()
    np.testing.assert_array_equal(digits.x[:, constant], 0.0)
    np.testing.assert_allclose(digits.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(digits.x.std(axis=0)[~constant], 1.0, rtol=1e-12)
    assert ds.input_dim("digits") == 64


def test_standardise_and_even_odd():
    x = np.array([[1, 5, 0.1], [3, 5, 0.1], [5, 5, 0.1]])
    z = ds.standardise(x)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    np.testing.assert_array_equal(z[:, 1:], 0.0)
    np.testing.assert_array_equal(ds.even_odd(np.arange(5)), [1.0, -1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="2-D"):
        ds.standardise(np.ones(3))


# --------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_idx_round_trip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        a = rng.normal(size=shape).astype(dtype) * 1e3
    path = tmp_path / "a.idx"  # no .gz suffix: gzip must be found by its magic bytes
    ds.write_idx(path, a)
    if compress:
        path.write_bytes(gzip.compress(path.read_bytes()))
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    b = ds.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == shape
    np.testing.assert_array_equal(b, a)


def test_idx_literal_bytes(tmp_path):
    header = b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03"
    data = bytes([0, 1, 2, 253, 254, 255])
    path = tmp_path / "hand.idx"
    path.write_bytes(header + data)
    np.testing.assert_array_equal(ds.read_idx(path), [[0, 1, 2], [253, 254, 255]])
    ds.write_idx(tmp_path / "w.idx", np.array([[0, 1, 2], [253, 254, 255]], dtype=np.uint8))
    assert (tmp_path / "w.idx").read_bytes() == header + data
    # big-endian multi-byte data: int16 258 = 0x0102, float32 1.0 = 3f 80 00 00
    ds.write_idx(tmp_path / "i2.idx", np.array([258, -2], dtype=np.int16))
    assert (tmp_path / "i2.idx").read_bytes() == b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe"
    ds.write_idx(tmp_path / "f4.idx", np.array([1.0], dtype="<f4"))
    assert (tmp_path / "f4.idx").read_bytes() == b"\x00\x00\x0d\x01\x00\x00\x00\x01\x3f\x80\x00\x00"


def test_idx_errors(tmp_path):
    header = b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03"
    bad = tmp_path / "bad.idx"
    bad.write_bytes(header + bytes(5))
    with pytest.raises(ValueError, match=r"bad\.idx has 5 data bytes, expected 6"):
        ds.read_idx(bad)
    bad.write_bytes(header + bytes(7))
    with pytest.raises(ValueError, match="7 data bytes, expected 6"):
        ds.read_idx(bad)
    bad.write_bytes(gzip.compress(header + bytes(5)))
    with pytest.raises(ValueError, match="5 data bytes, expected 6"):
        ds.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x02\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(bad)
    bad.write_bytes(b"\x01\x02\x08\x02" + header[4:] + bytes(6))
    with pytest.raises(ValueError, match=r"bad\.idx is not an IDX file"):
        ds.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x0a\x02" + header[4:] + bytes(6))
    with pytest.raises(ValueError, match="unknown type code 0x0A"):
        ds.read_idx(bad)
    bad.write_bytes(gzip.compress(header + bytes(6))[:-10])
    with pytest.raises(ValueError, match="damaged gzip"):
        ds.read_idx(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.idx"):
        ds.read_idx(tmp_path / "nowhere.idx")
    with pytest.raises(ValueError, match="cannot store dtype int64"):
        ds.write_idx(tmp_path / "x.idx", np.arange(3))


# --------------------------------------------------------------------------- MNIST


def _tiny_mnist(folder: Path, gz: bool = False, n_labels: int = 10) -> tuple[Path, Path]:
    """10 images 4x5, image k holds k * 20 + pixel index, labels 0..9."""
    suffix = ".gz" if gz else ""
    images = folder / f"train-images-idx3-ubyte{suffix}"
    labels = folder / f"train-labels-idx1-ubyte{suffix}"
    img = (np.arange(10)[:, None, None] * 20 + np.arange(20).reshape(4, 5)).astype(np.uint8)
    ds.write_idx(images, img)
    ds.write_idx(labels, np.arange(n_labels, dtype=np.uint8))
    if gz:
        for p in (images, labels):
            p.write_bytes(gzip.compress(p.read_bytes()))
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_mnist_tiny(tmp_path, gz):
    images, labels = _tiny_mnist(tmp_path, gz)
    data = ds.load_mnist_binary(images, labels)
    assert data.name == "mnist"
    assert data.x.shape == (10, 20) and data.y.shape == (10,)
    np.testing.assert_array_equal(data.digit, np.arange(10))
    np.testing.assert_array_equal(data.y, [1, -1] * 5)
    # every pixel is k * 20 + const over the images: standardised to one common column
    col = (np.arange(10) - 4.5) / np.arange(10).std()
    np.testing.assert_allclose(data.x, np.repeat(col[:, None], 20, axis=1), atol=1e-12)
    same = ds.load("mnist", str(images))
    np.testing.assert_array_equal(same.x, data.x)
    np.testing.assert_array_equal(same.y, data.y)
    assert ds.input_dim("mnist", str(images)) == 20
    assert ds.input_dim("mnist", images) == 20


def test_mnist_errors(tmp_path):
    images, labels = _tiny_mnist(tmp_path, n_labels=9)
    with pytest.raises(ValueError, match=r"10 images but 9 labels.*images-idx3.*labels-idx1"):
        ds.load_mnist_binary(images, labels)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        ds.load("mnist", images)
    ds.write_idx(labels, np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 12], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"classes 0\.\.9, found \[12\]"):
        ds.load_mnist_binary(images, labels)
    ds.write_idx(labels, np.zeros((10, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="labels must be 1-D"):
        ds.load_mnist_binary(images, labels)
    flat = tmp_path / "flat-images-idx3-ubyte"
    ds.write_idx(flat, np.zeros((10, 20), dtype=np.uint8))
    ds.write_idx(tmp_path / "flat-labels-idx1-ubyte", np.arange(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="images must be 3-D"):
        ds.load("mnist", flat)
    with pytest.raises(ValueError, match="images must be 3-D"):
        ds.input_dim("mnist", flat)

    alone = tmp_path / "alone"
    alone.mkdir()
    ds.write_idx(alone / "t10k-images-idx3-ubyte.gz", np.zeros((2, 2, 2), dtype=np.uint8))
    for f in (ds.load, ds.input_dim):
        with pytest.raises(ValueError, match=r"labels file .*t10k-labels-idx1-ubyte\.gz"):
            f("mnist", str(alone / "t10k-images-idx3-ubyte.gz"))
    odd = alone / "pictures.idx"
    ds.write_idx(odd, np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="must contain 'images-idx3-ubyte'"):
        ds.load("mnist", odd)
    with pytest.raises(FileNotFoundError, match="images file .*gone-images-idx3-ubyte"):
        ds.input_dim("mnist", str(alone / "gone-images-idx3-ubyte"))
    with pytest.raises(ValueError, match="needs path"):
        ds.load("mnist")


def test_unknown_name():
    for f in (ds.load, ds.input_dim):
        with pytest.raises(ValueError, match="unknown data set 'cifar', allowed digits, mnist"):
            f("cifar")


# --------------------------------------------------------------------------- split


def _toy(n: int = 50) -> RealData:
    x = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3))
    digit = np.arange(n) % 10
    return RealData(x=x, y=ds.even_odd(digit), digit=digit, name="toy")


def test_split():
    data = _toy()
    train, test = ds.split(data, 30, 15, seed=1)
    assert train.x.shape == (30, 3) and test.x.shape == (15, 3)
    assert train.y.shape == (30,) and test.digit.shape == (15,)
    assert train.name == test.name == "toy"
    ids_train, ids_test = train.x[:, 0].astype(int), test.x[:, 0].astype(int)
    assert len(set(ids_train)) == 30 and len(set(ids_test)) == 15
    assert not set(ids_train) & set(ids_test)
    np.testing.assert_array_equal(train.digit, ids_train % 10)  # rows stay together
    np.testing.assert_array_equal(train.y, ds.even_odd(train.digit))

    again, again_test = ds.split(data, 30, 15, seed=1)
    np.testing.assert_array_equal(again.x, train.x)
    np.testing.assert_array_equal(again_test.x, test.x)
    other, _ = ds.split(data, 30, 15, seed=2)
    assert not np.array_equal(other.x, train.x)
    full_train, full_test = ds.split(data, 49, 1, seed=0)
    assert len(full_train.y) + len(full_test.y) == 50


def test_split_errors():
    data = _toy()
    with pytest.raises(ValueError, match=r"n_train \+ n_test = 40 \+ 11 = 51 exceeds the 50 "):
        ds.split(data, 40, 11, seed=0)
    with pytest.raises(ValueError, match="samples of toy"):
        ds.split(data, 40, 11, seed=0)
    for n_train, n_test in [(0, 5), (5, 0), (-1, 5)]:
        with pytest.raises(ValueError, match=">= 1"):
            ds.split(data, n_train, n_test, seed=0)


def test_shape_without_loading(tmp_path):
    assert ds.shape("digits") == ds.load_digits_binary().x.shape


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_shape_checks_both_files_in_full(tmp_path, gz):
    """``shape`` (what a config is checked with) refuses what ``load`` would refuse, in
    one line naming the file: the data bytes, not only the headers, are checked."""

    def rewrite(path: Path, data: bytes) -> None:
        path.write_bytes(gzip.compress(data) if gz else data)

    def raw(path: Path) -> bytes:
        return gzip.decompress(path.read_bytes()) if gz else path.read_bytes()

    images, labels = _tiny_mnist(tmp_path, gz)
    good_images, good_labels = raw(images), raw(labels)
    assert ds.shape("mnist", images) == (10, 20)
    cases = [
        (images, good_images[:-50], r"images-idx3-ubyte(\.gz)? has 150 data bytes, expected "
         r"200 for shape \(10, 4, 5\) of uint8 \(the file is truncated\)"),
        (images, good_images + b"\0\0", r"has 202 data bytes, expected 200 .*extra bytes"),
        (labels, good_labels[:-1], r"labels-idx1-ubyte(\.gz)? has 9 data bytes, expected 10"),
        (labels, b"", r"labels-idx1-ubyte(\.gz)? is not an IDX file: it is empty"),
        (labels, b"\x08\x01" + good_labels[2:], r"labels.* is not an IDX file: it starts with 08"),
        (labels, good_labels[:3] + b"\x01\x00\x00\x00\x09" + bytes(9),
         r"count mismatch: 10 images but 9 labels"),
        (labels, good_labels[:-1] + b"\x0c", r"labels must be classes 0\.\.9, found \[12\]"),
        (images, b"\x00\x00\x08\x03" + bytes([0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 5]),
         r"images of shape \(10, 0, 5\) have no pixels"),
    ]  # fmt: skip
    for path, data, expected in cases:
        rewrite(path, data)
        with pytest.raises(ValueError, match=expected):
            ds.shape("mnist", images)
        rewrite(images, good_images)
        rewrite(labels, good_labels)
    assert ds.shape("mnist", images) == (10, 20)
    images.write_bytes(images.read_bytes()[:-10] if gz else gzip.compress(good_images)[:-10])
    with pytest.raises(ValueError, match=r"images-idx3-ubyte(\.gz)? is a damaged gzip file"):
        ds.shape("mnist", images)
