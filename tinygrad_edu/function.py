"""``tg.autograd.Function``: the user's way to add an op, as ``torch.autograd.Function``.

    class Cube(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    y = Cube.apply(x)

``forward`` receives the inputs as Tensors cut from the graph (``detach``: what it computes is
not recorded, the op is one node) and returns one Tensor; ``backward`` receives dL/d(output) as
a Tensor and returns one gradient per input (None where ``ctx.needs_input_grad`` is False).
Because the backward is written with Tensor operations, ``backward(create_graph=True)``
records it, so a custom op can be differentiated twice. (The library's own ops, in ``ops.py``,
subclass ``autograd.Op`` and work on backend arrays, for speed.)
"""

from __future__ import annotations

from typing import Any

from tinygrad_edu.autograd import Op, enable_grad, no_grad
from tinygrad_edu.tensor import Tensor


class FunctionCtx:
    """The ``ctx`` a custom op's forward and backward share."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._saved: tuple[Any, ...] = ()
        self._originals: dict[int, Tensor] = {}  # detached input -> the input in the graph
        self._recording = False  # True during a backward with create_graph=True

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors (inputs or the output) for the backward pass."""
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What ``save_for_backward`` kept. During a recorded backward (create_graph) a saved
        input is the input itself, so the gradient depends on it in the graph."""
        if not self._recording:
            return self._saved
        return tuple(self._originals.get(id(t), t) for t in self._saved)


class Function:
    """Base class of a user's differentiable op on Tensors (see the module docstring)."""

    @staticmethod
    def forward(ctx: FunctionCtx, *inputs: Any) -> Tensor:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any) -> Tensor:
        """Run ``forward`` on detached inputs and record the op as one node of the graph."""
        ctx = FunctionCtx(tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs))
        detached = []
        for t in inputs:
            if isinstance(t, Tensor):
                d = t.detach()
                ctx._originals[id(d)] = t
                detached.append(d)
            else:
                detached.append(t)
        with no_grad():
            out = cls.forward(ctx, *detached)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return one Tensor, got {type(out).__name__}"
            )
        node = _Custom.apply(*inputs, fn=cls, user_ctx=ctx, out=out)
        ctx._originals[id(out)] = node  # a saved output stands for the recorded one
        return node


class _Custom(Op):
    """The graph node of a custom op: the engine sees an Op; the user's code sees Tensors."""

    def forward(node, *arrays: Any, fn: type[Function], user_ctx: FunctionCtx, out: Tensor):
        # The user's forward already ran on Tensors (Function.apply): hand its result over.
        node.fn, node.user_ctx, node.out_device = fn, user_ctx, out.device
        return out._data

    def backward(node, grad: Any) -> Any:
        fn, user_ctx = node.fn, node.user_ctx
        recording = isinstance(grad, Tensor)  # create_graph: the engine passes a Tensor
        if recording:
            user_ctx._recording = True
            try:
                with enable_grad():
                    grads = fn.backward(user_ctx, grad)
            finally:
                user_ctx._recording = False
        else:
            with no_grad():
                grads = fn.backward(user_ctx, Tensor._wrap(grad, node.out_device, node.backend))
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(node.parents):
            raise RuntimeError(
                f"{fn.__name__}.backward returned {len(grads)} gradients for "
                f"{len(node.parents)} inputs"
            )
        result = []
        for i, (g, parent) in enumerate(zip(grads, node.parents)):
            if g is None or not isinstance(parent, Tensor):
                result.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"{fn.__name__}.backward: gradient {i} is not a Tensor or None")
            if tuple(g.shape) != tuple(parent.shape):
                raise RuntimeError(
                    f"{fn.__name__}.backward: gradient {i} has shape {tuple(g.shape)}, but input "
                    f"{i} has shape {tuple(parent.shape)}"
                )
            result.append(g if recording else g._data)
        return tuple(result)

    def name(node) -> str:
        fn = node.__dict__.get("fn")  # (a backward without retain_graph clears the node)
        return "CustomFunction" if fn is None else fn.__name__
