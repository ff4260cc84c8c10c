"""docs/autograd.md's code runs as printed and gives the numbers its comments state."""

import pathlib
import re

import numpy as np

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "autograd.md"


def test_autograd_page_examples_run_and_match_their_comments():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    runnable = [b for b in blocks if "import tinygrad_edu" in b or "critic" in b or "h = x" in b]
    assert len(runnable) >= 4
    namespace: dict = {}
    for i, block in enumerate(runnable):
        exec(compile(block, f"docs/autograd.md (block {i + 1})", "exec"), namespace)  # noqa: S102
    # Section 2: the Hessian of a^2 b + b^3 at (1.5, -0.7), by rows and by hessian().
    np.testing.assert_allclose(namespace["rows"], [[-1.4, 3.0], [3.0, -4.2]])
    np.testing.assert_allclose(namespace["g"].numpy(), 3 * namespace["x"].numpy() ** 2)
    assert namespace["h"].grad_fn.name() == "MulScalar"  # section 4 says so
