"""The CUDA side of ``tests/test_rules.py``: each device function is compiled from the same
Python function as the CPU loops (``rules.<rule>.py_func``), not from a copy."""

from __future__ import annotations

from tinygrad_edu.backend import cuda_kernels as K
from tinygrad_edu.backend import rules


def _python_function(device_function):
    # A GPU dispatcher keeps the function as py_func; the simulator's fake kernel as fn.
    return getattr(device_function, "py_func", None) or device_function.fn


def test_every_cuda_rule_is_the_rules_function():
    assert len(K.RULES) == len(rules.RULES)
    for compiled, rule in zip(K.RULES, rules.RULES, strict=True):
        assert _python_function(compiled) is rule.py_func, rule.py_func.__name__


def test_the_kernels_call_the_shared_rules():
    for kernel, rule_name in [
        (K.unary_kernel, "unary_rule"),
        (K.binary_kernel, "binary_rule"),
        (K.backward_kernel, "backward_rule"),
        (K.softmax_rows_kernel, "softmax_row"),
        (K.softmax_backward_rows_kernel, "softmax_backward_row"),
        (K.cross_entropy_rows_kernel, "cross_entropy_row"),
        (K.cross_entropy_backward_kernel, "cross_entropy_grad_rule"),
    ]:
        fn = _python_function(kernel)
        assert rule_name in fn.__code__.co_names, (fn.__name__, rule_name)
        assert fn.__globals__[rule_name] is getattr(K, rule_name)


def test_the_v2_elementwise_rules_run_on_the_cuda_backend():
    """sin cos log1p expm1 square reciprocal, maximum/minimum and where (contract v2) on the
    cuda backend, against numpy, and one backward pass through them (a handful of elements)."""
    import numpy as np

    import tinygrad_edu as tg
    from tinygrad_edu.backend import cuda as C

    x = np.array([-2.0, -0.5, 0.0, 0.25, 3.0])
    y = np.array([1.0, -0.5, 0.5, -1.0, 3.0])
    with np.errstate(all="ignore"):
        for op in ("sin", "cos", "log1p", "expm1", "square", "reciprocal"):
            got = C.to_numpy(C.unary(op, C.asarray(x)))
            np.testing.assert_allclose(got, getattr(np, op)(x), rtol=1e-12, err_msg=op)
    for op in ("maximum", "minimum"):
        got = C.to_numpy(C.binary(op, C.asarray(x), C.asarray(y)))
        np.testing.assert_array_equal(got, getattr(np, op)(x, y), err_msg=op)
    cond = (x > 0).astype(np.float32)
    got = C.to_numpy(C.where(C.asarray(cond), C.asarray(x), 7.0))
    np.testing.assert_array_equal(got, np.where(cond != 0, x, 7.0))

    t = tg.Tensor(x, dtype="float64", requires_grad=True, device="cuda")
    u = tg.Tensor(y, dtype="float64", device="cuda")
    loss = (tg.maximum(t, u) + tg.where(t > 0, t.sin(), t.square())).sum()
    loss.backward()
    tie = np.where(x > y, 1.0, np.where(x == y, 0.5, 0.0))
    want = tie + np.where(x > 0, np.cos(x), 2 * x)
    np.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-12)
