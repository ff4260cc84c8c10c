"""Optimizer steps in plain numpy: the executable specification of every update rule.

Each function updates ``param`` and its state buffers in place, exactly as the matching
``torch.optim`` optimizer does (its single-tensor code path). The fast backends (``optim_cpu``,
``cuda_optim``) implement the same names and signatures and are tested against these; they share
the per-element form of each rule (written once in ``optim_cpu``), and the option checks and
per-step scalars below.

Conventions shared by every step function and every backend:

- arrays come first, positionally: ``param``, ``grad``, then the state buffers, all of one shape
  and one float dtype (``float32`` or ``float64``); ``param`` and the buffers change in place.
- a buffer that an option switches off (the momentum buffer when ``momentum == 0``, ``grad_avg``
  when ``centered`` is False, ``max_exp_avg_sq`` when ``amsgrad`` is False) is passed as ``None``.
- everything else is a keyword-only Python scalar; ``step`` is the 1-based count of updates of
  this param *including* the current one.
- ``check=False`` skips the checks of the arrays and options: the caller vouches for them (the
  optimizers' flat buffers, checked once per step in ``tinygrad_edu/optim/flat.py``).

Nothing is returned. The notation in the comments is PyTorch's: ``p`` param, ``g`` gradient.
"""

import math

import numpy as np

from tinygrad_edu.errors import InputError

__all__ = [
    "adadelta_step",
    "adagrad_step",
    "adam_step",
    "check_adam_options",
    "check_rmsprop_options",
    "check_sgd_options",
    "check_step_arrays",
    "rmsprop_step",
    "sgd_step",
]


def check_step_arrays(step_name: str, param, grad, **buffers) -> None:
    """Raise ValueError unless ``grad`` and every non-None buffer match ``param``'s shape and dtype.

    ``param`` must have a float32 or float64 dtype. Every backend calls this before it touches
    memory, so a mismatch is reported in words instead of being broadcast silently (numpy) or
    raised as a typing error (Numba).
    """
    if param.dtype not in (np.float32, np.float64):
        raise InputError(f"{step_name}: param dtype must be float32 or float64, got {param.dtype}")
    for name, arr in (("grad", grad), *buffers.items()):
        if arr is None:
            continue
        if tuple(arr.shape) != tuple(param.shape):
            raise InputError(
                f"{step_name}: {name} has shape {tuple(arr.shape)} but param has shape "
                f"{tuple(param.shape)}"
            )
        if arr.dtype != param.dtype:
            raise InputError(
                f"{step_name}: {name} has dtype {arr.dtype} but param has dtype {param.dtype}"
            )


def _require(step_name: str, condition: bool, message: str) -> None:
    if not condition:
        raise InputError(f"{step_name}: {message}")


# The checks of which optional buffers are passed (and of ``step``), shared by every backend.


def check_sgd_options(momentum_buffer, momentum) -> None:
    """Raise ValueError unless a momentum_buffer is passed exactly when momentum != 0."""
    _require(
        "sgd_step",
        (momentum_buffer is None) == (momentum == 0),
        "pass a momentum_buffer exactly when momentum != 0",
    )


def check_rmsprop_options(momentum_buffer, grad_avg, *, momentum, centered) -> None:
    """Raise ValueError unless momentum_buffer is passed exactly when momentum != 0 and grad_avg
    exactly when centered."""
    _require(
        "rmsprop_step",
        (momentum_buffer is None) == (momentum == 0),
        "pass a momentum_buffer exactly when momentum != 0",
    )
    _require(
        "rmsprop_step",
        (grad_avg is None) != bool(centered),
        "pass a grad_avg exactly when centered is True",
    )


def check_adam_options(max_exp_avg_sq, *, amsgrad, step) -> None:
    """Raise ValueError unless max_exp_avg_sq is passed exactly when amsgrad and step >= 1."""
    _require(
        "adam_step",
        (max_exp_avg_sq is None) != bool(amsgrad),
        "pass a max_exp_avg_sq exactly when amsgrad is True",
    )
    _require("adam_step", step >= 1, f"step must be >= 1, got {step}")


# ----- SGD, momentum, Nesterov -----


def sgd_step(
    param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov, check=True
):
    """g = g + weight_decay * p
    if momentum != 0:   buf = momentum * buf + (1 - dampening) * g
                        g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g

    NOTE: PyTorch starts the buffer as a copy of the first gradient (no dampening). Callers get
    that by passing a zero buffer and ``dampening=0`` on a parameter's first step.
    """
    if check:
        check_step_arrays("sgd_step", param, grad, momentum_buffer=momentum_buffer)
        check_sgd_options(momentum_buffer, momentum)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if momentum != 0:
        momentum_buffer[...] = momentum * momentum_buffer + (1 - dampening) * grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * grad


# ----- AdaGrad -----


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay, weight_decay, eps, check=True):
    """g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    sum = sum + g * g
    p = p - clr * g / (sqrt(sum) + eps)
    """
    if check:
        check_step_arrays("adagrad_step", param, grad, state_sum=state_sum)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    param -= clr * grad / (np.sqrt(state_sum) + eps)


# ----- AdaDelta -----


def adadelta_step(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, check=True):
    """g = g + weight_decay * p
    square_avg = rho * square_avg + (1 - rho) * g * g
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
    acc_delta = rho * acc_delta + (1 - rho) * delta * delta
    p = p - lr * delta
    """
    if check:
        check_step_arrays("adadelta_step", param, grad, square_avg=square_avg, acc_delta=acc_delta)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg[...] = rho * square_avg + (1 - rho) * grad * grad
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
    acc_delta[...] = rho * acc_delta + (1 - rho) * delta * delta
    param -= lr * delta


# ----- RMSprop -----


def rmsprop_step(
    param,
    grad,
    square_avg,
    momentum_buffer,
    grad_avg,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    check=True,
):
    """g = g + weight_decay * p
    square_avg = alpha * square_avg + (1 - alpha) * g * g
    if centered:  grad_avg = alpha * grad_avg + (1 - alpha) * g
                  avg = sqrt(square_avg - grad_avg^2) + eps
    else:         avg = sqrt(square_avg) + eps
    if momentum > 0:  buf = momentum * buf + g / avg;   p = p - lr * buf
    else:             p = p - lr * g / avg
    """
    if check:
        check_step_arrays(
            "rmsprop_step",
            param,
            grad,
            square_avg=square_avg,
            momentum_buffer=momentum_buffer,
            grad_avg=grad_avg,
        )
        check_rmsprop_options(momentum_buffer, grad_avg, momentum=momentum, centered=centered)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg[...] = alpha * square_avg + (1 - alpha) * grad * grad
    if centered:
        grad_avg[...] = alpha * grad_avg + (1 - alpha) * grad
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum != 0:
        momentum_buffer[...] = momentum * momentum_buffer + grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * grad / avg


# ----- Adam and AdamW -----


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    *,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    decoupled_weight_decay,
    check=True,
):
    """Adam:  g = g + weight_decay * p          AdamW:  p = p * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * g                       (exp_avg)
    v = beta2 * v + (1 - beta2) * g * g                   (exp_avg_sq)
    v_max = max(v_max, v);  use v_max for v  if amsgrad
    p = p - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
    """
    if check:
        check_step_arrays(
            "adam_step",
            param,
            grad,
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            max_exp_avg_sq=max_exp_avg_sq,
        )
        check_adam_options(max_exp_avg_sq, amsgrad=amsgrad, step=step)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment) / math.sqrt(bias_correction2) + eps
    param -= (lr / bias_correction1) * exp_avg / denom


# ----- per-step scalars for the compiled kernels -----
# The Numba and CUDA kernels take their hyperparameters as scalars of the param's dtype. Per-step
# constants (bias corrections, decayed learning rates, 1 - beta) are worked out here in float64,
# then everything is rounded once to the param's dtype, so float32 params are updated in float32
# arithmetic, as numpy and PyTorch do.


def sgd_scalars(dtype, *, lr, momentum, dampening, weight_decay, nesterov):
    """(lr, momentum, dampening_c, weight_decay, nesterov) for ``sgd_update``."""
    s = dtype.type
    return s(lr), s(momentum), s(1.0 - dampening), s(weight_decay), bool(nesterov)


def adagrad_scalars(dtype, *, step, lr, lr_decay, weight_decay, eps):
    """(clr, weight_decay, eps) for ``adagrad_update``; clr in float64, then rounded once."""
    s = dtype.type
    clr = lr / (1.0 + (step - 1) * lr_decay)
    return s(clr), s(weight_decay), s(eps)


def adadelta_scalars(dtype, *, lr, rho, eps, weight_decay):
    """(lr, rho, rho_c, eps, weight_decay) for ``adadelta_update``."""
    s = dtype.type
    return s(lr), s(rho), s(1.0 - rho), s(eps), s(weight_decay)


def rmsprop_scalars(dtype, *, lr, alpha, eps, weight_decay, momentum, centered):
    """(lr, alpha, alpha_c, eps, weight_decay, momentum, centered) for ``rmsprop_update``."""
    s = dtype.type
    return (
        s(lr), s(alpha), s(1.0 - alpha), s(eps), s(weight_decay), s(momentum), bool(centered),
    )  # fmt: skip


def adam_scalars(
    dtype, *, step, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay
):
    """(beta1, beta1_c, beta2, beta2_c, eps, step_size, bc2_sqrt, weight_decay, decay, amsgrad)
    for ``adam_update``: the per-step constants in float64, each rounded once to ``dtype``."""
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    step_size = lr / bias_correction1
    bc2_sqrt = bias_correction2**0.5
    if decoupled_weight_decay:
        coupled_decay, decay = 0.0, 1.0 - lr * weight_decay
    else:
        coupled_decay, decay = weight_decay, 1.0
    s = dtype.type
    return (
        s(beta1), s(1.0 - beta1), s(beta2), s(1.0 - beta2), s(eps), s(step_size), s(bc2_sqrt),
        s(coupled_decay), s(decay), bool(amsgrad),
    )  # fmt: skip
