"""Adam and AdamW: momentum on the gradient, RMSprop's scaling, and bias correction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinygrad_edu.optim.optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    r"""Adam, "adaptive moment estimation" (Kingma and Ba, 2015), as ``torch.optim.Adam``.

    In the chapter's notation (weight w, loss J, learning rate alpha, g = dJ/dw, step t from 1)::

        m_t = beta1 * m_{t-1} + (1 - beta1) * g          first moment: momentum
        v_t = beta2 * v_{t-1} + (1 - beta2) * g^2        second moment: RMSprop's average
        m^_t = m_t / (1 - beta1^t),   v^_t = v_t / (1 - beta2^t)     bias correction
        w := w - alpha * m^_t / (sqrt(v^_t) + eps)

    m and v start at zero, so early on they underestimate the true averages; dividing by
    (1 - beta^t) undoes exactly that bias (it tends to 1 as t grows).

    In PyTorch's (param p, lr gamma; ``exp_avg`` is m, ``exp_avg_sq`` is v)::

        g = g + weight_decay * p                      (Adam: L2 penalty through the gradient)
        p = p * (1 - gamma * weight_decay)            (AdamW, decoupled_weight_decay=True)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v); use v_max for v        (amsgrad=True)
        p = p - gamma / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The last line is the chapter's, rearranged so that no bias-corrected copies of m and v are
    made: gamma / (1 - beta1^t) * m is alpha * m^, and sqrt(v) / sqrt(1 - beta2^t) is sqrt(v^).

    A robust default for most networks: little tuning of lr is needed. Prefer AdamW when you
    want weight decay (see ``AdamW``).
    """

    _kernel = "adam_step"

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_hyperparameter(name, "lr", group["lr"])
        betas = group["betas"]
        if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyperparameter(name, "betas[0]", betas[0], high=1.0, high_open=True)
        check_hyperparameter(name, "betas[1]", betas[1], high=1.0, high_open=True)
        check_hyperparameter(name, "eps", group["eps"])
        check_hyperparameter(name, "weight_decay", group["weight_decay"])

    def _init_state(self, backend: Any, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        state = {
            "step": 0,
            "exp_avg": backend.zeros_like(p._data),
            "exp_avg_sq": backend.zeros_like(p._data),
        }
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = backend.zeros_like(p._data)
        return state

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, backend: Any, p: Any, grad: Any, group: dict, state: dict) -> None:
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # amsgrad switched on after step 1
            state["max_exp_avg_sq"] = backend.zeros_like(p._data)
        self._apply(backend.adam_step, p._data, grad._data, state, group)

    def _apply(
        self, step_fn: Any, param: Any, grad: Any, state: dict, group: dict, check: bool = True
    ) -> None:
        amsgrad = bool(group["amsgrad"])
        beta1, beta2 = group["betas"]
        step_fn(
            param,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["max_exp_avg_sq"] if amsgrad else None,
            step=state["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=amsgrad,
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
            check=check,
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as ``torch.optim.AdamW``.

    In the chapter's notation, with decay rate lambda, the weights shrink directly before the
    Adam step, instead of lambda * w being added to the gradient::

        w := w - alpha * lambda * w
        w := w - alpha * m^_t / (sqrt(v^_t) + eps)        (m, v from g alone, as in Adam)

    PyTorch: ``p = p * (1 - lr * weight_decay)``, then Adam's update with the raw gradient.

    Why decouple: with Adam's L2 form, the penalty's gradient lambda * w is divided by
    sqrt(v^) like everything else, so weights with large gradients are barely regularised.
    Decoupled decay shrinks every weight at the same rate lr * lambda. Default weight_decay=1e-2.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)
