"""data, contract v2: Dataset, TensorDataset, and DataLoader over a dataset (collation, dtypes,
the same batches as the (X, y) form, training on samples computed on the fly)."""

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import nn, optim
from tinygrad_edu.data import DataLoader, Dataset, TensorDataset, collate
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor


class Blobs(Dataset):
    """Two Gaussian blobs, each sample made when asked for: (x_i float32 (2,), label_i int)."""

    def __init__(self, n=128):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng(i)
        label = i % 2
        x = rng.standard_normal(2) * 0.5 + (2.0 if label else -2.0)
        return x.astype(np.float32), label


# ----- TensorDataset -----


def test_tensor_dataset_items_and_dtypes():
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    ds = TensorDataset(X, y, Tensor(np.ones((6, 3), np.float32)))
    assert isinstance(ds, Dataset) and len(ds) == 6
    x3, y3, o3 = ds[3]
    assert isinstance(x3, Tensor) and x3.dtype == np.float64 and x3.shape == (2,)
    np.testing.assert_array_equal(x3.numpy(), X[3])
    assert y3.dtype == np.int64 and y3.item() == 0 and o3.dtype == np.float32
    assert [t.shape for t in ds.tensors] == [(6, 2), (6,), (6, 3)]
    assert TensorDataset([[1.0, 2.0], [3.0, 4.0]])[0][0].dtype == np.float32  # lists: float32


def test_tensor_dataset_checks_the_first_dimension():
    with pytest.raises(
        ValueError, match=r"same first dimension.*argument 0 has 5.*argument 1 has 4"
    ):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="scalar"):
        TensorDataset(np.float32(1.0))
    with pytest.raises(TypeError, match="dtype"):
        TensorDataset(np.array(["a", "b"]))


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize(
    ("x_dtype", "y"),
    [(np.float32, np.arange(23) % 3), (np.float64, np.arange(23) % 3), (np.float32, np.ones(23))],
)
def test_tensor_dataset_gives_the_same_batches_as_the_x_y_form(shuffle, drop_last, x_dtype, y):
    X = np.random.default_rng(0).standard_normal((23, 4)).astype(x_dtype)
    ours = DataLoader(
        TensorDataset(X, y), batch_size=5, shuffle=shuffle, seed=3, drop_last=drop_last
    )
    v1 = DataLoader(X, y, batch_size=5, shuffle=shuffle, seed=3, drop_last=drop_last)
    assert len(ours) == len(v1)
    for _ in range(2):  # two epochs: the same sequence of shuffles
        batches = list(ours)
        assert len(batches) == len(v1)
        for (xb, yb), (xv, yv) in zip(batches, v1):
            assert xb.dtype == xv.dtype and yb.dtype == yv.dtype
            np.testing.assert_array_equal(xb.numpy(), xv.numpy())
            np.testing.assert_array_equal(yb.numpy(), yv.numpy())


def test_manual_seed_gives_a_dataset_loader_the_same_order_as_the_x_y_form():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    tg.manual_seed(7)
    a = [yb.numpy() for _, yb in DataLoader(TensorDataset(X, y), batch_size=3)]
    tg.manual_seed(7)
    b = [yb.numpy() for _, yb in DataLoader(X, y, batch_size=3)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


# ----- a map-style Dataset -----


def test_custom_dataset_batches_are_collated():
    ds = Blobs(10)
    loader = DataLoader(ds, batch_size=4, shuffle=False)
    batches = list(loader)
    assert len(loader) == 3 and [len(yb) for _, yb in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert xb.shape == (4, 2) and xb.dtype == np.float32
    assert yb.shape == (4,) and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy(), np.stack([ds[i][0] for i in range(4)]))
    np.testing.assert_array_equal(yb.numpy(), [0, 1, 0, 1])


def test_every_sample_once_per_epoch_shuffled():
    loader = DataLoader(Blobs(30), batch_size=7, seed=0)
    orders = []
    for _ in range(2):
        labels = np.concatenate([xb.numpy()[:, 0] for xb, _ in loader])
        orders.append(labels)
        expected = np.sort([Blobs(30)[i][0][0] for i in range(30)])
        np.testing.assert_array_equal(np.sort(labels), expected)
    assert not np.array_equal(orders[0], orders[1])  # a new order every epoch


@pytest.mark.parametrize(("n", "batch", "drop_last", "length"), [
    (10, 4, False, 3), (10, 4, True, 2), (12, 4, False, 3), (12, 4, True, 3), (3, 5, False, 1),
])  # fmt: skip
def test_len_with_drop_last_both_ways(n, batch, drop_last, length):
    loader = DataLoader(Blobs(n), batch_size=batch, drop_last=drop_last, seed=0)
    assert len(loader) == length == len(list(loader))
    sizes = [len(yb) for _, yb in loader]
    assert all(s == batch for s in sizes[:-1]) and (drop_last is False or sizes[-1] == batch)
    assert f"n_samples={n}" in repr(loader)


def test_a_custom_dataset_trains_a_tiny_model():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(Blobs(128), batch_size=16, seed=0)
    losses = []
    for _ in range(5):
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / len(loader))
    assert losses[-1] < 0.2 * losses[0]


def test_collate_fields_numbers_dicts_and_tensors():
    samples = [
        {"x": Tensor(np.full(3, i, np.float32)), "w": 0.5 * i, "n": i, "m": np.float64(i)}
        for i in range(4)
    ]
    batch = collate(samples)
    assert batch["x"].shape == (4, 3) and batch["x"].dtype == np.float32
    assert batch["w"].dtype == np.float32 and batch["w"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert batch["n"].dtype == np.int64 and batch["m"].dtype == np.float64
    nested = collate([(np.zeros(2), (i, np.ones((2, 2), np.float32))) for i in range(3)])
    assert nested[0].shape == (3, 2) and nested[0].dtype == np.float64
    assert nested[1][0].tolist() == [0, 1, 2] and nested[1][1].shape == (3, 2, 2)


class Ragged(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.zeros(i + 1), 0


class Words(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return "word", 0


class Fields(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (np.zeros(2), 0) if i == 0 else (np.zeros(2),)


class Empty(Dataset):
    def __len__(self):
        return 0


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        (lambda: list(DataLoader(Ragged(), batch_size=2, shuffle=False)), ValueError, "same shape"),
        (lambda: list(DataLoader(Words(), batch_size=2)), TypeError, "cannot batch.*str"),
        (lambda: list(DataLoader(Fields(), batch_size=2)), ValueError, "number of fields"),
        (lambda: DataLoader(Empty()), ValueError, "empty"),
        (lambda: DataLoader(np.zeros((4, 2))), TypeError, "y is None"),
        (lambda: DataLoader(object()), TypeError, "not a map-style dataset"),
        (lambda: DataLoader(Blobs(4), batch_size=0), ValueError, "batch_size"),
        (lambda: DataLoader(Blobs(4), batch_size=5, drop_last=True), ValueError, "no minibatch"),
        (lambda: DataLoader(Blobs(4), seed=-1), ValueError, "seed"),
        (lambda: Dataset()[0], NotImplementedError, "must define __getitem__"),
        (lambda: len(Dataset()), NotImplementedError, "must define __len__"),
    ],
)
def test_dataset_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_a_duck_typed_dataset_is_accepted():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return float(i), i * i

    x, y = next(iter(DataLoader(Squares(), batch_size=5, shuffle=False)))
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and y.tolist() == [0, 1, 4, 9, 16]
