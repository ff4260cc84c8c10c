"""Datasets: the shipped UCI digits, and MNIST from IDX files that the tests write themselves."""

import gzip
import importlib.util
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.datasets import load_digits, load_mnist

# The class distribution of the UCI optdigits test set (optdigits.names), the 1797 samples shipped.
UCI_DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def _sklearn_digits_csv() -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # finds the file without importing scikit-learn
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


# ----- digits -----


def test_digits_shape_dtype_range():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # The pixels are counts 0..16 divided by 16: multiplying back gives integers exactly.
    counts = X * 16
    np.testing.assert_array_equal(counts, np.round(counts))
    assert set(np.unique(y).tolist()) == set(range(10))


def test_digits_class_counts_match_the_uci_documentation():
    _, y = load_digits()
    assert np.bincount(y, minlength=10).tolist() == UCI_DIGITS_CLASS_COUNTS


def test_digits_equal_the_scikit_learn_source_file():
    source = _sklearn_digits_csv()
    if source is None:
        pytest.skip("scikit-learn's digits.csv.gz is not installed")
    # An independent reading of the source: Python's csv parsing, not the build script's loadtxt.
    rows = [[int(v) for v in line.split(",")] for line in gzip.open(source, "rt") if line.strip()]
    table = np.array(rows)
    X, y = load_digits()
    np.testing.assert_array_equal(X, (table[:, :64] / 16).astype(np.float32))
    np.testing.assert_array_equal(y, table[:, 64])
    assert np.bincount(table[:, 64]).tolist() == UCI_DIGITS_CLASS_COUNTS


def test_digits_returns_fresh_arrays():
    X, y = load_digits()
    X[:] = -1
    y[:] = -1
    X2, y2 = load_digits()
    assert X2.min() == 0.0 and y2.min() == 0


def test_digits_file_is_small_and_holds_no_pickles():
    path = Path(__file__).parent.parent / "tinygrad_edu" / "datasets" / "digits.npz"
    assert path.stat().st_size < 100_000
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "labels"]
        assert archive["images"].dtype == np.uint8 and archive["labels"].dtype == np.uint8


# ----- MNIST: IDX files written here with struct, independently of the loader -----


def _idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">iiii", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">ii", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def _write(folder: Path, name: str, data: bytes, gz: bool = False) -> Path:
    path = folder / (name + ".gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def digits_28():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range appear
    labels = np.array([7, 2, 1, 0, 9], dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("kind, prefix", [("train", "train"), ("test", "t10k")])
@pytest.mark.parametrize("gz_images, gz_labels", [(False, False), (True, True), (True, False)])
def test_mnist_reads_idx_files(tmp_path, digits_28, kind, prefix, gz_images, gz_labels):
    images, labels = digits_28
    _write(tmp_path, f"{prefix}-images-idx3-ubyte", _idx_images(images), gz_images)
    _write(tmp_path, f"{prefix}-labels-idx1-ubyte", _idx_labels(labels), gz_labels)

    X, y = load_mnist(tmp_path, kind=kind)
    assert X.shape == (5, 784) and X.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    # Row i is image i read row by row, scaled by 1/255.
    expected = np.array([[p / 255 for p in image.ravel().tolist()] for image in images])
    np.testing.assert_allclose(X, expected, rtol=0, atol=1e-7)
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.tolist() == [7, 2, 1, 0, 9]


def test_mnist_accepts_str_path_and_train_is_default(tmp_path, digits_28):
    images, labels = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    X, y = load_mnist(str(tmp_path))
    assert X.shape == (5, 784) and y.tolist() == [7, 2, 1, 0, 9]


def test_mnist_missing_file_lists_the_names_looked_for(tmp_path, digits_28):
    images, _ = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    with pytest.raises(FileNotFoundError, match="load_mnist") as info:
        load_mnist(tmp_path, kind="train")
    message = str(info.value)
    assert "train-labels-idx1-ubyte" in message and "train-labels-idx1-ubyte.gz" in message
    assert str(tmp_path) in message


def test_mnist_empty_folder_names_the_test_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_mnist") as info:
        load_mnist(tmp_path, kind="test")
    assert "t10k-images-idx3-ubyte" in str(info.value)


def test_mnist_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="load_mnist") as info:
        load_mnist(tmp_path, kind="validation")
    assert "validation" in str(info.value)


def _assert_value_error_naming(path: Path, fragment: str, folder: Path, kind: str = "train"):
    with pytest.raises(ValueError, match="load_mnist") as info:
        load_mnist(folder, kind=kind)
    assert path.name in str(info.value)
    assert fragment in str(info.value)


def test_mnist_wrong_magic(tmp_path, digits_28):
    images, labels = digits_28
    # The labels file where the images belong: its magic is 2049, not 2051.
    bad = _write(tmp_path, "train-images-idx3-ubyte", _idx_labels(labels))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bad, "2051", tmp_path)


def test_mnist_wrong_label_magic(tmp_path, digits_28):
    images, labels = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    bad = _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels, magic=2051))
    _assert_value_error_naming(bad, "2049", tmp_path)


@pytest.mark.parametrize("cut", [1, 784, 5 * 784])
def test_mnist_truncated_images(tmp_path, digits_28, cut):
    images, labels = digits_28
    bad = _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images)[:-cut])
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bad, "truncated", tmp_path)


def test_mnist_truncated_header(tmp_path, digits_28):
    _, labels = digits_28
    bad = _write(tmp_path, "train-images-idx3-ubyte", b"\x00\x00\x08")
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bad, "truncated", tmp_path)


def test_mnist_labels_longer_than_header(tmp_path, digits_28):
    images, labels = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    bad = _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels) + b"\x00")
    _assert_value_error_naming(bad, "longer", tmp_path)


def test_mnist_mismatched_counts(tmp_path, digits_28):
    images, labels = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels[:4]))
    with pytest.raises(ValueError, match="load_mnist") as info:
        load_mnist(tmp_path)
    assert "5 images" in str(info.value) and "4 labels" in str(info.value)


def test_mnist_wrong_image_size(tmp_path):
    images = np.zeros((2, 27, 28), dtype=np.uint8)
    bad = _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(np.array([0, 1])))
    _assert_value_error_naming(bad, "27x28", tmp_path)


def test_mnist_label_out_of_range(tmp_path, digits_28):
    images, _ = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images))
    bad = _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(np.array([0, 1, 2, 3, 10])))
    _assert_value_error_naming(bad, "10", tmp_path)


@pytest.mark.parametrize("damage", ["not_gzip", "truncated_gzip"])
def test_mnist_corrupt_gzip(tmp_path, digits_28, damage):
    images, labels = digits_28
    packed = gzip.compress(_idx_images(images))
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(
        b"this is not gzip data" if damage == "not_gzip" else packed[: len(packed) // 2]
    )
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bad, "gzip", tmp_path)


# ----- headers that lie, and gzip bombs -----


def _idx_header(magic: int, *dims: int) -> bytes:
    return struct.pack(f">{1 + len(dims)}i", magic, *dims)


def test_mnist_header_claiming_a_billion_images_is_refused_before_reading(tmp_path, digits_28):
    _, labels = digits_28
    bad = _write(tmp_path, "train-images-idx3-ubyte", _idx_header(2051, 10**9, 28, 28) + bytes(784))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    declared = 10**9 * 28 * 28
    _assert_value_error_naming(bad, f"{declared} bytes", tmp_path)
    _assert_value_error_naming(bad, f"max_bytes={2**31}", tmp_path)
    # With the limit lifted, the file's real size (784 bytes of pixels) still refuses it.
    with pytest.raises(ValueError, match="load_mnist") as info:
        load_mnist(tmp_path, max_bytes=2**62)
    assert bad.name in str(info.value) and "truncated" in str(info.value)
    assert f"{declared} bytes" in str(info.value) and "the file has 784" in str(info.value)


def test_mnist_negative_dimensions(tmp_path, digits_28):
    _, labels = digits_28
    bad = _write(tmp_path, "train-images-idx3-ubyte", _idx_header(2051, -1, 28, 28))
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bad, "negative", tmp_path)


def _gzip_bomb(path: Path, header: bytes, n_zero_mib: int) -> Path:
    """A gzip of ``header`` then ``n_zero_mib`` MiB of zeros, written a MiB at a time."""
    zeros = bytes(2**20)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        for _ in range(n_zero_mib):
            f.write(zeros)
    return path


def _peak_bytes_while_loading(folder: Path, **kwargs) -> int:
    tracemalloc.start()
    try:
        load_mnist(folder, **kwargs)
    except ValueError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_mnist_gzip_bomb_declaring_its_size_is_refused_from_the_header(tmp_path, digits_28):
    _, labels = digits_28
    # An honest header for 60000 images (47 MB), gzipped to a few tens of KiB.
    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", _idx_header(2051, 60000, 28, 28), 45)
    assert bomb.stat().st_size < 2**20
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    with pytest.raises(ValueError, match="load_mnist") as info:
        load_mnist(tmp_path, max_bytes=2**20)
    message = str(info.value)
    assert bomb.name in message and "47040000 bytes" in message and "max_bytes=1048576" in message
    assert _peak_bytes_while_loading(tmp_path, max_bytes=2**20) < 2**20


def test_mnist_gzip_bomb_lying_about_its_size_is_read_no_further(tmp_path, digits_28):
    _, labels = digits_28
    # The header declares 5 images (3920 bytes); the gzip expands to 32 MiB.
    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", _idx_header(2051, 5, 28, 28), 32)
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    _assert_value_error_naming(bomb, "longer than its header says", tmp_path)
    _assert_value_error_naming(bomb, "3920 bytes", tmp_path)
    assert _peak_bytes_while_loading(tmp_path) < 2**20


def test_mnist_under_the_limit_still_loads(tmp_path, digits_28):
    images, labels = digits_28
    _write(tmp_path, "train-images-idx3-ubyte", _idx_images(images), gz=True)
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_labels(labels))
    X, y = load_mnist(tmp_path, max_bytes=images.size)  # exactly the images' size
    np.testing.assert_array_equal(X, images.reshape(len(images), -1) / np.float32(255))
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_mnist_max_bytes_must_be_a_positive_int(tmp_path, bad):
    with pytest.raises(ValueError, match="load_mnist: max_bytes"):
        load_mnist(tmp_path, max_bytes=bad)
