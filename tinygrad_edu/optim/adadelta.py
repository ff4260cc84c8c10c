"""AdaDelta: AdaGrad with running averages, and a step measured in the weights' own units."""

from __future__ import annotations

from typing import Any

from tinygrad_edu.optim.optimizer import Optimizer, check_hyperparameter


class Adadelta(Optimizer):
    r"""AdaDelta (Zeiler, 2012), as PyTorch's ``torch.optim.Adadelta``.

    In the chapter's notation (weight w, loss J, g = dJ/dw, decay rate rho), with E[.] a running
    average that forgets the past at rate rho::

        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g^2
        dw_t      = - sqrt(E[dw^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g
        E[dw^2]_t = rho * E[dw^2]_{t-1} + (1 - rho) * dw_t^2
        w := w + alpha * dw_t

    In PyTorch's (param p, lr gamma; ``square_avg`` is E[g^2], ``acc_delta`` is E[dw^2])::

        g = g + weight_decay * p
        square_avg = rho * square_avg + (1 - rho) * g * g
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        p = p - gamma * delta

    Zeiler's method has no learning rate (alpha = 1, PyTorch's default lr=1.0): the ratio of the
    two root-mean-squares gives the step the units of w. Like RMSprop, the averages forget old
    gradients, so steps do not shrink for ever as AdaGrad's do. The eps inside the numerator also
    sets the size of the first steps (sqrt(eps)), so the start can be slow.
    """

    _kernel = "adadelta_step"

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
    ) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_hyperparameter(name, "lr", group["lr"])
        check_hyperparameter(name, "rho", group["rho"], high=1.0)
        check_hyperparameter(name, "eps", group["eps"])
        check_hyperparameter(name, "weight_decay", group["weight_decay"])

    def _init_state(self, backend: Any, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": 0,
            "square_avg": backend.zeros_like(p._data),
            "acc_delta": backend.zeros_like(p._data),
        }

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg", "acc_delta")

    def _update(self, backend: Any, p: Any, grad: Any, group: dict, state: dict) -> None:
        self._apply(backend.adadelta_step, p._data, grad._data, state, group)

    def _apply(
        self, step_fn: Any, param: Any, grad: Any, state: dict, group: dict, check: bool = True
    ) -> None:
        step_fn(
            param,
            grad,
            state["square_avg"],
            state["acc_delta"],
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            check=check,
        )
