"""The UCI handwritten digits (8x8), shipped inside the package so that examples run offline."""

from __future__ import annotations

from importlib import resources

import numpy as np

# The file holds the pixel counts 0..16 as uint8: see tools/make_digits_npz.py, docs/datasets.md.
_FILE = "digits.npz"
_MAX_PIXEL = 16.0


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the 1797 images of the UCI Optical Recognition of Handwritten Digits dataset.

    Each image is 8x8 pixels, flattened row by row to 64 features; a pixel counts the "on" pixels
    of a 4x4 block of the original 32x32 bitmap (0..16) and is divided by 16 here, so features lie
    in [0, 1].

    Returns:
        ``(X, y)``: X float32 of shape (1797, 64), y int64 of shape (1797,) with the digit 0..9.
        Both are fresh arrays: changing them does not change later calls.

    The data is the copy scikit-learn ships (the UCI test part, ``optdigits.tes``); licence
    CC BY 4.0, Alpaydin & Kaynak (1998). Split it with ``tg.data.train_val_test_split`` or
    ``tg.data.kfold``.
    """
    with resources.files(__package__).joinpath(_FILE).open("rb") as f:
        # allow_pickle=False: a data file must never be able to run code when it is read.
        with np.load(f, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    X = images.astype(np.float32) / np.float32(_MAX_PIXEL)
    y = labels.astype(np.int64)
    return X, y
