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
