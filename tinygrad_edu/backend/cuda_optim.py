"""Optimizer steps as CUDA kernels: one fused kernel per rule, one pass over a parameter.

Same names and signatures as ``optim_reference`` (read that module for the maths and the calling
conventions); the tests hold the two to the same numbers. Built like ``optim_cpu``:

- ``_<rule>_update(p, g, state..., hyperparameters...)`` is the maths for one element, taking the
  old values as scalars and returning the new ones;
- ``_<rule>_kernel`` is a grid-stride loop: thread t of the T threads in the grid updates
  elements t, t + T, ...; it reads ``param[i]``, ``grad[i]`` and each state buffer's ``[i]``
  once, and writes ``param[i]`` and each buffer's ``[i]`` once. An optimizer step is memory
  bound, so that single pass is what makes it fast (on a GPU it should run near the memory
  bandwidth: 7 float32 values moved per Adam element);
- the public ``<rule>_step`` checks the arrays, turns hyperparameters into scalars of the param's
  dtype (float32 params are updated in float32), works out per-step constants (bias corrections,
  decayed learning rates) in float64 on the host, and launches.

An unused buffer (momentum off, not centered, no amsgrad) is passed to the kernel as a
one-element stand-in of the param's dtype, so each kernel compiles once per dtype; the kernels
never touch it.
"""

from numba import cuda

from tinygrad_edu.backend import cuda_kernels as K
from tinygrad_edu.backend.optim_reference import check_step_arrays

__all__ = ["adadelta_step", "adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]

_sqrt = K._sqrt  # math.sqrt on a GPU, numpy's in the simulator (see cuda_kernels)
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
            raise ValueError(f"{step_name}: {name} must be C-contiguous (shape {arr.shape})")
        flat.append(arr.reshape(arr.size) if arr.ndim != 1 else arr)
    return flat


# ----- SGD, momentum, Nesterov -----


@K.device_function
def _sgd_update(p, g, buf, lr, momentum, dampening_c, weight_decay, nesterov):
    """One element -> (new p, new buf); dampening_c = 1 - dampening."""
    if weight_decay != 0:
        g = g + weight_decay * p
    if momentum != 0:
        buf = momentum * buf + dampening_c * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


@cuda.jit
def _sgd_kernel(p, g, buf, lr, momentum, dampening_c, weight_decay, nesterov):
    """Thread t updates elements i = t, t + T, ...: p[i] and (with momentum) buf[i]."""
    has_buf = momentum != 0
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        b = buf[i] if has_buf else g[i]  # g[i]: an ignored stand-in
        p[i], b = _sgd_update(p[i], g[i], b, lr, momentum, dampening_c, weight_decay, nesterov)
        if has_buf:
            buf[i] = b


def sgd_step(param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov):
    """In place: see ``optim_reference.sgd_step``."""
    if (momentum_buffer is None) != (momentum == 0):
        raise ValueError("sgd_step: pass a momentum_buffer exactly when momentum != 0")
    p, g, buf = _prepare("sgd_step", param, grad, momentum_buffer=momentum_buffer)
    if p.size == 0:
        return
    s = param.dtype.type
    _sgd_kernel[_grid(p.size)](
        p, g, buf, s(lr), s(momentum), s(1.0 - dampening), s(weight_decay), bool(nesterov)
    )


# ----- AdaGrad -----


@K.device_function
def _adagrad_update(p, g, state_sum, clr, weight_decay, eps):
    """One element -> (new p, new state_sum)."""
    if weight_decay != 0:
        g = g + weight_decay * p
    state_sum = state_sum + g * g
    return p - clr * g / (_sqrt(state_sum) + eps), state_sum


@cuda.jit
def _adagrad_kernel(p, g, state_sum, clr, weight_decay, eps):
    """Thread t updates elements i = t, t + T, ...: p[i] and state_sum[i]."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i], state_sum[i] = _adagrad_update(p[i], g[i], state_sum[i], clr, weight_decay, eps)


def adagrad_step(param, grad, state_sum, *, step, lr, lr_decay, weight_decay, eps):
    """In place: see ``optim_reference.adagrad_step``."""
    p, g, acc = _prepare("adagrad_step", param, grad, state_sum=state_sum)
    if p.size == 0:
        return
    s = param.dtype.type
    clr = lr / (1.0 + (step - 1) * lr_decay)  # in float64, then rounded once
    _adagrad_kernel[_grid(p.size)](p, g, acc, s(clr), s(weight_decay), s(eps))


# ----- AdaDelta -----


@K.device_function
def _adadelta_update(p, g, square_avg, acc_delta, lr, rho, rho_c, eps, weight_decay):
    """One element -> (new p, new square_avg, new acc_delta); rho_c = 1 - rho."""
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg = rho * square_avg + rho_c * g * g
    delta = _sqrt(acc_delta + eps) / _sqrt(square_avg + eps) * g
    acc_delta = rho * acc_delta + rho_c * delta * delta
    return p - lr * delta, square_avg, acc_delta


@cuda.jit
def _adadelta_kernel(p, g, square_avg, acc_delta, lr, rho, rho_c, eps, weight_decay):
    """Thread t updates elements i = t, t + T, ...: p[i], square_avg[i], acc_delta[i]."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i], square_avg[i], acc_delta[i] = _adadelta_update(
            p[i], g[i], square_avg[i], acc_delta[i], lr, rho, rho_c, eps, weight_decay
        )


def adadelta_step(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay):
    """In place: see ``optim_reference.adadelta_step``."""
    p, g, sq, acc = _prepare(
        "adadelta_step", param, grad, square_avg=square_avg, acc_delta=acc_delta
    )
    if p.size == 0:
        return
    s = param.dtype.type
    _adadelta_kernel[_grid(p.size)](
        p, g, sq, acc, s(lr), s(rho), s(1.0 - rho), s(eps), s(weight_decay)
    )


# ----- RMSprop -----


@K.device_function
def _rmsprop_update(p, g, sq, buf, gavg, lr, alpha, alpha_c, eps, weight_decay, momentum, centered):
    """One element -> (new p, new square_avg, new buf, new grad_avg); alpha_c = 1 - alpha."""
    if weight_decay != 0:
        g = g + weight_decay * p
    sq = alpha * sq + alpha_c * g * g
    if centered:
        gavg = alpha * gavg + alpha_c * g
        avg = _sqrt(sq - gavg * gavg) + eps
    else:
        avg = _sqrt(sq) + eps
    if momentum != 0:
        buf = momentum * buf + g / avg
        p = p - lr * buf
    else:
        p = p - lr * g / avg
    return p, sq, buf, gavg


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
):
    """In place: see ``optim_reference.rmsprop_step``."""
    if (momentum_buffer is None) != (momentum == 0):
        raise ValueError("rmsprop_step: pass a momentum_buffer exactly when momentum != 0")
    if (grad_avg is None) == bool(centered):
        raise ValueError("rmsprop_step: pass a grad_avg exactly when centered is True")
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
    s = param.dtype.type
    _rmsprop_kernel[_grid(p.size)](
        p, g, sq, buf, gavg, s(lr), s(alpha), s(1.0 - alpha), s(eps), s(weight_decay),
        s(momentum), bool(centered),
    )  # fmt: skip


# ----- Adam and AdamW -----


@K.device_function
def _adam_update(
    p, g, m, v, v_max, beta1, beta1_c, beta2, beta2_c, eps, step_size, bc2_sqrt, weight_decay,
    decay, amsgrad,
):  # fmt: skip
    """One element -> (new p, new m, new v, new v_max).

    beta*_c = 1 - beta*; step_size = lr / (1 - beta1^step); bc2_sqrt = sqrt(1 - beta2^step).
    Adam: weight_decay as given, decay = 1.  AdamW: weight_decay = 0, decay = 1 - lr * wd.
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
    return p - step_size * m / (_sqrt(second_moment) / bc2_sqrt + eps), m, v, v_max


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
):
    """In place: see ``optim_reference.adam_step``."""
    if (max_exp_avg_sq is None) == bool(amsgrad):
        raise ValueError("adam_step: pass a max_exp_avg_sq exactly when amsgrad is True")
    if step < 1:
        raise ValueError(f"adam_step: step must be >= 1, got {step}")
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
    # Per-step constants in float64, rounded once to the param's dtype.
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    step_size = lr / bias_correction1
    bc2_sqrt = bias_correction2**0.5
    if decoupled_weight_decay:
        coupled_decay, decay = 0.0, 1.0 - lr * weight_decay
    else:
        coupled_decay, decay = weight_decay, 1.0
    s = param.dtype.type
    _adam_kernel[_grid(p.size)](
        p, g, m, v, v_max, s(beta1), s(1.0 - beta1), s(beta2), s(1.0 - beta2), s(eps),
        s(step_size), s(bc2_sqrt), s(coupled_decay), s(decay), bool(amsgrad),
    )  # fmt: skip
