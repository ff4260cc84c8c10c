"""Optimizer steps as CUDA kernels: one fused kernel per rule, one pass over a parameter.

Same names and signatures as ``optim_reference`` (read that module for the maths and the calling
conventions); the tests hold the two to the same numbers. Built like ``optim_cpu``:

- ``_<rule>_update`` is ``optim_cpu._<rule>_update`` (the maths for one element, written once
  and shared with the CPU backend: old values in as scalars, new ones out) compiled as a CUDA
  device function;
- ``_<rule>_kernel`` is a grid-stride loop: thread t of the T threads in the grid updates
  elements t, t + T, ...; it reads ``param[i]``, ``grad[i]`` and each state buffer's ``[i]``
  once, and writes ``param[i]`` and each buffer's ``[i]`` once. An optimizer step is memory
  bound, so that single pass is what makes it fast (on a GPU it should run near the memory
  bandwidth: 7 float32 values moved per Adam element);
- the public ``<rule>_step`` checks the arrays, gets the kernel's scalars from
  ``optim_reference.<rule>_scalars`` (per-step constants in float64 on the host, everything rounded
  to the param's dtype, so float32 params are updated in float32) and launches.

Every step checks its arrays: ``check`` is in the signatures only because every backend's step
takes it (on the CPU, ``check=False`` serves the optimizers' flat buffers, which the GPU has not).

An unused buffer (momentum off, not centered, no amsgrad) is passed to the kernel as a
one-element stand-in of the param's dtype, so each kernel compiles once per dtype; the kernels
never touch it.
"""

from numba import cuda

from tinygrad_edu.backend import cuda_kernels as K
from tinygrad_edu.backend import optim_cpu
from tinygrad_edu.backend import optim_reference as ref
from tinygrad_edu.backend.optim_reference import (
    check_adam_options,
    check_rmsprop_options,
    check_sgd_options,
    check_step_arrays,
)
from tinygrad_edu.errors import InputError

__all__ = ["adadelta_step", "adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]

_UNUSED: dict = {}


def _grid(n: int) -> tuple[int, int]:
    threads = min(K.THREADS, 32 * -(-n // 32))
    return min(K.MAX_BLOCKS, -(-n // threads)), threads


def _stand_in(dtype):
    if dtype not in _UNUSED:
        _UNUSED[dtype] = cuda.device_array(1, dtype=dtype)
    return _UNUSED[dtype]


def _prepare(step_name: str, param, grad, **buffers):
    """Check the arrays; return flat views of param, grad and each buffer (or a stand-in)."""
    check_step_arrays(step_name, param, grad, **buffers)
    flat = []
    for name, arr in (("param", param), ("grad", grad), *buffers.items()):
        if arr is None:
            flat.append(_stand_in(param.dtype))
            continue
        if not getattr(arr, "__cuda_ndarray__", False):  # a numba device array
            raise TypeError(
                f"{step_name}: {name} is a {type(arr).__name__}, not a CUDA device array; the "
                "parameter, its gradient and the optimizer state must all be on the GPU"
            )
        if not arr.is_c_contiguous():
            raise InputError(f"{step_name}: {name} must be C-contiguous (shape {arr.shape})")
        flat.append(arr.reshape(arr.size) if arr.ndim != 1 else arr)
    return flat


# ----- SGD, momentum, Nesterov -----


_sgd_update = K.device_function(optim_cpu._sgd_update.py_func)


@cuda.jit
def _sgd_kernel(p, g, buf, lr, momentum, dampening_c, weight_decay, nesterov):
    """Thread t updates elements i = t, t + T, ...: p[i] and (with momentum) buf[i]."""
    has_buf = momentum != 0
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        b = buf[i] if has_buf else g[i]  # g[i]: an ignored stand-in
        p[i], b = _sgd_update(p[i], g[i], b, lr, momentum, dampening_c, weight_decay, nesterov)
        if has_buf:
            buf[i] = b


def sgd_step(
    param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov, check=True
):
    """In place: see ``optim_reference.sgd_step``."""
    check_sgd_options(momentum_buffer, momentum)
    p, g, buf = _prepare("sgd_step", param, grad, momentum_buffer=momentum_buffer)
    if p.size == 0:
        return
    scalars = ref.sgd_scalars(
        p.dtype, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov,
    )  # fmt: skip
    _sgd_kernel[_grid(p.size)](p, g, buf, *scalars)


# ----- AdaGrad -----


_adagrad_update = K.device_function(optim_cpu._adagrad_update.py_func)


@cuda.jit
def _adagrad_kernel(p, g, state_sum, clr, weight_decay, eps):
    """Thread t updates elements i = t, t + T, ...: p[i] and state_sum[i]."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i], state_sum[i] = _adagrad_update(p[i], g[i], state_sum[i], clr, weight_decay, eps)


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay, weight_decay, eps, check=True):
    """In place: see ``optim_reference.adagrad_step``."""
    p, g, acc = _prepare("adagrad_step", param, grad, state_sum=state_sum)
    if p.size == 0:
        return
    scalars = ref.adagrad_scalars(
        p.dtype, step=step, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps
    )
    _adagrad_kernel[_grid(p.size)](p, g, acc, *scalars)


# ----- AdaDelta -----


_adadelta_update = K.device_function(optim_cpu._adadelta_update.py_func)


@cuda.jit
def _adadelta_kernel(p, g, square_avg, acc_delta, lr, rho, rho_c, eps, weight_decay):
    """Thread t updates elements i = t, t + T, ...: p[i], square_avg[i], acc_delta[i]."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i], square_avg[i], acc_delta[i] = _adadelta_update(
            p[i], g[i], square_avg[i], acc_delta[i], lr, rho, rho_c, eps, weight_decay
        )


def adadelta_step(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, check=True):
    """In place: see ``optim_reference.adadelta_step``."""
    p, g, sq, acc = _prepare(
        "adadelta_step", param, grad, square_avg=square_avg, acc_delta=acc_delta
    )
    if p.size == 0:
        return
    scalars = ref.adadelta_scalars(p.dtype, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    _adadelta_kernel[_grid(p.size)](p, g, sq, acc, *scalars)


# ----- RMSprop -----


_rmsprop_update = K.device_function(optim_cpu._rmsprop_update.py_func)


@cuda.jit
def _rmsprop_kernel(p, g, sq, buf, gavg, lr, alpha, alpha_c, eps, weight_decay, momentum, centered):
    """Thread t updates elements i = t, t + T, ...: p[i], sq[i] and, when used, buf[i], gavg[i]."""
    has_buf = momentum != 0
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        b = buf[i] if has_buf else g[i]  # g[i]: an ignored stand-in
        a = gavg[i] if centered else g[i]
        p[i], sq[i], b, a = _rmsprop_update(
            p[i], g[i], sq[i], b, a, lr, alpha, alpha_c, eps, weight_decay, momentum, centered
        )
        if has_buf:
            buf[i] = b
        if centered:
            gavg[i] = a


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
    """In place: see ``optim_reference.rmsprop_step``."""
    check_rmsprop_options(momentum_buffer, grad_avg, momentum=momentum, centered=centered)
    p, g, sq, buf, gavg = _prepare(
        "rmsprop_step",
        param,
        grad,
        square_avg=square_avg,
        momentum_buffer=momentum_buffer,
        grad_avg=grad_avg,
    )
    if p.size == 0:
        return
    scalars = ref.rmsprop_scalars(
        p.dtype, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
        centered=centered,
    )  # fmt: skip
    _rmsprop_kernel[_grid(p.size)](p, g, sq, buf, gavg, *scalars)


# ----- Adam and AdamW -----


_adam_update = K.device_function(optim_cpu._adam_update.py_func)


@cuda.jit
def _adam_kernel(
    p, g, m, v, v_max, beta1, beta1_c, beta2, beta2_c, eps, step_size, bc2_sqrt, weight_decay,
    decay, amsgrad,
):  # fmt: skip
    """Thread t updates elements i = t, t + T, ...: p[i], m[i], v[i] and, with amsgrad,
    v_max[i]; 4 reads and 3 writes per element (5 and 4 with amsgrad)."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        vm = v_max[i] if amsgrad else v[i]  # v[i]: an ignored stand-in
        p[i], m[i], v[i], vm = _adam_update(
            p[i], g[i], m[i], v[i], vm, beta1, beta1_c, beta2, beta2_c, eps, step_size,
            bc2_sqrt, weight_decay, decay, amsgrad,
        )  # fmt: skip
        if amsgrad:
            v_max[i] = vm


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
    """In place: see ``optim_reference.adam_step``."""
    check_adam_options(max_exp_avg_sq, amsgrad=amsgrad, step=step)
    p, g, m, v, v_max = _prepare(
        "adam_step",
        param,
        grad,
        exp_avg=exp_avg,
        exp_avg_sq=exp_avg_sq,
        max_exp_avg_sq=max_exp_avg_sq,
    )
    if p.size == 0:
        return
    scalars = ref.adam_scalars(
        p.dtype, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, decoupled_weight_decay=decoupled_weight_decay,
    )  # fmt: skip
    _adam_kernel[_grid(p.size)](p, g, m, v, v_max, *scalars)
