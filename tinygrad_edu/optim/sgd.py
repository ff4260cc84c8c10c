"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from tinygrad_edu.errors import InputError
from tinygrad_edu.optim.optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    r"""Gradient descent with momentum (PyTorch's ``torch.optim.SGD``).

    In the chapter's notation (weights w, loss J, learning rate alpha, gradient g = dJ/dw evaluated
    on a mini-batch, velocity z, momentum coefficient beta)::

        plain:      w := w - alpha * g
        momentum:   z_t = beta * z_{t-1} + g(w_{t-1})
                    w_t = w_{t-1} - alpha * z_t
        Nesterov:   z_t = beta * z_{t-1} + g(w_{t-1} - alpha * beta * z_{t-1})   (look ahead)
                    w_t = w_{t-1} - alpha * z_t

    In PyTorch's (param p, lr gamma, momentum mu, dampening tau, weight decay lambda, buffer b)::

        g = g + lambda * p
        b_t = mu * b_{t-1} + (1 - tau) * g        (b_1 = g: the first buffer is not dampened)
        g = g + mu * b_t  if nesterov  else  b_t
        p = p - gamma * g

    With tau = 0 the momentum rule is the chapter's (z is b, beta is mu, alpha is gamma).

    Nesterov, two ways. The chapter evaluates the gradient at a look-ahead point: where momentum
    alone would carry the weights. (The chapter writes that point as w - beta * z, which is the
    same thing when the learning rate is folded into the velocity; with z as above, momentum alone
    moves w by alpha * beta * z.) PyTorch evaluates the gradient at the stored parameter and
    applies ``g + mu * b`` after updating the buffer. The two produce the same iterates, up to a
    change of variables. Write v = -alpha * z for the velocity in weight units, so the chapter's
    rule is ``v_t = mu v_{t-1} - alpha g(w_{t-1} + mu v_{t-1})``, ``w_t = w_{t-1} + v_t``, and
    name the look-ahead point w'_t = w_t + mu v_t. Then the gradient is taken at w'_{t-1}, and

        w'_t = w_{t-1} + v_t + mu v_t = (w'_{t-1} - mu v_{t-1}) + v_t + mu v_t
             = w'_{t-1} - alpha g(w'_{t-1}) + mu v_t            (v_t - mu v_{t-1} = -alpha g)
             = w'_{t-1} - alpha (g(w'_{t-1}) + mu z_t)          (v_t = -alpha z_t)

    which is PyTorch's update with p = w' and b = z. So PyTorch's parameter *is* the look-ahead
    point: it needs only the one gradient that backprop computes at the stored weights, instead of
    moving the weights forward for the backward pass and back again. Both start at the same
    point (v_0 = 0), see the same gradients and velocities, and differ at every step by mu * v_t,
    which vanishes as the method converges. (Exact for a constant learning rate.)

    Args:
        params: Tensors, or dicts ``{"params": [...], **options}`` (parameter groups).
        lr: the learning rate (required).
        momentum: mu >= 0; 0 is plain gradient descent.
        dampening: tau, scales the new gradient in the buffer by (1 - tau).
        weight_decay: lambda >= 0, L2 penalty (0.5 * lambda * |w|^2 added to J).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    _kernel = "sgd_step"

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_hyperparameter(name, "lr", group["lr"])
        check_hyperparameter(name, "momentum", group["momentum"])
        check_hyperparameter(name, "dampening", group["dampening"], low=-float("inf"))
        check_hyperparameter(name, "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise InputError(
                f"{name}: Nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _init_state(self, backend: Any, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        # The buffer is made on the first step with momentum (see _update).
        return {"step": 0, "momentum_buffer": None}

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, backend: Any, p: Any, grad: Any, group: dict, state: dict) -> None:
        first = group["momentum"] != 0 and state["momentum_buffer"] is None
        if first:
            state["momentum_buffer"] = backend.zeros_like(p._data)
        self._apply(backend.sgd_step, p._data, grad._data, state, group, first=first)

    def _apply(
        self,
        step_fn: Any,
        param: Any,
        grad: Any,
        state: dict,
        group: dict,
        check: bool = True,
        first: bool = False,
    ) -> None:
        momentum = group["momentum"]
        step_fn(
            param,
            grad,
            state["momentum_buffer"] if momentum != 0 else None,
            lr=group["lr"],
            momentum=momentum,
            # NOTE: PyTorch's first buffer is the gradient itself, undamped
            dampening=0 if first else group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            check=check,
        )
