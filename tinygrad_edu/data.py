"""Feeding data to training: datasets, minibatches, and splits for validation and k-fold.

- ``Dataset`` is PyTorch's map-style interface: ``len(ds)`` samples, ``ds[i]`` the i-th one.
  ``TensorDataset(X, y)`` is the dataset of a few arrays that share their first dimension.
- ``DataLoader`` cuts a dataset into minibatches, reshuffled every epoch.
- ``train_val_test_split`` holds out a validation set (to choose hyperparameters and stop early)
  and a test set (touched once, for the final estimate).
- ``kfold`` gives the k (train, validation) index pairs of k-fold cross-validation.

Randomness comes from ``np.random.default_rng(seed)`` when a seed is given, and otherwise from the
library's generator, so ``tg.manual_seed`` makes every run repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tinygrad_edu.errors import InputError
from tinygrad_edu.random import get_rng
from tinygrad_edu.tensor import Tensor

# ----- datasets -----


class Dataset:
    """A map-style dataset: ``len(ds)`` samples, and ``ds[i]`` the i-th, for i in 0..len-1.

    Subclass it and define both methods; a sample is usually a tuple ``(x_i, label_i)`` of
    arrays, Tensors or numbers, which ``DataLoader`` stacks into batches. A sample may be computed
    on the fly (read from disk, augmented, generated), so the data need not fit in memory::

        class Noisy(tg.data.Dataset):
            def __len__(self):
                return 1000
            def __getitem__(self, i):
                x = np.random.default_rng(i).standard_normal(2)
                return x.astype(np.float32), int(x.sum() > 0)
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """The dataset of arrays sharing their first dimension: ``ds[i] = (a[i], b[i], ...)``.

    Each argument is a numpy array, a nested list or a Tensor, one sample per row, converted once
    (Tensors keep their dtype; integers become int64; floats keep float32/float64, lists give
    float32). ``ds.tensors`` holds them as Tensors. ``DataLoader`` takes a whole batch from each
    array with one index, so this is as fast as the ``DataLoader(X, y)`` form.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise TypeError("TensorDataset: expected at least one array or Tensor")
        arrays = [_field(t, f"argument {k}", "TensorDataset") for k, t in enumerate(tensors)]
        n = len(arrays[0])
        for k, array in enumerate(arrays[1:], start=1):
            if len(array) != n:
                raise InputError(
                    "TensorDataset: every array must have the same first dimension (the number "
                    f"of samples); argument 0 has {n} (shape {arrays[0].shape}), argument {k} has "
                    f"{len(array)} (shape {array.shape})"
                )
        self.arrays = arrays

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(_batch_tensor(a) for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(_batch_tensor(np.asarray(a[index])) for a in self.arrays)

    def _batch(self, idx: np.ndarray) -> tuple[Tensor, ...]:
        """The samples ``idx`` of every array at once (fancy indexing copies)."""
        return tuple(_batch_tensor(a[idx]) for a in self.arrays)


# ----- minibatches -----


class DataLoader:
    """Iterate over the minibatches of a dataset, one pass per epoch.

    Two forms: ``DataLoader(X, y, ...)`` yields ``(X_batch, y_batch)`` (contract v1), and
    ``DataLoader(dataset, ...)`` takes a map-style ``Dataset`` (anything with ``__len__`` and
    ``__getitem__``) and stacks its samples into batches (see ``collate``).

    Args:
        X: inputs, one sample per row (numpy array, nested list or Tensor); or a Dataset.
        y: targets, one per sample; integer class labels or float regression/probability targets.
            None (the default) when X is a Dataset.
        batch_size: samples per minibatch. ``batch_size=1`` is stochastic gradient descent (one
            sample per step); ``batch_size=len(X)`` is batch gradient descent (the whole dataset per
            step); anything in between is minibatch gradient descent.
        shuffle: draw a new random order of the samples at the start of every epoch, so that the
            minibatches differ from one epoch to the next.
        seed: seed for the shuffling; ``None`` draws it from the library's generator when the loader
            is built (call ``tg.manual_seed`` first to make the order repeatable).
        drop_last: skip the final, smaller minibatch when ``len(X)`` is not a multiple of
            ``batch_size``.

    Iterating yields Tensors: X_batch is float32 (float64 when X is float64); y_batch is int64 when
    y holds integers (class labels for ``cross_entropy``), else float32 (float64 when y is float64).
    A Dataset's batches are collated the same way, field by field. ``len(loader)`` is the number
    of minibatches per epoch.

    NOTE: ``shuffle`` defaults to True here (PyTorch: False) and ``batch_size`` to 32 (PyTorch: 1),
    for both forms; the order comes from ``seed`` (PyTorch: ``generator``).

    Example::

        loader = DataLoader(X_train, y_train, batch_size=64, seed=0)
        for epoch in range(10):
            for xb, yb in loader:       # a new order every epoch
                loss = F.cross_entropy(model(xb), yb)

        loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, seed=0)  # the same
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(X, Dataset) and y is not None:
            if not isinstance(y, int) or isinstance(y, bool):
                raise TypeError(
                    "DataLoader: a Dataset carries its own targets; expected DataLoader(dataset, "
                    f"batch_size, ...), got a second argument of type {type(y).__name__}"
                )
            y, batch_size = None, y  # PyTorch's positional DataLoader(dataset, batch_size)
        if y is None:  # DataLoader(dataset)
            self.X = self.y = None
            self.dataset = _check_dataset(X)
            n = len(self.dataset)
        else:
            # Convert once, here, so that each minibatch costs one fancy-index and nothing more.
            self.X = _features(X, "DataLoader")
            self.y = _targets(y, "DataLoader")
            _check_same_length(self.X, self.y, "DataLoader")
            self.dataset = None
            n = len(self.X)
        self._n = n
        _check_int(batch_size, "batch_size", "DataLoader", minimum=1)
        if drop_last and batch_size > n:
            raise InputError(
                f"DataLoader: drop_last=True with batch_size={batch_size} > {n} samples would give "
                "no minibatch at all; expected batch_size <= the number of samples"
            )
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        # One generator for the loader's life: every epoch draws its permutation from it, so epochs
        # differ from one another while the whole sequence is fixed by the seed. A loader that does
        # not shuffle needs none, and takes nothing from the library's generator.
        self._rng = _generator(seed, "DataLoader") if self.shuffle else None

    def __len__(self) -> int:
        """The number of minibatches in one epoch."""
        n = self._n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        """One epoch: every sample once (the last partial minibatch aside, with drop_last)."""
        n = self._n
        order = self._rng.permutation(n) if self._rng is not None else np.arange(n)
        dataset = self.dataset
        if dataset is None:  # the (X, y) form
            for i in range(len(self)):
                idx = order[i * self.batch_size : (i + 1) * self.batch_size]
                # Fancy indexing copies, so a minibatch never aliases the dataset.
                yield Tensor(self.X[idx]), _target_tensor(self.y[idx])
            return
        # A TensorDataset's batch is one fancy-index per array; any other dataset is asked for
        # its samples one by one, and they are stacked.
        fetch = dataset._batch if isinstance(dataset, TensorDataset) else None
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield fetch(idx) if fetch is not None else collate([dataset[int(k)] for k in idx])

    def __repr__(self) -> str:
        return (
            f"DataLoader(n_samples={self._n}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})"
        )


def collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch, PyTorch's ``default_collate`` on this library's dtypes.

    Samples that are tuples (or lists) give a tuple of batches, one per field; dicts give a dict;
    arrays, Tensors and numbers are stacked along a new first axis into a Tensor. Integers (class
    labels) give int64; float arrays and Tensors keep float32/float64; Python floats give float32
    (PyTorch: float64), as lists do in ``Tensor``.
    """
    first = samples[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in samples):
            raise InputError(
                f"DataLoader: the samples in a batch must have the same number of fields; the "
                f"first has {len(first)}"
            )
        return tuple(collate([s[k] for s in samples]) for k in range(len(first)))
    if isinstance(first, Mapping):
        return {key: collate([s[key] for s in samples]) for key in first}
    leaves = [_leaf(s) for s in samples]
    shape = leaves[0].shape
    for k, leaf in enumerate(leaves):
        if leaf.shape != shape:
            raise InputError(
                f"DataLoader: samples in one batch must have the same shape to be stacked; "
                f"sample 0 of the batch has shape {shape}, sample {k} has {leaf.shape}"
            )
    batch = np.stack(leaves)
    if batch.dtype.kind == "f" and batch.dtype != np.float64:
        batch = batch.astype(np.float32, copy=False)
    return _batch_tensor(batch)


# ----- splits -----


def train_val_test_split(
    X: Any, y: Any, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Shuffle the samples and cut them into a training, a validation and a test set.

    The training set fits the weights; the validation set picks hyperparameters and the epoch to
    stop at; the test set is used once, at the end, for an unbiased estimate of the error.

    Args:
        X, y: samples and targets (numpy arrays, lists or Tensors) of the same length.
        fractions: (train, validation, test) shares, each >= 0, summing to 1. A share of 0 gives
            an empty set.
        seed: seed for the shuffle; ``None`` uses the library's generator.

    Returns:
        ``(X_train, y_train), (X_val, y_val), (X_test, y_test)`` as numpy arrays with the input
        dtypes. Sizes are the shares of ``len(X)`` rounded so that they add up to ``len(X)``
        (largest-remainder rounding: each size is within 1 of its exact share).
    """
    name = "train_val_test_split"
    X, y = _as_numpy(X, "X", name), _as_numpy(y, "y", name)
    _check_same_length(X, y, name)
    shares = _check_fractions(fractions, name)
    n = len(X)

    # Normalised by the sum, which may differ from 1 by rounding, so the exact sizes add up to n.
    sizes = _round_preserving_sum([share / sum(shares) * n for share in shares], n)
    for size, share, label in zip(sizes, shares, ("training", "validation", "test"), strict=True):
        if share > 0 and size == 0:
            raise InputError(
                f"{name}: {n} samples with fractions {tuple(shares)} leave the {label} set empty; "
                "expected more samples, or a fraction of 0 for that set"
            )

    order = _generator(seed, name).permutation(n)
    cuts = np.cumsum(sizes)[:-1]
    return tuple((X[idx], y[idx]) for idx in np.split(order, cuts))


def kfold(
    n_samples: int, k: int, seed: int | None = None, shuffle: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The k (train_idx, val_idx) pairs of k-fold cross-validation.

    The samples are shuffled (unless ``shuffle=False``) and cut into k folds whose sizes differ by
    at most 1; the i-th pair validates on fold i and trains on the other k - 1. Every sample is in
    exactly one validation fold, so averaging the k validation scores uses all the data.

    Args:
        n_samples: number of samples (``len(X)``).
        k: number of folds, 2 <= k <= n_samples.
        seed: seed for the shuffle; ``None`` uses the library's generator.
        shuffle: ``False`` gives contiguous folds in the original order.

    Returns:
        An iterator of ``(train_idx, val_idx)``, sorted int64 index arrays: ``X[train_idx]``.
        Arguments are checked, and the shuffle drawn, when ``kfold`` is called, not when iterated.
    """
    name = "kfold"
    _check_int(n_samples, "n_samples", name, minimum=1)
    _check_int(k, "k", name, minimum=2)
    if k > n_samples:
        raise InputError(f"{name}: k={k} folds for {n_samples} samples; expected k <= n_samples")
    n, k = int(n_samples), int(k)
    order = _generator(seed, name).permutation(n) if shuffle else np.arange(n, dtype=np.int64)
    # The first n % k folds get one extra sample: sizes differ by at most 1.
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return _folds(order.astype(np.int64), bounds)


def _folds(order: np.ndarray, bounds: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        val_idx = np.sort(order[start:stop])
        train_idx = np.sort(np.concatenate([order[:start], order[stop:]]))
        yield train_idx, val_idx


# ----- argument checks and conversions -----


def _as_numpy(value: Any, what: str, name: str) -> np.ndarray:
    """A numpy array from an array, a list or a Tensor (anything with ``.numpy()``)."""
    if value is None:
        raise TypeError(f"{name}: {what} is None; expected an array, a list or a Tensor")
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise InputError(f"{name}: {what} is not a rectangular array ({err})") from err
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {what} has dtype {array.dtype}; expected numbers")
    if array.ndim == 0:
        raise InputError(f"{name}: {what} is a scalar; expected one entry per sample")
    if len(array) == 0:
        raise InputError(f"{name}: {what} is empty; expected at least one sample")
    return array


def _features(X: Any, name: str) -> np.ndarray:
    """X as float32, or float64 when it already is float64 (Tensor's dtype rule)."""
    array = _as_numpy(X, "X", name)
    dtype = (
        np.float64 if array.dtype == np.float64 and not isinstance(X, (list, tuple)) else np.float32
    )
    return np.ascontiguousarray(array, dtype=dtype)


def _targets(y: Any, name: str) -> np.ndarray:
    """y as int64 when it holds integers (class labels), else as X is converted."""
    array = _as_numpy(y, "y", name)
    if array.dtype.kind in "iu":
        return np.ascontiguousarray(array, dtype=np.int64)
    return _features(y, name)


def _field(value: Any, what: str, name: str) -> np.ndarray:
    """One array of a TensorDataset: ints as int64, floats as float32 (float64 kept)."""
    dtype = value.dtype if isinstance(value, Tensor) else None
    array = _as_numpy(value, what, name)
    if array.dtype.kind in "biu":
        return np.ascontiguousarray(array, dtype=np.int64)
    if dtype is not None:  # a Tensor keeps its dtype
        return np.ascontiguousarray(array, dtype=dtype)
    return _features(value, name) if isinstance(value, (list, tuple)) else _features(array, name)


def _leaf(value: Any) -> np.ndarray:
    """One field of one sample as a numpy array (Python ints int64, Python floats float32)."""
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 is also a float
        array = np.asarray(value)
    elif isinstance(value, (bool, int)):
        array = np.asarray(value, dtype=np.int64)
    elif isinstance(value, float):
        array = np.asarray(value, dtype=np.float32)
    else:
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise TypeError(
            f"DataLoader: cannot batch a sample field of type {type(value).__name__}; expected "
            "numpy arrays, Tensors or numbers (or tuples, lists or dicts of them)"
        )
    return array.astype(np.int64) if array.dtype.kind in "biu" else array


def _batch_tensor(batch: np.ndarray) -> Tensor:
    """A Tensor holding a batch: int64 stays int64 (labels), floats keep their dtype."""
    if batch.dtype == np.int64:
        return Tensor(batch, dtype="int64")
    return Tensor(batch, dtype="float64" if batch.dtype == np.float64 else "float32")


def _check_dataset(dataset: Any) -> Any:
    if isinstance(dataset, (np.ndarray, Tensor, list, tuple)) or dataset is None:
        raise TypeError(
            f"DataLoader: got a {type(dataset).__name__} and y is None; pass DataLoader(X, y) or "
            "a Dataset, such as TensorDataset(X, y)"
        )
    if not (callable(getattr(dataset, "__len__", None)) and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"DataLoader: a {type(dataset).__name__} is not a map-style dataset; expected "
            "__len__ and __getitem__ (subclass tg.data.Dataset)"
        )
    n = len(dataset)
    if n == 0:
        raise InputError("DataLoader: the dataset is empty; expected at least one sample")
    return dataset


def _target_tensor(batch: np.ndarray) -> Tensor:
    # dtype=None would turn int64 labels into float32 (Tensor follows torch.Tensor); ask for int64.
    return Tensor(batch, dtype="int64") if batch.dtype == np.int64 else Tensor(batch)


def _check_same_length(X: np.ndarray, y: np.ndarray, name: str) -> None:
    if len(X) != len(y):
        raise InputError(
            f"{name}: X has {len(X)} samples (shape {X.shape}) but y has {len(y)} "
            f"(shape {y.shape}); expected the same number"
        )


def _check_int(value: Any, what: str, name: str, minimum: int) -> None:
    # bool is a subclass of int, but batch_size=True is a bug, not a batch of 1.
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: {what} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise InputError(f"{name}: {what} must be >= {minimum}, got {value}")


def _check_fractions(fractions: Any, name: str) -> list[float]:
    try:
        shares = [float(f) for f in fractions]
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name}: fractions must be 3 numbers (train, validation, test), got {fractions!r}"
        ) from err
    if len(shares) != 3:
        raise InputError(
            f"{name}: fractions must be 3 numbers (train, validation, test), got {len(shares)}: "
            f"{tuple(shares)}"
        )
    if not all(math.isfinite(f) and f >= 0 for f in shares):
        raise InputError(f"{name}: fractions must be finite and >= 0, got {tuple(shares)}")
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise InputError(f"{name}: fractions {tuple(shares)} sum to {sum(shares)}; expected 1")
    return shares


def _round_preserving_sum(exact: list[float], total: int) -> list[int]:
    """Round down, then give the samples left over to the largest remainders (earliest on ties)."""
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: -(exact[i] - sizes[i]))  # stable sort
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _generator(seed: Any, name: str) -> np.random.Generator:
    """``default_rng(seed)``, or without a seed a generator drawn from the library's one."""
    if seed is None:
        # A child generator seeded from the library's: tg.manual_seed fixes it, and later draws
        # elsewhere (dropout, initialisation) do not change this object's sequence.
        return np.random.default_rng(get_rng().integers(2**63))
    _check_int(seed, "seed", name, minimum=0)
    return np.random.default_rng(int(seed))
