"""AdaGrad: a learning rate per weight, shrinking with the sum of its squared gradients."""

from __future__ import annotations

from typing import Any

from tinygrad_edu.optim.optimizer import Optimizer, check_hyperparameter


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan and Singer, 2011), as PyTorch's ``torch.optim.Adagrad``.

    In the chapter's notation (weight w_i, loss J, learning rate alpha, g_i = dJ/dw_i, and G_i the
    sum of the squares of every gradient w_i has had so far)::

        G_i := G_i + g_i^2
        w_i := w_i - alpha / sqrt(G_i + eps) * g_i

    In PyTorch's (param p, lr gamma, step t counted from 1, accumulator ``sum``)::

        g = g + weight_decay * p
        clr = gamma / (1 + (t - 1) * lr_decay)
        sum = sum + g * g                  (sum starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(sum) + eps)

    NOTE: PyTorch adds eps *outside* the square root; the chapter puts it inside. Both only guard
    against dividing by zero, but the numbers differ while G is tiny. This library follows PyTorch.

    Weights that have seen large gradients slow down; rarely-updated weights (sparse features) keep
    a large step. Because G only grows, the steps shrink for ever, which can stop training early:
    AdaDelta and RMSprop replace the sum by a running average.
    """

    _kernel = "adagrad_step"

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_hyperparameter(name, key, group[key])

    def _init_state(self, backend: Any, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        value = group["initial_accumulator_value"]
        return {"step": 0, "sum": backend.full(p.shape, value, p.dtype)}

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _update(self, backend: Any, p: Any, grad: Any, group: dict, state: dict) -> None:
        self._apply(backend.adagrad_step, p._data, grad._data, state, group)

    def _apply(
        self, step_fn: Any, param: Any, grad: Any, state: dict, group: dict, check: bool = True
    ) -> None:
        step_fn(
            param,
            grad,
            state["sum"],
            step=state["step"],
            lr=group["lr"],
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            check=check,
        )
