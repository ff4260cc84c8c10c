"""README's code runs as printed, and the hand-written network in it learns."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run_and_train():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(compile(blocks[0], "README.md (block 1)", "exec"), namespace)  # noqa: S102
    # Binary cross-entropy of a constant 0.5 guess is log 2 = 0.693; training must beat it well.
    assert namespace["loss"].item() < 0.2
    first_weight = namespace["W1"]
    exec(compile(blocks[1], "README.md (block 2)", "exec"), namespace)  # noqa: S102
    assert namespace["W1"] is first_weight  # `w -= ...` kept the objects it updated
    assert namespace["loss"].item() < 1.0  # one epoch on the digits: well below log 10 = 2.3
