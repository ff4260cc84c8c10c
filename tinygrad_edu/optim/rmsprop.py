"""RMSprop: divide each weight's gradient by a running root-mean-square of its recent gradients."""

from __future__ import annotations

from typing import Any

from tinygrad_edu.optim.optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, Coursera lecture 6e, 2012), as PyTorch's ``torch.optim.RMSprop``.

    In the chapter's notation (weight w, loss J, learning rate alpha, g = dJ/dw, decay rate beta)::

        E[g^2]_t = beta * E[g^2]_{t-1} + (1 - beta) * g^2
        w := w - alpha / (sqrt(E[g^2]_t) + eps) * g

    In PyTorch's (param p, lr gamma, smoothing constant ``alpha``, ``square_avg`` is E[g^2])::

        g = g + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        if centered:   grad_avg = alpha * grad_avg + (1 - alpha) * g
                       avg = sqrt(square_avg - grad_avg^2) + eps
        else:          avg = sqrt(square_avg) + eps
        if momentum > 0:   buf = momentum * buf + g / avg;   p = p - gamma * buf
        else:              p = p - gamma * g / avg

    NOTE: PyTorch's ``alpha`` is the decay rate (the chapter's beta), not the learning rate; the
    learning rate is ``lr``. ``centered`` divides by an estimate of the gradient's standard
    deviation instead of its root-mean-square.

    AdaGrad's sum becomes a running average, so the steps adapt to recent gradients instead of
    shrinking for ever: a sound default for recurrent networks and non-stationary problems.
    """

    _kernel = "rmsprop_step"

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            check_hyperparameter(name, key, group[key])

    def _init_state(self, backend: Any, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "square_avg": backend.zeros_like(p._data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = backend.zeros_like(p._data)
        if group["centered"]:
            state["grad_avg"] = backend.zeros_like(p._data)
        return state

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("momentum_buffer",) if group["momentum"] > 0 else ())
            + (("grad_avg",) if group["centered"] else ())
        )

    def _update(self, backend: Any, p: Any, grad: Any, group: dict, state: dict) -> None:
        # Options switched on after the first step get their buffers now, starting from zero.
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = backend.zeros_like(p._data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = backend.zeros_like(p._data)
        self._apply(backend.rmsprop_step, p._data, grad._data, state, group)

    def _apply(
        self, step_fn: Any, param: Any, grad: Any, state: dict, group: dict, check: bool = True
    ) -> None:
        momentum, centered = group["momentum"], bool(group["centered"])
        step_fn(
            param,
            grad,
            state["square_avg"],
            state["momentum_buffer"] if momentum > 0 else None,
            state["grad_avg"] if centered else None,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=momentum,
            centered=centered,
            check=check,
        )
