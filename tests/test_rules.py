"""Each per-element and per-row rule has one definition, in ``backend/rules.py``.

The CPU loops inline the rules by name and the CUDA kernels compile the same Python functions
(``tests/cuda/test_rules_cuda.py`` checks that side in the simulator). Here: the list of rules,
the CPU loops that use them, and that no other backend module writes the maths again.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu.backend import cpu, reference, rules
from tinygrad_edu.backend.jit import Kernel

# Every rule, and the CPU loops built from it.
CPU_LOOPS = {
    "unary_rule": ["unary_loop", "bias_activation_row"],
    "binary_rule": ["binary_loop", "binary_scalar_loop", "binary_broadcast_loop"],
    "backward_rule": ["backward_loop", "dz_and_db"],
    "cross_entropy_grad_rule": ["cross_entropy_backward_loop"],
    "softmax_row": ["softmax_rows_loop"],
    "softmax_backward_row": ["softmax_backward_rows_loop"],
    "cross_entropy_row": ["cross_entropy_rows_loop"],
}


def test_the_list_of_rules_is_complete():
    assert sorted(r.py_func.__name__ for r in rules.RULES) == sorted(CPU_LOOPS)


@pytest.mark.parametrize("rule_name", sorted(CPU_LOOPS))
def test_cpu_loops_call_the_rule(rule_name):
    for loop_name in CPU_LOOPS[rule_name]:
        loop = getattr(rules, loop_name)
        fn = loop.py_func
        assert rule_name in fn.__code__.co_names, (loop_name, rule_name)
        if isinstance(loop, Kernel):  # both builds are compiled from the one loop
            assert loop.serial.py_func.__code__ is fn.__code__
            assert loop.parallel.py_func is fn


def test_a_linear_layers_loops_share_one_bias_and_activation_pass():
    for loop in (rules.bias_activation_rows, rules.linear_small):
        assert "bias_activation_row" in loop.py_func.__code__.co_names, loop


def _called_names(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def test_no_other_kernel_module_writes_the_maths_again():
    """exp, log and tanh (softmax, sigmoid, tanh, cross-entropy) appear in the rules only: the
    CPU and CUDA kernel modules call rules, never the maths functions themselves."""
    cuda_kernels = Path(rules.__file__).with_name("cuda_kernels.py").read_text()
    for source in (inspect.getsource(cpu), cuda_kernels):
        assert not _called_names(source) & {"exp", "log", "tanh", "_exp", "_log", "_tanh"}


def test_rules_use_no_other_numba_function():
    """The CUDA compiler sees a rule's Python source only: a rule may call its maths functions
    and builtins, nothing compiled for the CPU."""
    allowed = {"exp", "log", "sqrt", "tanh", "abs", "range", "sin", "cos", "log1p", "expm1"}
    for r in rules.RULES:
        called = _called_names(inspect.getsource(r.py_func))
        assert called <= allowed, (r.py_func.__name__, called - allowed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rule_called_directly_matches_the_reference(dtype):
    """The compiled rule itself (not only its loops) gives the reference's numbers."""
    x = np.array([-3.0, -0.0, 0.0, 0.5, 40.0, np.nan, np.inf, -np.inf], dtype=dtype)
    new = ("sin", "cos", "log1p", "expm1", "square", "reciprocal")  # contract v2
    for op in ("relu", "sigmoid", "tanh", "sign", "abs", "neg", *new):
        got = np.array([rules.unary_rule(rules.UNARY_CODES[op], v, 0.0, 0.0) for v in x])
        with np.errstate(all="ignore"):
            want = reference.unary(op, x)
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=op)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_minimum_rules_match_the_reference(dtype):
    """binary_rule's maximum and minimum, called directly: NaN on either side wins."""
    x = np.array([-3.0, 0.0, 2.0, np.nan, 1.0, np.inf], dtype=dtype)
    y = np.array([1.0, 0.0, -2.0, 1.0, np.nan, -np.inf], dtype=dtype)
    for op in ("maximum", "minimum"):
        code = rules.BINARY_CODES[op]
        got = np.array([rules.binary_rule(code, u, v) for u, v in zip(x, y, strict=True)])
        np.testing.assert_array_equal(got, reference.binary(op, x, y), err_msg=op)
