"""The autograd engine: ``Op`` (one node of the graph) and the backward walk.

Every differentiable operation is a subclass of ``Op`` with two methods that sit together
in ``ops.py``: ``forward`` computes the output from the inputs' arrays, and ``backward`` takes
dL/d(output) and returns dL/d(input) for each input (the chain rule, one node at a time).

Calling ``SomeOp.apply(x, y)`` runs ``forward`` and, when any input requires a gradient, links
the output tensor to this node (``out._ctx``). ``loss.backward()`` then visits the nodes from the
loss back to the leaves, each node once, and adds up the gradients that reach each tensor.
Whether anything is recorded is the grad mode: one flag per thread (``no_grad``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinygrad_edu.tensor import Tensor

# ----- recording on and off -----


class _GradMode(threading.local):
    """Whether operations are recorded, one flag per thread (as PyTorch's grad mode): one
    thread's ``with tg.no_grad():`` never changes what another thread records."""

    def __init__(self) -> None:  # runs once in every thread that looks at the flag
        self.enabled = True
        self.outer: list[bool] = []  # the modes to restore, innermost last


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require a gradient are recorded (in this thread)."""
    return _grad_mode.enabled


class _GradModeBlock(contextlib.ContextDecorator):
    """A ``with`` block (or a function decorator) that sets this thread's grad mode inside it
    and restores the previous mode on the way out, also when the block raises."""

    mode = True

    def __enter__(self) -> None:
        _grad_mode.outer.append(_grad_mode.enabled)  # per thread, so nesting and threads are safe
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc_info: object) -> None:
        _grad_mode.enabled = _grad_mode.outer.pop()


class no_grad(_GradModeBlock):
    """Inside ``with tg.no_grad():`` operations record nothing and return tensors that do not
    require a gradient (evaluation, optimizer updates). Also usable as ``@tg.no_grad()``."""

    mode = False


class enable_grad(_GradModeBlock):
    """Turns recording back on inside a ``no_grad`` block (or a function decorated with it)."""

    mode = True


class set_grad_enabled(_GradModeBlock):
    """``tg.set_grad_enabled(False)`` switches recording off for this thread at once (as a
    call), or inside a ``with`` block only (as a context manager), as PyTorch's does."""

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, (bool, int)):
            raise TypeError(f"set_grad_enabled: expected a bool, got {type(mode).__name__}")
        self.mode = bool(mode)
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode  # a plain call takes effect now

    def __enter__(self) -> None:
        _grad_mode.outer.append(self._previous)  # leaving the block restores the mode before it
        _grad_mode.enabled = self.mode


# ----- one node of the graph -----


class Op:
    """Base class of the library's differentiable operations (``ops.py``), on backend arrays.
    (A user's own op subclasses ``tg.autograd.Function`` instead, on Tensors: ``function.py``.)

    ``ctx`` in the methods below is the node itself (PyTorch's name): ``forward`` may store what
    ``backward`` will need with ``ctx.save_for_backward(...)`` or as attributes.
    """

    __slots__ = ("backend", "parents", "needs_input_grad", "saved", "released", "seq", "__dict__")
    device: str | None = None  # where the output lives, if not on the inputs' device (ToDevice)

    def forward(ctx, *args: Any, **kwargs: Any) -> Any:  # arrays in, one array out
        raise NotImplementedError

    def backward(ctx, grad: Any) -> Any:  # one array in, one array (or None) per input out
        raise NotImplementedError(f"{type(ctx).__name__} has no backward rule")

    def save_for_backward(ctx, *arrays: Any) -> None:
        ctx.saved = arrays

    def name(ctx) -> str:
        """The op's name (as PyTorch's ``grad_fn.name()``)."""
        return type(ctx).__name__

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Tensor:
        """Run the op on Tensors (and Python scalars) and record it in the graph if needed."""
        # NOTE: this runs once per operation, so it is written for speed: one pass over inputs,
        # no helper calls.
        Tensor = _Tensor or _tensor_class()
        ctx = cls()
        arrays, needs, device = [], [], None
        for t in inputs:
            if isinstance(t, Tensor):
                arrays.append(t._data)
                needs.append(t.requires_grad)
                if device is None:
                    device, ctx.backend = t.device, t._backend
                elif t.device != device:
                    raise RuntimeError(
                        f"{cls.__name__.lower()}: tensors are on different devices, "
                        f"{device!r} and {t.device!r}; move them with .to(device) first"
                    )
            else:
                arrays.append(t)
                needs.append(False)
        if device is None:
            raise TypeError(f"{cls.__name__}.apply: expected at least one Tensor among the inputs")
        result = ctx.forward(*arrays, **kwargs) if kwargs else ctx.forward(*arrays)
        out = Tensor.__new__(Tensor)  # Tensor._wrap, inlined
        out._data, out.grad = result, None
        # An op's output lives on its inputs' device, unless the op moves it (ops.ToDevice).
        out.device, out._backend = ctx.device or device, ctx.backend
        if _grad_mode.enabled and True in needs:
            ctx.seq = next(_creation_numbers)  # orders the backward walk
            ctx.parents, ctx.needs_input_grad, ctx.released = inputs, tuple(needs), False
            out.requires_grad, out._ctx = True, ctx
        else:
            out.requires_grad, out._ctx = False, None
        return out


def _tensor_class() -> type:
    """The Tensor class (tensor.py imports this module, so it cannot be imported at the top)."""
    global _Tensor
    if _Tensor is None:
        from tinygrad_edu.tensor import Tensor

        _Tensor = Tensor
    return _Tensor


_Tensor: type | None = None
_creation_numbers = itertools.count()


# ----- hooks: functions called with the gradient that reaches a tensor -----
# Kept here by id(tensor), not on the Tensor: the walk looks a tensor up only while some hook
# exists (an empty dict costs one truth test per node). A finalizer drops a dead tensor's entry.

_hooks: dict[int, list[Callable[[Any], Any]]] = {}


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook."""

    def __init__(self, key: int, hook: Callable[[Any], Any]) -> None:
        self.key, self.hook = key, hook

    def remove(self) -> None:
        hooks = _hooks.get(self.key, [])
        if self.hook in hooks:
            hooks.remove(self.hook)
        if not hooks:
            _hooks.pop(self.key, None)


def register_hook(t: Tensor, hook: Callable[[Any], Any]) -> RemovableHandle:
    """Call ``hook(grad)`` with the gradient that reaches ``t`` in every later backward pass;
    a Tensor it returns replaces the gradient."""
    key = id(t)
    if key not in _hooks:
        _hooks[key] = []
        weakref.finalize(t, _hooks.pop, key, None)
    _hooks[key].append(hook)
    return RemovableHandle(key, hook)


def _run_hooks(t: Tensor, g: Any, create_graph: bool) -> Any:
    """g after t's hooks: each gets a Tensor and may return a replacement."""
    Tensor = _Tensor or _tensor_class()
    for hook in list(_hooks[id(t)]):
        as_tensor = g if create_graph else Tensor._wrap(g, t.device, t._backend)
        replaced = hook(as_tensor)
        if replaced is not None:
            if tuple(replaced.shape) != tuple(t.shape):
                raise RuntimeError(
                    f"hook: returned a gradient of shape {tuple(replaced.shape)} for a tensor of "
                    f"shape {tuple(t.shape)}"
                )
            g = replaced if create_graph else replaced._data
    return g


# ----- the backward walk -----


def backward(
    root: Tensor,
    grad: Any,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> tuple | None:
    """Apply the chain rule from ``root`` (with dL/d(root) = ``grad``) back to the leaves.

    Nodes are visited newest first. An op's inputs always exist before the op runs, so every
    node that uses a tensor is newer than the tensor: by the time the walk reaches a tensor, all
    of its uses have been visited and its gradient is complete. A heap ordered by the nodes'
    creation numbers gives that order without a separate topological sort, and it only ever
    holds nodes that a gradient has reached (so a 10,000-op chain needs no recursion).

    With ``create_graph`` the gradients are Tensors and each rule runs on recorded ops (see
    ``differentiable.py``): the backward pass becomes a graph that can be differentiated again.
    With ``inputs`` (``tg.grad``) the gradients of those tensors are returned, and no ``.grad``
    is touched.
    """
    if create_graph:
        from tinygrad_edu import differentiable
    wanted = {id(t) for t in inputs} if inputs is not None else ()
    captured: dict[int, Any] = {}  # the gradients of the wanted tensors that are not leaves
    grads: dict[Tensor, Any] = {root: grad}  # the gradients that have reached each tensor
    leaves: list[Tensor] = []  # the leaves reached, in order
    heap: list[tuple[int, Tensor]] = []  # (-creation number, tensor made by that node)
    if root._ctx is None:
        leaves.append(root)
    else:
        heap.append((-root._ctx.seq, root))
    while heap:
        node = heappop(heap)[1]
        ctx = node._ctx
        if ctx.released:
            raise RuntimeError(
                f"backward: trying to go through the graph a second time ({type(ctx).__name__} "
                "has already released its saved values); call backward(retain_graph=True) "
                "the first time if you need to"
            )
        g = grads.pop(node)
        if _hooks and id(node) in _hooks:
            g = _run_hooks(node, g, create_graph)
        if wanted and id(node) in wanted:
            captured[id(node)] = g
        if create_graph:
            input_grads = differentiable.recorded_backward(ctx, node, g)
        else:
            input_grads = ctx.backward(g)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
        for parent, pg, needed in zip(ctx.parents, input_grads, ctx.needs_input_grad):
            if not needed or pg is None:
                continue
            dtype = parent._data.dtype
            if pg.dtype is not dtype and pg.dtype != dtype:  # float32 input, float64 expression
                # (the parent's backend: see ops.ToDevice)
                pg = (
                    differentiable.cast(pg, dtype)
                    if create_graph
                    else parent._backend.astype(pg, dtype)
                )
            previous = grads.get(parent)
            if previous is not None:  # a tensor used more than once: its gradients add up
                if create_graph:
                    grads[parent] = previous + pg
                else:
                    grads[parent] = parent._backend.binary("add", previous, pg)
                continue
            grads[parent] = pg
            if parent._ctx is None:
                leaves.append(parent)
            else:
                heappush(heap, (-parent._ctx.seq, parent))
        if not retain_graph:
            ctx.saved = None
            ctx.released = True
            ctx.__dict__.clear()
    if _hooks:
        for leaf in leaves:
            if id(leaf) in _hooks:
                grads[leaf] = _run_hooks(leaf, grads[leaf], create_graph)
    if inputs is not None:
        return tuple(captured[id(t)] if id(t) in captured else grads.get(t) for t in inputs)
    if create_graph:
        for leaf in leaves:
            _accumulate_recorded(leaf, grads[leaf])
        return None
    handed_out = {id(grad)}  # arrays that someone else may also hold
    for leaf in leaves:
        _accumulate_leaf(leaf, grads[leaf], handed_out)
    return None


def _accumulate_recorded(leaf: Tensor, g: Tensor) -> None:
    """create_graph: the leaf's gradient is a Tensor with a graph (PyTorch's rule). It gets its
    own storage (``+ 0.0``: one gradient can reach several leaves), and adds to what is there."""
    g = g + 0.0 if leaf.grad is None else leaf.grad + g
    leaf.grad = g


def _accumulate_leaf(leaf: Tensor, g: Any, handed_out: set[int]) -> None:
    """Keep ``g`` as the leaf's gradient, adding it to what is already there."""
    backend = leaf._backend
    if g.shape != leaf._data.shape:  # a broadcast view, e.g. from sum's backward
        g = backend.copy(backend.broadcast_to(g, leaf._data.shape))
    elif id(g) in handed_out or backend.is_view(g):
        # NOTE: the same array can reach two leaves (x + y passes g to both) or be a view of the
        # user's grad; each leaf gets memory of its own so in-place edits of one .grad stay local.
        g = backend.copy(g)
    handed_out.add(id(g))
    Tensor = _Tensor or _tensor_class()
    if leaf.grad is not None:
        g = backend.binary("add", leaf.grad._data, g)
    leaf.grad = Tensor._wrap(g, leaf.device, backend)


# ----- gradients as values: tg.grad -----


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as a tuple of Tensors, one per input; no ``.grad`` is touched.

    ``grad_outputs`` holds dL/d(output) for each output (omit it for single-element outputs).
    With several outputs their contributions add up. With ``create_graph=True`` the results
    carry a graph and can be differentiated again. An input that the outputs do not depend on
    raises RuntimeError, unless ``allow_unused=True`` (then its entry is None).
    """
    Tensor = _Tensor or _tensor_class()
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        seeds = [None] * len(outputs)
    elif isinstance(grad_outputs, (list, tuple)):
        seeds = list(grad_outputs)
    else:  # one gradient (a Tensor, an array or a number) for one output
        seeds = [grad_outputs]
    if len(seeds) != len(outputs):
        raise RuntimeError(f"grad: {len(outputs)} outputs but {len(seeds)} grad_outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad (set requires_grad=True)")
    if retain_graph is None:
        retain_graph = create_graph
    total: list[Any] = [None] * len(inputs)
    for out, seed in zip(outputs, seeds):
        g = out._seed_gradient(seed, "grad", create_graph)
        found = backward(out, g, retain_graph, create_graph, inputs)
        for i, gi in enumerate(found):
            if gi is None:
                continue
            if total[i] is None:
                total[i] = gi
            elif create_graph:
                total[i] = total[i] + gi
            else:
                total[i] = inputs[i]._backend.binary("add", total[i], gi)
    results: list[Tensor | None] = []
    for i, (t, g) in enumerate(zip(inputs, total)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            results.append(None)
            continue
        if not create_graph:  # a private copy of the right shape (the walk may share arrays)
            backend = t._backend
            g = backend.copy(backend.broadcast_to(g, t._data.shape))
            g = Tensor._wrap(g, t.device, backend)
        elif tuple(g.shape) != tuple(t.shape):
            g = g + Tensor._wrap(t._backend.zeros(t._data.shape, g.dtype), t.device, t._backend)
        results.append(g)
    return tuple(results)
