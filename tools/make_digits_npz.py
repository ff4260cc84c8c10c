"""Build ``tinygrad_edu/datasets/digits.npz`` from the UCI digits that scikit-learn ships.

The source is ``sklearn/datasets/data/digits.csv.gz``: 1797 rows of 65 integers, the 64 pixels of
an 8x8 image (each 0..16, the number of "on" pixels in a 4x4 block of the original 32x32 bitmap)
followed by the digit 0..9. It is the test part (``optdigits.tes``) of the UCI Optical Recognition
of Handwritten Digits dataset, Alpaydin & Kaynak (1998), licensed CC BY 4.0; see
``docs/datasets.md``.

The archive keeps the raw integers as uint8 (``images`` (1797, 64), ``labels`` (1797,)) so it stays
small; ``tinygrad_edu.datasets.load_digits`` scales them to [0, 1].

Usage::

    python tools/make_digits_npz.py                      # finds scikit-learn's file
    python tools/make_digits_npz.py --source digits.csv.gz --out tinygrad_edu/datasets/digits.npz

Only scikit-learn's data file is read; scikit-learn itself is never imported.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import zipfile
from pathlib import Path

import numpy as np

N_SAMPLES, N_PIXELS, MAX_PIXEL, N_CLASSES = 1797, 64, 16, 10
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tinygrad_edu" / "datasets" / "digits.npz"


def find_sklearn_csv() -> Path:
    """The path of ``digits.csv.gz`` in the installed scikit-learn (found without importing it)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "make_digits_npz: scikit-learn is not installed; pass --source path/to/digits.csv.gz"
        )
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"make_digits_npz: {path} does not exist")
    return path


def read_csv(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check the csv: returns (images uint8 (1797, 64), labels uint8 (1797,))."""
    table = np.loadtxt(source, delimiter=",", dtype=np.int64)  # loadtxt reads .gz transparently
    if table.shape != (N_SAMPLES, N_PIXELS + 1):
        raise ValueError(
            f"make_digits_npz: {source} has shape {table.shape}, "
            f"expected ({N_SAMPLES}, {N_PIXELS + 1})"
        )
    images, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if images.min() < 0 or images.max() > MAX_PIXEL:
        raise ValueError(f"make_digits_npz: pixels outside 0..{MAX_PIXEL} in {source}")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ValueError(f"make_digits_npz: labels outside 0..{N_CLASSES - 1} in {source}")
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_npz(out: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a compressed .npz whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps each member with the current time, so rebuilding would change the
    file in git for no reason; writing the zip by hand with a fixed timestamp makes the build
    reproducible. The result is an ordinary .npz that ``np.load`` reads.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in (("images", images), ("labels", labels)):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1998, 7, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="digits.csv.gz to read")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .npz to write")
    args = parser.parse_args(argv)

    source = args.source or find_sklearn_csv()
    images, labels = read_csv(source)
    write_npz(args.out, images, labels)

    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    counts = np.bincount(labels, minlength=N_CLASSES).tolist()
    print(f"read  {source} (sha256 {hashlib.sha256(source.read_bytes()).hexdigest()})")
    print(f"wrote {args.out}: {args.out.stat().st_size} bytes, sha256 {digest}")
    print(f"class counts 0..9: {counts}")


if __name__ == "__main__":
    main()
