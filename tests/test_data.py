"""DataLoader, train_val_test_split and kfold: minibatches, epochs, splits and folds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu.data import DataLoader, kfold, train_val_test_split
from tinygrad_edu.random import manual_seed
from tinygrad_edu.tensor import Tensor


def _dataset(n: int, d: int = 3):
    """Sample i has label i and features 10*i + (0, 1, ..., d-1): a row tells which sample it is."""
    y = np.arange(n, dtype=np.int64)
    X = (10 * y[:, None] + np.arange(d)).astype(np.float32)
    return X, y


def _epoch(loader):
    """The labels of one epoch, batch by batch, checking that each X row matches its label."""
    batches = []
    for xb, yb in loader:
        assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
        x, ids = xb.numpy(), yb.numpy()
        np.testing.assert_array_equal(x[:, 0], 10 * ids)  # rows travel with their labels
        batches.append(ids)
    return batches


# ----- DataLoader: batches and epochs -----


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (10, 1), (10, 10), (7, 32)])
def test_one_epoch_visits_every_sample_once(n, batch_size):
    X, y = _dataset(n)
    loader = DataLoader(X, y, batch_size=batch_size, seed=0)
    batches = _epoch(loader)
    assert len(batches) == len(loader) == math.ceil(n / batch_size)
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert len(batches[-1]) == n - batch_size * (len(batches) - 1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))


def test_drop_last_skips_the_short_batch():
    X, y = _dataset(10)
    loader = DataLoader(X, y, batch_size=3, seed=0, drop_last=True)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 3
    assert all(len(b) == 3 for b in batches)
    seen = np.concatenate(batches)
    assert len(set(seen.tolist())) == 9 and set(seen.tolist()) <= set(range(10))


def test_batch_gd_and_stochastic_gd_extremes():
    X, y = _dataset(6)
    (whole,) = _epoch(DataLoader(X, y, batch_size=6, shuffle=False))
    assert whole.tolist() == list(range(6))
    singles = _epoch(DataLoader(X, y, batch_size=1, seed=1))
    assert len(singles) == 6 and all(b.shape == (1,) for b in singles)


def test_no_shuffle_keeps_the_order():
    X, y = _dataset(10)
    loader = DataLoader(X, y, batch_size=4, shuffle=False)
    for _ in range(2):
        batches = _epoch(loader)
        assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_each_epoch_is_a_new_shuffle():
    X, y = _dataset(50)
    loader = DataLoader(X, y, batch_size=8, seed=0)
    orders = [np.concatenate(_epoch(loader)).tolist() for _ in range(3)]
    for order in orders:
        assert sorted(order) == list(range(50))
    assert orders[0] != orders[1] != orders[2] != orders[0]
    assert orders[0] != list(range(50))


def test_seed_reproduces_the_sequence_of_epochs():
    X, y = _dataset(30)
    a, b = DataLoader(X, y, batch_size=7, seed=42), DataLoader(X, y, batch_size=7, seed=42)
    other = DataLoader(X, y, batch_size=7, seed=43)
    for _ in range(3):
        order_a = np.concatenate(_epoch(a)).tolist()
        assert order_a == np.concatenate(_epoch(b)).tolist()
    assert order_a != np.concatenate(_epoch(other)).tolist()


def test_manual_seed_reproduces_loaders_built_without_a_seed():
    X, y = _dataset(30)
    orders = []
    for _ in range(2):
        manual_seed(123)
        loader = DataLoader(X, y, batch_size=30)
        orders.append([np.concatenate(_epoch(loader)).tolist() for _ in range(2)])
    assert orders[0] == orders[1]
    assert orders[0][0] != orders[0][1]


def test_loader_order_ignores_later_draws_from_the_library_generator():
    from tinygrad_edu.random import get_rng

    X, y = _dataset(30)
    orders = []
    for extra_draws in (0, 5):
        manual_seed(7)
        loader = DataLoader(X, y, batch_size=30)
        get_rng().random(extra_draws)  # e.g. dropout masks drawn between epochs
        orders.append(np.concatenate(_epoch(loader)).tolist())
    assert orders[0] == orders[1]


def test_a_loader_that_does_not_shuffle_leaves_the_library_generator_alone():
    from tinygrad_edu.random import get_rng

    X, y = _dataset(10)
    manual_seed(11)
    expected = get_rng().random(3)
    manual_seed(11)
    for _ in DataLoader(X, y, batch_size=4, shuffle=False):
        pass
    np.testing.assert_array_equal(get_rng().random(3), expected)


# ----- DataLoader: dtypes and input kinds -----


@pytest.mark.parametrize(
    "X, y, x_dtype, y_dtype",
    [
        (np.zeros((4, 2), np.float32), np.array([0, 1, 2, 3]), np.float32, np.int64),
        (np.zeros((4, 2), np.float64), np.array([0, 1, 2, 3], np.int32), np.float64, np.int64),
        (np.zeros((4, 2), np.uint8), np.array([0, 1, 2, 3], np.uint8), np.float32, np.int64),
        (np.zeros((4, 2), np.int64), np.array([0.5, 1, 2, 3]), np.float32, np.float64),
        (np.zeros((4, 2), np.float16), np.zeros(4, np.float32), np.float32, np.float32),
        (np.zeros((4, 2), np.float32), np.array([True, False, True, True]), np.float32, np.float32),
        ([[0.5, 1.0]] * 4, [0, 1, 0, 1], np.float32, np.int64),
        ([[0.5, 1.0]] * 4, [0.0, 1.0, 0.0, 1.0], np.float32, np.float32),
    ],
    ids=["f32-int", "f64-int32", "uint8", "int-X-f64-y", "f16", "bool-y", "lists", "float-list-y"],
)
def test_batch_dtypes(X, y, x_dtype, y_dtype):
    xb, yb = next(iter(DataLoader(X, y, batch_size=4, shuffle=False)))
    assert xb.dtype == x_dtype
    assert yb.dtype == y_dtype
    assert xb.shape == (4, 2) and yb.shape == (4,)


def test_tensor_inputs_are_accepted():
    X, y = _dataset(5)
    loader = DataLoader(Tensor(X), Tensor(y, dtype="int64"), batch_size=2, shuffle=False)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.numpy(), X[:2])
    assert yb.dtype == np.int64 and yb.numpy().tolist() == [0, 1]


def test_multidimensional_samples_and_targets():
    X = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    Y = np.arange(5 * 4, dtype=np.float64).reshape(5, 4)
    for xb, yb in DataLoader(X, Y, batch_size=2, seed=0):
        rows = (xb.numpy()[:, 0, 0] // 6).astype(int)
        np.testing.assert_array_equal(xb.numpy(), X[rows])
        np.testing.assert_array_equal(yb.numpy(), Y[rows])


def test_batches_do_not_alias_the_dataset():
    X, y = _dataset(4)
    loader = DataLoader(X, y, batch_size=4, shuffle=False)
    xb, _ = next(iter(loader))
    xb.data[...] = -1.0
    np.testing.assert_array_equal(next(iter(loader))[0].numpy(), X)


def test_len_and_repr():
    X, y = _dataset(100)
    assert len(DataLoader(X, y, batch_size=32)) == 4
    assert len(DataLoader(X, y, batch_size=32, drop_last=True)) == 3
    assert "batch_size=32" in repr(DataLoader(X, y, batch_size=32))


# ----- DataLoader: errors -----


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=-3), ValueError, "-3"),
        (dict(batch_size=2.5), TypeError, "2.5"),
        (dict(batch_size=True), TypeError, "batch_size"),
        (dict(batch_size="8"), TypeError, "batch_size"),
        (dict(batch_size=11, drop_last=True), ValueError, "11"),
        (dict(seed=1.5), TypeError, "seed"),
    ],
)
def test_dataloader_bad_arguments(kwargs, error, fragment):
    X, y = _dataset(10)
    with pytest.raises(error, match="DataLoader") as info:
        DataLoader(X, y, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "X, y, error, fragment",
    [
        (np.zeros((10, 2)), np.zeros(9), ValueError, "10"),
        (np.zeros((0, 2)), np.zeros(0), ValueError, "empty"),
        (np.array(["a", "b"]), np.zeros(2), TypeError, "dtype"),
        (np.zeros((2, 2)), None, TypeError, "None"),
        (np.float32(3.0), np.zeros(1), ValueError, "scalar"),
        ([[1.0, 2.0], [3.0]], [0, 1], ValueError, "rectangular"),
    ],
    ids=["lengths", "empty", "strings", "none", "scalar", "ragged"],
)
def test_dataloader_bad_data(X, y, error, fragment):
    with pytest.raises(error, match="DataLoader") as info:
        DataLoader(X, y)
    assert fragment in str(info.value)


# ----- train_val_test_split -----


def test_split_sizes_and_partition():
    X, y = _dataset(100)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = train_val_test_split(X, y, seed=0)
    assert (len(ytr), len(yva), len(yte)) == (80, 10, 10)
    assert sorted(np.concatenate([ytr, yva, yte]).tolist()) == list(range(100))
    for Xs, ys in ((Xtr, ytr), (Xva, yva), (Xte, yte)):
        np.testing.assert_array_equal(Xs, X[ys])  # rows stay with their labels
        assert Xs.dtype == np.float32 and ys.dtype == np.int64
    assert ytr.tolist() != list(range(80))  # shuffled


@pytest.mark.parametrize(
    "n, fractions, sizes",
    [
        (10, (0.8, 0.1, 0.1), (8, 1, 1)),
        (7, (0.5, 0.25, 0.25), (3, 2, 2)),  # exact 3.5, 1.75, 1.75
        (11, (0.6, 0.2, 0.2), (7, 2, 2)),  # exact 6.6, 2.2, 2.2
        (9, (1 / 3, 1 / 3, 1 / 3), (3, 3, 3)),
        (5, (0.6, 0.4, 0.0), (3, 2, 0)),
        (3, (1.0, 0.0, 0.0), (3, 0, 0)),
    ],
)
def test_split_sizes_round_to_n(n, fractions, sizes):
    X, y = _dataset(n)
    parts = train_val_test_split(X, y, fractions=fractions, seed=0)
    assert tuple(len(part[1]) for part in parts) == sizes
    assert all(part[0].shape[1:] == (3,) for part in parts)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(100, 1000),  # >= 2.4 samples for the smallest share: no set is empty
    a=st.floats(0.05, 1.0),
    b=st.floats(0.05, 1.0),
    c=st.floats(0.05, 1.0),
)
def test_split_sizes_are_within_one_of_the_exact_share(n, a, b, c):
    fractions = (a / (a + b + c), b / (a + b + c), c / (a + b + c))
    X, y = np.zeros((n, 1)), np.arange(n)
    parts = train_val_test_split(X, y, fractions=fractions, seed=1)
    sizes = [len(part[1]) for part in parts]
    assert sum(sizes) == n
    assert all(abs(size - f * n) < 1 for size, f in zip(sizes, fractions, strict=True))
    assert sorted(np.concatenate([part[1] for part in parts]).tolist()) == list(range(n))


def test_split_is_deterministic_with_a_seed_and_varies_without():
    X, y = _dataset(50)
    first = train_val_test_split(X, y, seed=3)
    again = train_val_test_split(X, y, seed=3)
    other = train_val_test_split(X, y, seed=4)
    for (_, a), (_, b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0][1].tolist() != other[0][1].tolist()

    manual_seed(5)
    unseeded = train_val_test_split(X, y)
    manual_seed(5)
    assert train_val_test_split(X, y)[0][1].tolist() == unseeded[0][1].tolist()


def test_split_accepts_lists_and_tensors_and_keeps_dtypes():
    X = [[float(i), 0.0] for i in range(10)]
    (Xtr, ytr), _, _ = train_val_test_split(X, list(range(10)), seed=0)
    assert isinstance(Xtr, np.ndarray) and isinstance(ytr, np.ndarray)
    np.testing.assert_array_equal(Xtr[:, 0], ytr)

    X64, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    (Xtr, ytr), _, _ = train_val_test_split(Tensor(X64), Tensor(y, dtype="int64"), seed=0)
    assert Xtr.dtype == np.float64 and ytr.dtype == np.int64
    np.testing.assert_array_equal(Xtr, X64[ytr])


@pytest.mark.parametrize(
    "n, fractions, error, fragment",
    [
        (10, (0.8, 0.1, 0.2), ValueError, "sum"),
        (10, (0.9, 0.2, -0.1), ValueError, "-0.1"),
        (10, (0.8, 0.2), ValueError, "3 numbers"),
        (10, (0.5, 0.2, 0.2, 0.1), ValueError, "3 numbers"),
        (10, ("a", "b", "c"), TypeError, "fractions"),
        (10, 0.8, TypeError, "fractions"),
        (10, (float("nan"), 0.5, 0.5), ValueError, "finite"),
        (5, (0.8, 0.1, 0.1), ValueError, "test set empty"),
    ],
)
def test_split_bad_fractions(n, fractions, error, fragment):
    X, y = _dataset(n)
    with pytest.raises(error, match="train_val_test_split") as info:
        train_val_test_split(X, y, fractions=fractions)
    assert fragment in str(info.value)


def test_split_bad_data():
    with pytest.raises(ValueError, match="train_val_test_split") as info:
        train_val_test_split(np.zeros((10, 2)), np.zeros(8))
    assert "10" in str(info.value) and "8" in str(info.value)
    with pytest.raises(ValueError, match="train_val_test_split.*empty"):
        train_val_test_split(np.zeros((0, 2)), np.zeros(0))


# ----- kfold -----


def _check_partition(folds, n, k):
    assert len(folds) == k
    all_val = np.concatenate([val for _, val in folds])
    assert sorted(all_val.tolist()) == list(range(n))  # every sample validated exactly once
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert train.dtype == np.int64 and val.dtype == np.int64
        assert not set(train.tolist()) & set(val.tolist())
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))


@pytest.mark.parametrize("n, k", [(10, 2), (10, 3), (10, 10), (7, 5), (100, 7)])
def test_kfold_partitions(n, k):
    _check_partition(list(kfold(n, k, seed=0)), n, k)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), data=st.data())
def test_kfold_partitions_property(n, data):
    k = data.draw(st.integers(2, n))
    _check_partition(list(kfold(n, k, seed=0)), n, k)


def test_kfold_is_shuffled_and_deterministic_with_a_seed():
    n, k = 40, 4
    first = [val.tolist() for _, val in kfold(n, k, seed=0)]
    assert first == [val.tolist() for _, val in kfold(n, k, seed=0)]
    assert first != [val.tolist() for _, val in kfold(n, k, seed=1)]
    assert first[0] != list(range(10))
    manual_seed(9)
    unseeded = [val.tolist() for _, val in kfold(n, k)]
    manual_seed(9)
    assert unseeded == [val.tolist() for _, val in kfold(n, k)]


def test_kfold_without_shuffle_matches_scikit_learn():
    KFold = pytest.importorskip("sklearn.model_selection").KFold
    for n, k in [(10, 3), (11, 4), (5, 5)]:
        ours = list(kfold(n, k, shuffle=False))
        theirs = list(KFold(n_splits=k).split(np.zeros(n)))
        for (tr, va), (tr_ref, va_ref) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(tr, tr_ref)
            np.testing.assert_array_equal(va, va_ref)


@pytest.mark.parametrize(
    "n, k, error, fragment",
    [
        (10, 1, ValueError, "k must be >= 2"),
        (10, 0, ValueError, "k"),
        (5, 6, ValueError, "k=6"),
        (0, 2, ValueError, "n_samples"),
        (10, 2.0, TypeError, "k"),
        (10.0, 2, TypeError, "n_samples"),
    ],
)
def test_kfold_bad_arguments_raise_when_called(n, k, error, fragment):
    with pytest.raises(error, match="kfold") as info:
        kfold(n, k)  # not iterated: the check must not wait for the first fold
    assert fragment in str(info.value)
