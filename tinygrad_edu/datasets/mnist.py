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
import math
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


# The most data (in bytes, after gunzipping) one IDX file may declare; the MNIST training images are
# 47 MB, so only a corrupt or hostile header reaches this.
DEFAULT_MAX_BYTES = 2**31


def load_mnist(
    path: str | os.PathLike, kind: str = "train", max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Load the MNIST training set (60000 images) or test set (10000 images) from a folder.

    Args:
        path: the folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzipped
            (``.gz``).
        kind: ``"train"`` or ``"test"``.
        max_bytes: the most data one file's header may declare (default 2**31, 2 GiB). The
            header is checked against it, and against the file's real size, before any data is
            read, and a ``.gz`` file is decompressed no further than its header declares: a file
            whose header claims absurd dimensions, or a small gzip that expands to gigabytes,
            never reaches memory.

    Returns:
        ``(X, y)``: X float32 of shape (n, 784), pixels divided by 255 so they lie in [0, 1], each
        28x28 image flattened row by row; y int64 of shape (n,) with the digit 0..9.

    Raises:
        FileNotFoundError: a file is missing (the message lists every name looked for).
        ValueError: a file is not an IDX file of the right kind (bad magic number, wrong image
            size), declares more than ``max_bytes``, is truncated or padded, is a corrupt gzip, or
            images and labels disagree in number; ``max_bytes`` is not a positive int.

    MNIST has no validation set of its own: hold out part of the training set with
    ``tg.data.train_val_test_split`` and keep the test set for the final evaluation.
    """
    if kind not in _PREFIX:
        raise InputError(f"load_mnist: kind must be 'train' or 'test', got {kind!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InputError(f"load_mnist: max_bytes must be a positive int, got {max_bytes!r}")
    folder = Path(path)
    prefix = _PREFIX[kind]
    images_file = _find(folder, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"])
    labels_file = _find(folder, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])

    images = _parse_images(images_file, max_bytes)
    labels = _parse_labels(labels_file, max_bytes)
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


def _read_idx(file: Path, magic: int, n_dims: int, max_bytes: int) -> tuple[list[int], bytes]:
    """The dimensions an IDX file's header declares, and its data (one uint8 per element).

    The declared size is checked against ``max_bytes`` and, for a plain file, against the file's
    size before any data is read; at most one byte more than declared is ever read, so neither a
    lying header nor a gzip bomb can exhaust memory.
    """
    header_bytes = 4 * (1 + n_dims)
    gz = file.suffix == ".gz"
    try:
        with gzip.open(file, "rb") if gz else open(file, "rb") as f:
            header = f.read(header_bytes)
            dims = _header(file, header, magic, n_dims)
            declared = math.prod(dims)
            what = f"{' x '.join(map(str, dims))} = {declared} bytes of data"
            if any(d < 0 for d in dims):
                raise InputError(f"load_mnist: {file}'s header declares negative dimensions {dims}")
            if declared > max_bytes:
                raise InputError(
                    f"load_mnist: {file}'s header declares {what}, more than max_bytes="
                    f"{max_bytes}; the file is corrupt, or pass a larger max_bytes"
                )
            if not gz:  # the file's size is known without reading it
                _check_size(file, file.stat().st_size - header_bytes, declared, what)
            # One byte more than declared tells a file longer than its header apart.
            data = f.read(declared + 1)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        if not gz:
            raise
        raise InputError(f"load_mnist: {file} is not a valid gzip file ({err})") from err
    _check_size(file, len(data), declared, what)
    return dims, data


def _header(file: Path, header: bytes, magic: int, n_dims: int) -> list[int]:
    """Check the magic number and return the ``n_dims`` big-endian int32s after it."""
    # The magic number is checked first: a wrong file should be reported as such, not as short.
    if len(header) >= 4:
        # ">i4": IDX integers are big-endian, whatever the machine's byte order.
        found = int(np.frombuffer(header, dtype=">i4", count=1)[0])
        if found != magic:
            raise InputError(
                f"load_mnist: {file} has magic number {found}, expected {magic} "
                f"({'images' if magic == IMAGES_MAGIC else 'labels'}); is it the right file?"
            )
    if len(header) < 4 * (1 + n_dims):
        raise InputError(
            f"load_mnist: {file} is truncated: {len(header)} bytes, shorter than the "
            f"{4 * (1 + n_dims)}-byte IDX header"
        )
    return np.frombuffer(header, dtype=">i4")[1:].tolist()


def _check_size(file: Path, actual: int, declared: int, what: str) -> None:
    if actual != declared:
        state = "truncated" if actual < declared else "longer than its header says"
        has = actual if actual < declared else "more"
        raise InputError(
            f"load_mnist: {file} is {state}: the header announces {what}, the file has {has}"
        )


def _parse_images(file: Path, max_bytes: int) -> np.ndarray:
    (n, rows, cols), data = _read_idx(file, IMAGES_MAGIC, 3, max_bytes)
    if (rows, cols) != (ROWS, COLS):
        raise InputError(
            f"load_mnist: {file} holds {rows}x{cols} images, expected {ROWS}x{COLS} (MNIST)"
        )
    # frombuffer reads the bytes in place: no per-pixel Python loop, no copy until astype.
    return np.frombuffer(data, dtype=np.uint8).reshape(n, rows, cols)


def _parse_labels(file: Path, max_bytes: int) -> np.ndarray:
    (n,), data = _read_idx(file, LABELS_MAGIC, 1, max_bytes)
    labels = np.frombuffer(data, dtype=np.uint8)
    if n and labels.max() >= N_CLASSES:
        raise InputError(
            f"load_mnist: {file} holds label {int(labels.max())}, "
            f"expected digits 0..{N_CLASSES - 1}"
        )
    return labels
