"""The autograd engine: ``Function`` (one node of the graph) and the backward walk.

Every differentiable operation is a subclass of ``Function`` with two methods that sit together
in ``ops.py``: ``forward`` computes the output from the inputs' arrays, and ``backward`` takes
dL/d(output) and returns dL/d(input) for each input (the chain rule, one node at a time).

Calling ``SomeOp.apply(x, y)`` runs ``forward`` and, when any input requires a gradient, links
the output tensor to this node (``out._ctx``). ``loss.backward()`` then visits the nodes from the
loss back to the leaves, each node once, and adds up the gradients that reach each tensor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinygrad_edu.tensor import Tensor

# ----- recording on and off -----

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside ``with tg.no_grad():`` operations record nothing and return tensors that do not
    require a gradient (evaluation, optimizer updates). Also usable as a decorator."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


# ----- one node of the graph -----


class Function:
    """Base class of the differentiable operations.

    ``ctx`` in the methods below is the node itself (PyTorch's name): ``forward`` may store what
    ``backward`` will need with ``ctx.save_for_backward(...)`` or as attributes.
    """

    __slots__ = ("backend", "parents", "needs_input_grad", "saved", "released", "__dict__")

    def forward(ctx, *args: Any, **kwargs: Any) -> Any:  # arrays in, one array out
        raise NotImplementedError

    def backward(ctx, grad: Any) -> Any:  # one array in, one array (or None) per input out
        raise NotImplementedError(f"{type(ctx).__name__} has no backward rule")

    def save_for_backward(ctx, *arrays: Any) -> None:
        ctx.saved = arrays

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Tensor:
        """Run the op on Tensors (and Python scalars) and record it in the graph if needed."""
        # NOTE: this runs once per operation, so it is written for speed: one pass over inputs.
        Tensor = _Tensor or _tensor_class()
        arrays, needs, device, backend = [], [], None, None
        for t in inputs:
            if isinstance(t, Tensor):
                arrays.append(t._data)
                needs.append(t.requires_grad)
                if device is None:
                    device, backend = t.device, t._backend
                elif t.device != device:
                    raise RuntimeError(
                        f"{cls.__name__.lower()}: tensors are on different devices, "
                        f"{device!r} and {t.device!r}; move them with .to(device) first"
                    )
            else:
                arrays.append(t)
                needs.append(False)
        ctx = cls()
        ctx.backend = backend
        result = ctx.forward(*arrays, **kwargs)
        # An op's output lives on its inputs' device, unless the op moves it (ops.ToDevice).
        out = Tensor._wrap(result, getattr(ctx, "device", device), ctx.backend)
        if _grad_enabled and True in needs:
            ctx.parents = inputs
            ctx.needs_input_grad = tuple(needs)
            ctx.released = False
            out.requires_grad = True
            out._ctx = ctx
        return out


def _tensor_class() -> type:
    """The Tensor class (tensor.py imports this module, so it cannot be imported at the top)."""
    global _Tensor
    if _Tensor is None:
        from tinygrad_edu.tensor import Tensor

        _Tensor = Tensor
    return _Tensor


_Tensor: type | None = None


# ----- the backward walk -----


def topological_order(root: Tensor) -> list[Tensor]:
    """Tensors that lead to ``root`` (and need a gradient), each listed after its inputs.

    Iterative depth-first search, so a 10,000-op chain does not hit Python's recursion limit.
    (Tensors hash by identity, so they key sets and dicts directly.)
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        if node._ctx is not None:
            for parent, needed in zip(node._ctx.parents, node._ctx.needs_input_grad):
                if needed and parent not in visited:
                    stack.append((parent, False))
    return order


def backward(root: Tensor, grad: Any, retain_graph: bool = False) -> None:
    """Apply the chain rule from ``root`` (with dL/d(root) = ``grad``) back to the leaves."""
    order = topological_order(root)
    grads: dict[Tensor, Any] = {root: grad}
    handed_to_leaves: set[int] = {id(grad)}  # arrays that someone else may also hold
    for node in reversed(order):  # outputs before inputs
        g = grads.pop(node, None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None:  # a leaf: keep the gradient, adding to what is already there
            _accumulate_leaf(node, g, handed_to_leaves)
            continue
        if ctx.released:
            raise RuntimeError(
                f"backward: trying to go through the graph a second time ({type(ctx).__name__} "
                "has already released its saved values); call backward(retain_graph=True) "
                "the first time if you need to"
            )
        input_grads = ctx.backward(g)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        for parent, pg, needed in zip(ctx.parents, input_grads, ctx.needs_input_grad):
            if not needed or pg is None:
                continue
            backend = parent._backend  # not ctx's: ToDevice hands gradients across devices
            if pg.dtype != parent._data.dtype:  # a float32 input used in a float64 expression
                pg = backend.astype(pg, parent._data.dtype)
            previous = grads.get(parent)
            grads[parent] = pg if previous is None else backend.binary("add", previous, pg)
        if not retain_graph:
            ctx.saved = None
            ctx.released = True
            ctx.__dict__.clear()


def _accumulate_leaf(leaf: Tensor, g: Any, handed_out: set[int]) -> None:
    backend = leaf._backend
    if g.shape != leaf.shape:  # a broadcast view, e.g. from sum's backward
        g = backend.copy(backend.broadcast_to(g, leaf.shape))
    elif id(g) in handed_out or backend.is_view(g):
        # NOTE: the same array can reach two leaves (x + y passes g to both) or be a view of the
        # user's grad; each leaf gets memory of its own so in-place edits of one .grad stay local.
        g = backend.copy(g)
    handed_out.add(id(g))
    if leaf.grad is None:
        leaf.grad = _tensor_class()._wrap(g, leaf.device, backend)
    else:
        leaf.grad = _tensor_class()._wrap(
            backend.binary("add", leaf.grad._data, g), leaf.device, backend
        )
