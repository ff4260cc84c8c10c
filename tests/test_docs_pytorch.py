"""Walks the tables of docs/pytorch.md: every row's PyTorch snippet and tinygrad_edu snippet run on
the same inputs, and their results (and, where the result requires grad, the inputs' gradients)
must agree. Without torch, the tinygrad_edu snippet still runs and is checked against the row's
numpy snippet when it has one.

Row format (see the top of docs/pytorch.md): ``| `torch code` | `tg code` | `numpy code` or - |
check |``. A snippet is an expression, or statements joined by ``; `` whose last part is the
expression. ``check`` is ``=`` (values, and gradients of the inputs when the result requires grad),
``value`` (values only), ``shape`` (shapes only: random results) or ``run`` (both just run).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg

DOC = Path(__file__).resolve().parents[1] / "docs" / "pytorch.md"
ROW = re.compile(
    r"^\|\s*`(?P<torch>[^`]+)`\s*\|\s*`(?P<tg>[^`]+)`\s*\|\s*(?P<np>`[^`]+`|-)\s*\|\s*(?P<check>=|value|shape|run)\s*\|\s*$"
)


def _rows() -> list[tuple[str, str, str | None, str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        m = ROW.match(line.strip())
        if m:
            np_code = None if m["np"] == "-" else m["np"].strip("`")
            rows.append((m["torch"], m["tg"], np_code, m["check"]))
    return rows


ROWS = _rows()

# The inputs every snippet may use, by name: float64, so results can be compared tightly.
_RNG = np.random.default_rng(0)
INPUTS = {
    "a": _RNG.normal(size=(3, 4)),
    "b": _RNG.normal(size=(3, 4)),
    "pos": _RNG.uniform(0.5, 2.0, (3, 4)),
    "prob": _RNG.uniform(0.1, 0.9, (3, 4)),
    "w": _RNG.normal(size=(2, 4)),
    "v": _RNG.normal(size=(2,)),
    "logits": _RNG.normal(size=(3, 5)),
    "seq": _RNG.normal(size=(2, 3, 5)),
    "img": _RNG.normal(size=(2, 3, 4, 4)),
}
CONSTANTS = {  # not differentiated
    "t01": (_RNG.uniform(size=(3, 4)) > 0.5).astype(np.float64),
    "y": np.array([1, 0, 4]),
    "ids": np.array([[0, 2, 4], [4, 1, 1]]),
}


def _namespace(kind: str) -> dict:
    if kind == "torch":
        import torch

        ns = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "np": np}
        for k, x in INPUTS.items():
            ns[k] = torch.tensor(x, requires_grad=True)
        for k, x in CONSTANTS.items():
            ns[k] = torch.tensor(x)
    elif kind == "tg":
        ns = {"tg": tg, "nn": tg.nn, "F": tg.nn.functional, "np": np}
        for k, x in INPUTS.items():
            ns[k] = tg.Tensor(x, requires_grad=True)
        for k, x in CONSTANTS.items():
            ns[k] = tg.Tensor(x, dtype=x.dtype)
    else:
        ns = {"np": np, **{k: x.copy() for k, x in INPUTS.items()}, **CONSTANTS}
    return ns


def _run(code: str, ns: dict):
    *statements, last = [part.strip() for part in code.split("; ")]
    for s in statements:
        exec(s, ns)
    return eval(last, ns)


def _plain(x):
    """A result as numpy / Python values, so torch's and ours compare."""
    if isinstance(x, tg.Tensor):
        return x.numpy()
    if type(x).__module__.startswith("torch"):
        if hasattr(x, "detach"):
            return x.detach().numpy()
        if type(x).__name__ == "Size":
            return tuple(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    return x


def _compare(ours, theirs, check, where):
    if check == "run":
        return
    ours, theirs = _plain(ours), _plain(theirs)
    if check == "shape":
        ours, theirs = np.shape(ours), np.shape(theirs)
        assert ours == theirs, f"{where}: shape {ours} != {theirs}"
        return
    if isinstance(ours, (tuple, list)) and not isinstance(ours, np.ndarray):
        assert len(ours) == len(theirs), f"{where}: {len(ours)} results != {len(theirs)}"
        for o, t in zip(ours, theirs):
            _compare(o, t, "value", where)
        return
    if ours is None or theirs is None or isinstance(ours, str) or isinstance(theirs, str):
        assert ours == theirs, f"{where}: {ours!r} != {theirs!r}"
        return
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float),
        np.asarray(theirs, dtype=float),
        rtol=1e-6,
        atol=1e-8,
        err_msg=where,
    )


def _requires_grad(x) -> bool:
    return getattr(x, "requires_grad", False) and not isinstance(x, (tuple, list))


@pytest.mark.parametrize("torch_code,tg_code,np_code,check", ROWS, ids=[r[1] for r in ROWS])
def test_row(torch_code, tg_code, np_code, check):
    ours_ns = _namespace("tg")
    ours = _run(tg_code, ours_ns)
    try:
        import torch  # noqa: F401
    except ImportError:
        if np_code is not None:
            _compare(ours, _run(np_code, _namespace("numpy")), check, tg_code)
        return
    theirs_ns = _namespace("torch")
    theirs = _run(torch_code, theirs_ns)
    _compare(ours, theirs, check, tg_code)
    if np_code is not None:
        _compare(ours, _run(np_code, _namespace("numpy")), check, f"numpy: {np_code}")
    if check == "=" and _requires_grad(ours) and _requires_grad(theirs):
        ours.sum().backward()
        theirs.sum().backward()
        for k in INPUTS:
            g_ours, g_theirs = ours_ns[k].grad, theirs_ns[k].grad
            assert (g_ours is None) == (g_theirs is None), f"{tg_code}: grad of {k}"
            if g_ours is not None:
                _compare(g_ours, g_theirs, "value", f"{tg_code}: grad of {k}")


def test_custom_function():
    torch = pytest.importorskip("torch")

    def make(base):
        class Cube(base):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * 3 * x * x

        return Cube

    results = []
    for lib, base in ((tg, tg.autograd.Function), (torch, torch.autograd.Function)):
        x = (tg.Tensor if lib is tg else torch.tensor)(INPUTS["a"], requires_grad=True)
        y = make(base).apply(x)
        y.sum().backward()
        results.append((_plain(y), _plain(x.grad)))
    np.testing.assert_allclose(results[0][0], INPUTS["a"] ** 3)
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs)


def test_custom_dataset():
    torch = pytest.importorskip("torch")

    def make(base):
        class Squares(base):
            def __len__(self):
                return 5

            def __getitem__(self, i):
                return np.array([float(i)]), np.array(float(i * i))

        return Squares()

    ours = [
        _plain(yb).tolist() for _, yb in tg.data.DataLoader(make(tg.data.Dataset), 2, shuffle=False)
    ]
    theirs = [
        _plain(yb).tolist()
        for _, yb in torch.utils.data.DataLoader(make(torch.utils.data.Dataset), 2)
    ]
    assert ours == theirs == [[0.0, 1.0], [4.0, 9.0], [16.0]]


def test_the_table_is_found_and_has_a_tensor_section():
    assert len(ROWS) >= 60
    text = DOC.read_text()
    assert "## Tensor" in text and "## Deliberate differences" in text


def test_dataloader_positional_batch_size_and_python_numbers():
    # PyTorch's DataLoader(dataset, 2): the second positional argument is the batch size.
    data = tg.data.TensorDataset(np.arange(5.0)[:, None], np.arange(5))
    sizes = [len(yb) for _, yb in tg.data.DataLoader(data, 2, shuffle=False)]
    assert sizes == [2, 2, 1]
    with pytest.raises(TypeError, match="DataLoader"):
        tg.data.DataLoader(data, np.arange(5))
    assert int(tg.Tensor([3.7])) == 3 and float(tg.Tensor([[2.5]])) == 2.5
    with pytest.raises(RuntimeError, match="one element"):
        int(tg.Tensor([1.0, 2.0]))
