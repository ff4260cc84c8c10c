"""Pictures of the graph: ``tg.viz.to_dot(loss)`` and ``tg.viz.draw(loss, "graph")``.

The graph behind a tensor is what ``backward`` walks: each tensor made by an op links to the op
(``t._ctx``), and the op to its inputs (``ctx.parents``). This module draws it as Graphviz DOT text:

    leaf tensor (box)      its name (a Module parameter name when known), shape, dtype, and
                           whether it requires grad (blue) or is a constant (grey)
    op (ellipse)           the op's name and its output's shape; the root is green
    edge a -> op           a is an input of op (the forward direction; backward runs against it)

``grads=True`` adds at each node the gradient that backprop sends there (``tg.grad`` of the root
with respect to every tensor in the graph). ``fd=`` adds the finite-difference gradient beside it
and fills red every node where the two disagree: with a wrong backward rule in op K, the inputs
of K (and everything below them) turn red, the nodes above K stay white.

    fd=callable   a zero-argument function that recomputes the root from the same leaves
                  (PyTorch's closure style); only the leaves get a finite-difference gradient.
    fd=True       the graph is replayed: each op's ``forward`` is run again on fresh nodes, so any
                  tensor in the graph, intermediate ones too, can be nudged and the root recomputed
                  from it. Only for deterministic ops (random masks are constants of the graph).

Nothing here changes the graph: it can still be walked by ``backward`` afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_edu.autograd import grad as _grad
from tinygrad_edu.gradcheck import numerical_gradient
from tinygrad_edu.tensor import Tensor

__all__ = ["draw", "to_dot"]

# Finite-difference step and tolerances per dtype: float32 keeps ~7 digits, so its step must be
# large (rounding error ~1e-7 * |J| / eps) and the comparison loose.
_FD_DEFAULTS = {np.dtype(np.float64): (1e-6, 1e-4, 1e-6), np.dtype(np.float32): (1e-3, 3e-2, 1e-3)}
_COLORS = {"param": "lightblue", "const": "lightgrey", "root": "palegreen", "bad": "#ff8080"}


# ----- the graph as a list of tensors -----


def _topological(root: Tensor) -> list[Tensor]:
    """Every tensor behind ``root``, inputs before the ops that use them (iterative DFS)."""
    order: list[Tensor] = []
    seen: set[int] = {id(root)}
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        stack.append((t, True))
        ctx = t._ctx
        if ctx is None:
            continue
        if getattr(ctx, "released", False) or not hasattr(ctx, "parents"):
            raise RuntimeError(
                f"viz: the graph was freed by backward() ({type(ctx).__name__} released its "
                "saved values); call backward(retain_graph=True) before drawing, or draw first"
            )
        for p in reversed(ctx.parents):
            if isinstance(p, Tensor) and id(p) not in seen:
                seen.add(id(p))
                stack.append((p, False))
    return order


def _names(params: Any) -> dict[int, str]:
    """id(tensor) -> name, from a Module (its ``named_parameters()``) or a dict name -> Tensor."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not isinstance(params, Mapping):
        raise TypeError(
            f"viz: params must be a Module or a dict name -> Tensor, got {type(params).__name__}"
        )
    return {id(t): str(name) for name, t in params.items() if isinstance(t, Tensor)}


# ----- gradients: backprop and finite differences -----


def _backprop(root: Tensor, tensors: list[Tensor], grad_output: Any) -> dict[int, np.ndarray]:
    wanted = [t for t in tensors if t.requires_grad]
    if not wanted:  # a constant: nothing to differentiate
        return {}
    found = _grad(root, wanted, grad_output, retain_graph=True, allow_unused=True)
    return {id(t): g.numpy() for t, g in zip(wanted, found) if g is not None}


def _replay(order: list[Tensor], frozen: Tensor) -> Callable[[], Tensor]:
    """f() recomputing the root from the leaves' current values by running each op's forward on
    a fresh node; ``frozen`` keeps its current value (so it can be nudged like a leaf)."""
    steps = []
    for t in order:
        ctx = t._ctx
        if ctx is None or t is frozen:
            continue
        params = inspect.signature(type(ctx).forward).parameters.values()
        kwargs = {}
        for p in params:  # keyword-only arguments (Cat's axis) are kept on the node by forward
            if p.kind is p.KEYWORD_ONLY:
                if not hasattr(ctx, p.name):
                    raise RuntimeError(
                        f"viz: cannot replay {ctx.name()} (its keyword argument {p.name!r} "
                        "is not stored on the node); pass fd= a function that recomputes the root"
                    )
                kwargs[p.name] = getattr(ctx, p.name)
        steps.append((t, type(ctx), ctx.parents, kwargs))
    root = order[-1]

    def f() -> Tensor:
        values: dict[int, Any] = {}
        for t, op, parents, kwargs in steps:
            node = op()
            node.backend = next(p._backend for p in parents if isinstance(p, Tensor))
            args = [values.get(id(p), p._data) if isinstance(p, Tensor) else p for p in parents]
            values[id(t)] = node.forward(*args, **kwargs)
        return Tensor._wrap(values.get(id(root), root._data), root.device, root._backend)

    return f


def _finite_differences(
    order: list[Tensor], fd: Any, eps: float | None, max_entries: int
) -> dict[int, np.ndarray]:
    """id(tensor) -> dJ/dtensor by central differences, for each float tensor that requires grad
    (only the leaves when ``fd`` is a closure, every one when it is True: replay)."""
    replay = fd is True
    if not replay and not callable(fd):
        raise TypeError(f"viz: fd must be True or a zero-argument function, got {fd!r}")
    chosen = [
        t
        for t in order
        if t.requires_grad and t.dtype in _FD_DEFAULTS and (replay or t._ctx is None)
    ]
    total = sum(t.size for t in chosen)
    if total > max_entries:
        raise ValueError(
            f"viz: finite differences on {total:,} entries (2 forward passes each) exceed "
            f"fd_max_entries={max_entries:,}; draw a smaller graph or raise the limit"
        )
    result = {}
    for t in chosen:
        step = _FD_DEFAULTS[t.dtype][0] if eps is None else eps
        original = t._data
        # NOTE: nudge a private copy: the storage may be shared (a reshape is a view of its input).
        t._data = t._backend.copy(original)
        try:
            f = _replay(order, t) if replay else fd
            result[id(t)] = numerical_gradient(f, [t], eps=step)[0]
        finally:
            t._data = original
    return result


def _disagree(bp: np.ndarray, fd: np.ndarray, dtype: np.dtype, rtol: Any, atol: Any) -> bool:
    _, default_rtol, default_atol = _FD_DEFAULTS[dtype]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    bp = np.broadcast_to(bp, fd.shape)
    return bool(np.max(np.abs(bp - fd), initial=0.0) > atol + rtol * np.max(np.abs(fd), initial=0))


# ----- labels -----


def _escape(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, lines as centred ``\\n``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\r", "").replace("\n", "\\n")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _summary(kind: str, g: np.ndarray, values: int) -> str:
    """e.g. ``grad (2,) |g|=4.47 [2, 4]``: shape, L2 norm, the first few entries."""
    flat = np.asarray(g, dtype=np.float64).ravel()
    text = f"{kind} |g|={np.linalg.norm(flat):.4g}"
    if values:
        shown = ", ".join(f"{v:.4g}" for v in flat[:values])
        text += f" [{shown}{', ...' if flat.size > values else ''}]"
    return text


def _arguments(parents: tuple) -> str:
    """Numbers and words among the op's inputs: ``x * 2`` shows MulScalar(2), a layer with its
    activation fused in shows Linear(sigmoid); flags and None are left out."""
    shown = [
        f"{p:g}" if isinstance(p, (int, float)) else p
        for p in parents
        if isinstance(p, (int, float, str)) and not isinstance(p, bool)
    ]
    return "(" + ", ".join(shown) + ")" if shown else ""


# ----- DOT text -----


def to_dot(
    tensor: Tensor,
    params: Any = None,
    grads: bool = False,
    fd: Any = None,
    *,
    grad_output: Any = None,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    fd_max_entries: int = 5000,
    values: int = 3,
    rankdir: str = "TB",
) -> str:
    """Graphviz DOT text of the graph behind ``tensor``.

    ``params``: a Module or a dict name -> Tensor; those tensors are labelled with their names.
    ``grads``: label every node with the gradient backprop sends there (norm and the first
    ``values`` entries); ``grad_output`` seeds it for a root with more than one element.
    ``fd``: True (replay the graph) or a zero-argument function recomputing the root; adds the
    finite-difference gradient (step ``eps``) and fills red the nodes where it and backprop
    differ by more than ``atol + rtol * max|fd|`` (defaults per dtype: see ``_FD_DEFAULTS``).
    The graph must not have been freed: after a backward, use ``backward(retain_graph=True)``.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"viz: expected a Tensor, got {type(tensor).__name__}")
    order = _topological(tensor)
    names = _names(params)
    if fd is not None and fd is not False:
        grads = True
    bp = _backprop(tensor, order, grad_output) if grads else {}
    numeric = _finite_differences(order, fd, eps, fd_max_entries) if grads and bp and fd else {}

    ids = {id(t): f"n{i}" for i, t in enumerate(order)}
    lines = [
        "digraph tinygrad_edu {",
        f"  graph [rankdir={rankdir}];",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for t in order:
        ctx = t._ctx
        label, attrs = [], {}
        name = names.get(id(t))
        if ctx is None:
            label += [name] if name else []
            label += [
                f"{_shape(t.shape)} {t.dtype}",
                "requires_grad" if t.requires_grad else "const",
            ]
            attrs.update(shape="box", style="filled")
            attrs["fillcolor"] = _COLORS["param" if t.requires_grad else "const"]
        else:
            label.append(ctx.name() + _arguments(ctx.parents))
            label += [name] if name else []
            label.append(_shape(t.shape))
            attrs["shape"] = "ellipse"
            if t is tensor:
                attrs.update(style="filled", fillcolor=_COLORS["root"])
        if id(t) in bp:
            label.append(_summary("grad", bp[id(t)], values))
        elif grads and t.requires_grad:
            label.append("grad none (no gradient reaches it: 0)")
        if id(t) in numeric:
            label.append(_summary("fd", numeric[id(t)], values))
            backprop = bp.get(id(t), np.zeros(()))
            if _disagree(backprop, numeric[id(t)], t.dtype, rtol, atol):
                label.append("backprop != finite differences")
                attrs.update(style="filled", fillcolor=_COLORS["bad"], color="red", penwidth="2")
        attrs["label"] = "\n".join(label)
        text = ", ".join(f'{k}="{_escape(str(v))}"' for k, v in attrs.items())
        lines.append(f"  {ids[id(t)]} [{text}];")
    for t in order:
        if t._ctx is not None:
            for p in t._ctx.parents:
                if isinstance(p, Tensor):
                    lines.append(f"  {ids[id(p)]} -> {ids[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(
    tensor: Tensor, path: str | Path, params: Any = None, formats: tuple = ("svg",), **kwargs: Any
) -> list[Path]:
    """Write the graph of ``tensor`` to ``path`` with the suffix .dot (always) and each of
    ``formats`` (e.g. "svg", "png") when the ``graphviz`` package and its ``dot`` program are
    installed (``pip install tinygrad-edu[graph]``). Returns the paths written.
    Other keyword arguments go to ``to_dot``."""
    text = to_dot(tensor, params, **kwargs)
    path = Path(path)
    if path.suffix in (".dot", ".gv", ".svg", ".png", ".pdf"):
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_path = path.with_name(path.name + ".dot")
    dot_path.write_text(text)
    written = [dot_path]
    try:
        import graphviz
    except ImportError:
        return written
    for fmt in formats:
        try:
            picture = graphviz.Source(text).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            return written
        out = path.with_name(f"{path.name}.{fmt}")
        out.write_bytes(picture)
        written.append(out)
    return written
