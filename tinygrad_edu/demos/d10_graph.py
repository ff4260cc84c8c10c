"""The computational graph of a small network, forward and backward.

Every operation on tensors records a node: the op, its inputs and the output it made. The
forward pass builds this graph from the inputs (parameters and data) to the loss; backward walks
it the other way, from the loss to every parameter, multiplying by each op's local derivative
(the chain rule):

    dL/dx = sum over the ops f that used x of  (dL/d f(x)) * (d f(x) / dx)

Left: the graph as the forward pass recorded it (``tg.viz.to_dot``: blue boxes are parameters,
grey boxes constants, ellipses ops, green the loss). Right: the same graph with the gradient
backprop sends to each node (``grads=True``: norm and first entries), i.e. the backward pass.
The pictures are drawn by Graphviz's ``dot`` program; without it the demo prints how to install
it and draws the DOT text itself instead, so a PNG is always written.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F

NAME = "graph"
TITLE = "the computational graph of a small tanh network and its loss, forward and backward"


def small_network(hidden: int = 4):
    """A 3-hidden-2 tanh network written op by op (so each op is a node), a batch of 5 inputs
    and its cross-entropy loss; returns (named parameters, loss)."""
    tg.manual_seed(0)
    first, second = nn.Linear(3, hidden), nn.Linear(hidden, 2)
    params = {"W1": first.weight, "b1": first.bias, "W2": second.weight, "b2": second.bias}
    x = tg.Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    h = (x @ params["W1"].T + params["b1"]).tanh()
    logits = h @ params["W2"].T + params["b2"]
    return params, F.cross_entropy(logits, np.array([0, 1, 1, 0, 1]))


def render(params: dict, loss, grads: bool, folder: Path) -> tuple[str, Path | None]:
    """The DOT text of the graph and the PNG Graphviz drew from it (None without ``dot``)."""
    name = "backward" if grads else "forward"
    written = tg.viz.draw(loss, folder / name, params=params, formats=("png",), grads=grads)
    png = next((p for p in written if p.suffix == ".png"), None)
    return (folder / f"{name}.dot").read_text(), png


def dot_available() -> bool:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def draw(panels: list[tuple[str, str, Path | None]], path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    fig = Figure(figsize=(14, 9), layout="constrained")
    for ax, (title, text, png) in zip(
        fig.subplots(1, len(panels), width_ratios=[1, 1.6][: len(panels)]), panels
    ):
        ax.set_axis_off()
        ax.set_title(title)
        if png is not None:
            ax.imshow(imread(png))
        else:  # no Graphviz: show the DOT text, which is the same graph in words
            ax.text(0, 1, text, family="monospace", fontsize=5, va="top", transform=ax.transAxes)
    fig.suptitle("Computational graph of loss = CE(tanh(x W1^T + b1) W2^T + b2, labels)")
    fig.savefig(path, dpi=100)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    named, loss = small_network(2 if tiny else 4)
    has_dot = dot_available()
    if not has_dot:
        print("graph: Graphviz is not available (needs `pip install graphviz` and the `dot` "
              "program: apt install graphviz); drawing the DOT text instead")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fwd_text, fwd_png = render(named, loss, False, Path(tmp))
        bwd_text, bwd_png = render(named, loss, True, Path(tmp))
        draw([("forward: what the ops recorded", fwd_text, fwd_png),
              ("backward: the gradient reaching each node", bwd_text, bwd_png)],
             out_dir / f"{NAME}.png")  # fmt: skip
    ops = fwd_text.count('shape="ellipse"')
    boxes = fwd_text.count('shape="box"')
    params = sum(p.size for p in named.values())
    tool = "Graphviz dot" if has_dot else "matplotlib text"
    print(f"graph: {ops} op nodes, {boxes} tensor nodes, {params} parameters, "
          f"loss {loss.item():.4f}; drawn with {tool}")  # fmt: skip
    return {"op_nodes": float(ops), "tensor_nodes": float(boxes), "params": float(params),
            "loss": float(loss.item()), "graphviz": float(has_dot)}  # fmt: skip
