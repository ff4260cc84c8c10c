"""MNIST from the standard IDX files, which the user downloads once into a folder.

IDX is a tiny binary format (http://yann.lecun.com/exdb/mnist/): a big-endian header, then the
raw bytes.
- Images: magic 2051, count, rows, cols (int32 each), then count*rows*cols pixels (uint8, 0..255,
  row by row).
- Labels: magic 2049, count, then count bytes (the digit 0..9).
The magic number's last byte is the number of dimensions (3 for images, 1 for labels) and the byte
before it the element type (0x08, uint8).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from tinygrad_edu.errors import InputError

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
ROWS = COLS = 28
N_CLASSES = 10

# The prefix of each kind's files; the names are the ones the MNIST site publishes. Some mirrors
# replace the dash before "idx" by a dot, so those names are tried as well.
_PREFIX = {"train": "train", "test": "t10k"}


def load_mnist(path: str | os.PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load the MNIST training set (60000 images) or test set (10000 images) from a folder.

    Args:
        path: the folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzipped
            (``.gz``).
        kind: ``"train"`` or ``"test"``.

    Returns:
        ``(X, y)``: X float32 of shape (n, 784), pixels divided by 255 so they lie in [0, 1], each
        28x28 image flattened row by row; y int64 of shape (n,) with the digit 0..9.

    Raises:
        FileNotFoundError: a file is missing (the message lists every name looked for).
        ValueError: a file is not an IDX file of the right kind (bad magic number, wrong image
            size), is truncated or padded, is a corrupt gzip, or images and labels disagree in
            number.

    MNIST has no validation set of its own: hold out part of the training set with
    ``tg.data.train_val_test_split`` and keep the test set for the final evaluation.
    """
    if kind not in _PREFIX:
        raise InputError(f"load_mnist: kind must be 'train' or 'test', got {kind!r}")
    folder = Path(path)
    prefix = _PREFIX[kind]
    images_file = _find(folder, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"])
    labels_file = _find(folder, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])

    images = _parse_images(images_file, _read_bytes(images_file))
    labels = _parse_labels(labels_file, _read_bytes(labels_file))
    if len(images) != len(labels):
        raise InputError(
            f"load_mnist: {images_file} holds {len(images)} images but {labels_file} holds "
            f"{len(labels)} labels; expected the same number"
        )

    X = images.reshape(len(images), ROWS * COLS).astype(np.float32)
    X /= np.float32(255.0)  # in place: no second (n, 784) float array
    y = labels.astype(np.int64)
    return X, y


# ----- helpers -----


def _find(folder: Path, stems: list[str]) -> Path:
    """The first existing file among the stems, each tried plain and with ``.gz``."""
    names = [name for stem in stems for name in (stem, stem + ".gz")]
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"load_mnist: none of {', '.join(names)} found in {folder}; "
        "download the four MNIST IDX files into that folder"
    )


def _read_bytes(file: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz``."""
    if file.suffix != ".gz":
        return file.read_bytes()
    try:
        return gzip.decompress(file.read_bytes())
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise InputError(f"load_mnist: {file} is not a valid gzip file ({err})") from err


def _header(file: Path, data: bytes, magic: int, n_ints: int) -> list[int]:
    """Check the magic number and return the ``n_ints`` big-endian int32s after it."""
    # The magic number is checked first: a wrong file should be reported as such, not as short.
    header_bytes = 4 * (1 + n_ints)
    if len(data) >= 4:
        # ">i4": IDX integers are big-endian, whatever the machine's byte order.
        found = int(np.frombuffer(data, dtype=">i4", count=1)[0])
        if found != magic:
            raise InputError(
                f"load_mnist: {file} has magic number {found}, expected {magic} "
                f"({'images' if magic == IMAGES_MAGIC else 'labels'}); is it the right file?"
            )
    if len(data) < header_bytes:
        raise InputError(
            f"load_mnist: {file} is truncated: {len(data)} bytes, shorter than the "
            f"{header_bytes}-byte IDX header"
        )
    return np.frombuffer(data, dtype=">i4", count=1 + n_ints)[1:].tolist()


def _check_size(file: Path, data: bytes, header_bytes: int, expected: int, what: str) -> None:
    actual = len(data) - header_bytes
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise InputError(
            f"load_mnist: {file} is {state}: the header announces {what} = {expected} bytes "
            f"of data, the file has {actual}"
        )


def _parse_images(file: Path, data: bytes) -> np.ndarray:
    n, rows, cols = _header(file, data, IMAGES_MAGIC, 3)
    if (rows, cols) != (ROWS, COLS):
        raise InputError(
            f"load_mnist: {file} holds {rows}x{cols} images, expected {ROWS}x{COLS} (MNIST)"
        )
    _check_size(file, data, 16, n * rows * cols, f"{n} images of {rows}x{cols}")
    # frombuffer reads the bytes in place: no per-pixel Python loop, no copy until astype.
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def _parse_labels(file: Path, data: bytes) -> np.ndarray:
    (n,) = _header(file, data, LABELS_MAGIC, 1)
    _check_size(file, data, 8, n, f"{n} labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if n and labels.max() >= N_CLASSES:
        raise InputError(
            f"load_mnist: {file} holds label {int(labels.max())}, "
            f"expected digits 0..{N_CLASSES - 1}"
        )
    return labels
