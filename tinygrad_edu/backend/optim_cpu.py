"""Optimizer steps as Numba kernels: one pass over a parameter and its state, no temporaries.

Same names and signatures as ``optim_reference`` (read that module for the maths and the calling
conventions); the tests hold the two to the same numbers.

Each rule is three functions, read top to bottom (``Optimizer.step`` -> ``<rule>_step`` -> its
loop -> its update):

- ``<rule>_step`` is the public kernel: it checks the arrays, gets the kernel's scalars from
  ``optim_reference.<rule>_scalars`` (per-step constants in float64, everything rounded to the
  param's dtype, so float32 params are updated in float32 arithmetic, as numpy and PyTorch do)
  and runs the loop. With ``check=False`` it skips the checks and trusts its arrays: 1-D,
  C-contiguous, writeable, of one float dtype and length. The optimizers pass that on flat
  buffers they checked once (``tinygrad_edu/optim/flat.py``): for a small network, the checks
  cost more than the update.
- ``_<rule>_loop`` is a ``Kernel`` (``backend/jit.py``): the loop over the flattened arrays in
  a parallel build (``prange``; element ``i`` reads and writes only index ``i``) and a serial
  one, used below ``config.PARALLEL_MIN`` elements where waking the thread pool costs more than
  the loop. ``_<rule>_loop(n)`` picks the build for ``n`` elements.
- ``_<rule>_update`` is the maths for one element: old values in as scalars, new ones out, so
  race-free by construction. It is written once, here, and the CUDA backend compiles the same
  Python function (``.py_func``) as a device function. (Here and not in a module of its own:
  Numba's disk cache notices edits to the file that defines a kernel, not to the files of the
  functions the kernel calls, so the rules live beside the loops that inline them.)

Why scalars in, scalars out: each element's values are loaded once and stored once. Measured on
Adam over a million float32 elements, one thread: a loop body that reads and writes the arrays
in place (``m[i] = ...; v[i] = ...; p[i] -= ...``) was about 10x slower, probably because the
compiler cannot rule out that the arrays overlap, so it reloads after every store and does not
vectorise; a helper taking the arrays and ``i`` was over 100x slower (reference counting of every
array on every call).
"""

import math

import numpy as np
from numba import config as numba_config
from numba import prange

from tinygrad_edu.backend import optim_reference as ref
from tinygrad_edu.backend.jit import Kernel, jit
from tinygrad_edu.backend.optim_reference import (
    check_adam_options,
    check_rmsprop_options,
    check_sgd_options,
    check_step_arrays,
)
from tinygrad_edu.errors import InputError

__all__ = ["adadelta_step", "adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]

# Compiled (njit or CUDA), math.sqrt and np.sqrt are the same correctly rounded square root that
# keeps the argument's float type, and a negative argument gives NaN. The CUDA simulator runs the
# rules as Python, where math.sqrt raises on a negative argument (which rounding can produce in
# RMSprop's centered variance), so it gets numpy's.
sqrt = np.sqrt if numba_config.ENABLE_CUDASIM else math.sqrt

# An unused buffer (momentum off, not centered, no amsgrad) is passed to the kernels as an empty
# array of the param's dtype, so that each kernel compiles once per dtype rather than once per
# combination of options. NOTE: kernels must never index a stand-in; where the update function
# wants a value for it, they pass some other in-bounds value, which the update ignores.
_UNUSED = {np.dtype(t): np.empty(0, t) for t in (np.float32, np.float64)}


def _flat(step_name: str, name: str, arr) -> np.ndarray:
    """A 1-D view of a C-contiguous array (the kernels write through it)."""
    if not arr.flags.c_contiguous:
        raise InputError(f"{step_name}: {name} must be C-contiguous (shape {arr.shape})")
    return arr.reshape(-1)


def _prepare(step_name: str, param, grad, **buffers):
    """Check the arrays; return flat views of param, grad and each buffer (None stays None)."""
    check_step_arrays(step_name, param, grad, **buffers)
    if not param.flags.writeable:
        raise InputError(f"{step_name}: param is read-only")
    flat = [_flat(step_name, "param", param), _flat(step_name, "grad", np.ascontiguousarray(grad))]
    for name, arr in buffers.items():
        flat.append(None if arr is None else _flat(step_name, name, arr))
    return flat


# ----- SGD, momentum, Nesterov -----


def sgd_step(
    param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov, check=True
):
    """In place: see ``optim_reference.sgd_step``.

    ``check=False`` trusts the arrays: 1-D, C-contiguous, writeable, of one float dtype and length
    (the optimizers' flat buffers, checked once); they go straight to the loop.
    """
    if check:
        check_sgd_options(momentum_buffer, momentum)
        param, grad, momentum_buffer = _prepare(
            "sgd_step", param, grad, momentum_buffer=momentum_buffer
        )
    buf = _UNUSED[param.dtype] if momentum_buffer is None else momentum_buffer
    scalars = ref.sgd_scalars(
        param.dtype, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov,
    )  # fmt: skip
    _sgd_loop(param.size)(param, grad, buf, *scalars)


@Kernel
def _sgd_loop(p, g, buf, lr, momentum, dampening_c, weight_decay, nesterov):
    has_buf = momentum != 0
    for i in prange(p.size):
        b = buf[i] if has_buf else g[i]  # g[i]: an ignored stand-in
        p[i], b = _sgd_update(p[i], g[i], b, lr, momentum, dampening_c, weight_decay, nesterov)
        if has_buf:
            buf[i] = b


@jit()
def _sgd_update(p, g, buf, lr, momentum, dampening_c, weight_decay, nesterov):
    """One element -> (new p, new buf); dampening_c = 1 - dampening. buf is ignored (and returned
    as given) when momentum == 0.

    g = g + weight_decay * p
    if momentum != 0:   buf = momentum * buf + (1 - dampening) * g
                        g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        buf = momentum * buf + dampening_c * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


# ----- AdaGrad -----


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay, weight_decay, eps, check=True):
    """In place: see ``optim_reference.adagrad_step``.

    ``check=False`` trusts the arrays: 1-D, C-contiguous, writeable, of one float dtype and length
    (the optimizers' flat buffers, checked once); they go straight to the loop.
    """
    if check:
        param, grad, state_sum = _prepare("adagrad_step", param, grad, state_sum=state_sum)
    scalars = ref.adagrad_scalars(
        param.dtype, step=step, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps
    )
    _adagrad_loop(param.size)(param, grad, state_sum, *scalars)


@Kernel
def _adagrad_loop(p, g, state_sum, clr, weight_decay, eps):
    for i in prange(p.size):
        p[i], state_sum[i] = _adagrad_update(p[i], g[i], state_sum[i], clr, weight_decay, eps)


@jit()
def _adagrad_update(p, g, state_sum, clr, weight_decay, eps):
    """One element -> (new p, new state_sum); clr = lr / (1 + (step - 1) * lr_decay).

    g = g + weight_decay * p
    sum = sum + g * g
    p = p - clr * g / (sqrt(sum) + eps)
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    state_sum = state_sum + g * g
    return p - clr * g / (sqrt(state_sum) + eps), state_sum


# ----- AdaDelta -----


def adadelta_step(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, check=True):
    """In place: see ``optim_reference.adadelta_step``.

    ``check=False`` trusts the arrays: 1-D, C-contiguous, writeable, of one float dtype and length
    (the optimizers' flat buffers, checked once); they go straight to the loop.
    """
    if check:
        param, grad, square_avg, acc_delta = _prepare(
            "adadelta_step", param, grad, square_avg=square_avg, acc_delta=acc_delta
        )
    scalars = ref.adadelta_scalars(param.dtype, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    _adadelta_loop(param.size)(param, grad, square_avg, acc_delta, *scalars)


@Kernel
def _adadelta_loop(p, g, square_avg, acc_delta, lr, rho, rho_c, eps, weight_decay):
    for i in prange(p.size):
        p[i], square_avg[i], acc_delta[i] = _adadelta_update(
            p[i], g[i], square_avg[i], acc_delta[i], lr, rho, rho_c, eps, weight_decay
        )


@jit()
def _adadelta_update(p, g, square_avg, acc_delta, lr, rho, rho_c, eps, weight_decay):
    """One element -> (new p, new square_avg, new acc_delta); rho_c = 1 - rho.

    g = g + weight_decay * p
    square_avg = rho * square_avg + (1 - rho) * g * g
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
    acc_delta = rho * acc_delta + (1 - rho) * delta * delta
    p = p - lr * delta
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg = rho * square_avg + rho_c * g * g
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
    acc_delta = rho * acc_delta + rho_c * delta * delta
    return p - lr * delta, square_avg, acc_delta


# ----- RMSprop -----


def rmsprop_step(
    param, grad, square_avg, momentum_buffer, grad_avg, *, lr, alpha, eps, weight_decay,
    momentum, centered, check=True,
):  # fmt: skip
    """In place: see ``optim_reference.rmsprop_step``.

    ``check=False`` trusts the arrays: 1-D, C-contiguous, writeable, of one float dtype and length
    (the optimizers' flat buffers, checked once); they go straight to the loop.
    """
    if check:
        check_rmsprop_options(momentum_buffer, grad_avg, momentum=momentum, centered=centered)
        param, grad, square_avg, momentum_buffer, grad_avg = _prepare(
            "rmsprop_step", param, grad, square_avg=square_avg, momentum_buffer=momentum_buffer,
            grad_avg=grad_avg,
        )  # fmt: skip
    unused = _UNUSED[param.dtype]
    buf = unused if momentum_buffer is None else momentum_buffer
    gavg = unused if grad_avg is None else grad_avg
    scalars = ref.rmsprop_scalars(
        param.dtype, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
        centered=centered,
    )  # fmt: skip
    _rmsprop_loop(param.size)(param, grad, square_avg, buf, gavg, *scalars)


@Kernel
def _rmsprop_loop(p, g, sq, buf, gavg, lr, alpha, alpha_c, eps, weight_decay, momentum, centered):
    has_buf = momentum != 0
    for i in prange(p.size):
        b = buf[i] if has_buf else g[i]  # g[i]: an ignored stand-in
        a = gavg[i] if centered else g[i]
        p[i], sq[i], b, a = _rmsprop_update(
            p[i], g[i], sq[i], b, a, lr, alpha, alpha_c, eps, weight_decay, momentum, centered
        )
        if has_buf:
            buf[i] = b
        if centered:
            gavg[i] = a


@jit()
def _rmsprop_update(p, g, sq, buf, gavg, lr, alpha, alpha_c, eps, weight_decay, momentum, centered):
    """One element -> (new p, new square_avg, new buf, new grad_avg); alpha_c = 1 - alpha. buf
    is ignored unless momentum != 0, gavg unless centered (each is then returned as given).

    g = g + weight_decay * p
    square_avg = alpha * square_avg + (1 - alpha) * g * g
    if centered:  grad_avg = alpha * grad_avg + (1 - alpha) * g
                  avg = sqrt(square_avg - grad_avg^2) + eps
    else:         avg = sqrt(square_avg) + eps
    if momentum > 0:  buf = momentum * buf + g / avg;   p = p - lr * buf
    else:             p = p - lr * g / avg
    """
    if weight_decay != 0:
        g = g + weight_decay * p
    sq = alpha * sq + alpha_c * g * g
    if centered:
        gavg = alpha * gavg + alpha_c * g
        avg = sqrt(sq - gavg * gavg) + eps
    else:
        avg = sqrt(sq) + eps
    if momentum != 0:
        buf = momentum * buf + g / avg
        p = p - lr * buf
    else:
        p = p - lr * g / avg
    return p, sq, buf, gavg


# ----- Adam and AdamW -----


def adam_step(
    param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1, beta2, eps,
    weight_decay, amsgrad, decoupled_weight_decay, check=True,
):  # fmt: skip
    """In place: see ``optim_reference.adam_step``.

    ``check=False`` trusts the arrays: 1-D, C-contiguous, writeable, of one float dtype and length
    (the optimizers' flat buffers, checked once); they go straight to the loop.
    """
    if check:
        check_adam_options(max_exp_avg_sq, amsgrad=amsgrad, step=step)
        param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq = _prepare(
            "adam_step", param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
            max_exp_avg_sq=max_exp_avg_sq,
        )  # fmt: skip
    v_max = _UNUSED[param.dtype] if max_exp_avg_sq is None else max_exp_avg_sq
    scalars = ref.adam_scalars(
        param.dtype, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, amsgrad=amsgrad, decoupled_weight_decay=decoupled_weight_decay,
    )  # fmt: skip
    _adam_loop(param.size)(param, grad, exp_avg, exp_avg_sq, v_max, *scalars)


@Kernel
def _adam_loop(
    p, g, m, v, v_max, beta1, beta1_c, beta2, beta2_c, eps, step_size, bc2_sqrt, weight_decay,
    decay, amsgrad,
):  # fmt: skip
    for i in prange(p.size):
        vm = v_max[i] if amsgrad else v[i]  # v[i]: an ignored stand-in
        p[i], m[i], v[i], vm = _adam_update(
            p[i], g[i], m[i], v[i], vm, beta1, beta1_c, beta2, beta2_c, eps, step_size,
            bc2_sqrt, weight_decay, decay, amsgrad,
        )  # fmt: skip
        if amsgrad:
            v_max[i] = vm


@jit()
def _adam_update(
    p, g, m, v, v_max, beta1, beta1_c, beta2, beta2_c, eps, step_size, bc2_sqrt, weight_decay,
    decay, amsgrad,
):  # fmt: skip
    """One element -> (new p, new m, new v, new v_max). v_max is ignored (and returned as given)
    unless amsgrad.

    beta*_c = 1 - beta*; step_size = lr / (1 - beta1^step); bc2_sqrt = sqrt(1 - beta2^step).
    Adam: weight_decay as given, decay = 1.  AdamW: weight_decay = 0, decay = 1 - lr * wd.

    p = p * decay;  g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g                       (exp_avg)
    v = beta2 * v + (1 - beta2) * g * g                   (exp_avg_sq)
    v_max = max(v_max, v);  use v_max for v  if amsgrad
    p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
    """
    p = p * decay
    if weight_decay != 0:
        g = g + weight_decay * p
    m = beta1 * m + beta1_c * g
    v = beta2 * v + beta2_c * g * g
    second_moment = v
    if amsgrad:
        v_max = v if (v > v_max or v != v) else v_max  # NaN-propagating, as numpy and PyTorch
        second_moment = v_max
    return p - step_size * m / (sqrt(second_moment) / bc2_sqrt + eps), m, v, v_max
