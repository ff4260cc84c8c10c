"""The chapter, runnable: one small demo per idea, in the chapter's order.

Each demo is a module ``dNN_<name>.py`` in this package with

- ``NAME``: the name ``tinygrad-edu demo NAME`` runs (``"gradient-descent"``);
- ``TITLE``: one line saying what its picture shows;
- ``run(out_dir: Path, tiny: bool = False) -> dict[str, float]``: computes, prints the numbers
  it draws, writes ``out_dir / f"{NAME}.png"`` (matplotlib, the ``plot`` extra) and returns
  those numbers.
  ``tiny=True`` runs at a size a test can afford (seconds) and still prints the same quantities.

Run one with ``python -m tinygrad_edu.demos NAME`` or ``tinygrad-edu demo NAME``; all of them
with ``demo all``.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from pathlib import Path
from types import ModuleType

__all__ = ["available", "get", "run", "run_all", "DEFAULT_OUT"]

DEFAULT_OUT = Path("runs") / "demos"


def _modules() -> list[ModuleType]:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name[:1] == "d" and info.name[1:3].isdigit()
    )
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def available() -> list[tuple[str, str]]:
    """``(NAME, TITLE)`` of every demo, in the chapter's order."""
    return [(module.NAME, module.TITLE) for module in _modules()]


def get(name: str) -> ModuleType:
    """The demo module called ``name``; ValueError listing the names when there is none."""
    for module in _modules():
        if module.NAME == name:
            return module
    names = ", ".join(n for n, _ in available())
    raise ValueError(f"demo: no demo called {name!r}; the demos are: {names}")


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "demo: the demos draw with matplotlib, which is not installed "
            '(pip install -e ".[plot]")'
        ) from None


def run(name: str, out_dir: Path | str = DEFAULT_OUT, tiny: bool = False) -> dict[str, float]:
    """Run one demo; returns the numbers it printed (and drew into ``out_dir/NAME.png``)."""
    _require_matplotlib()
    module = get(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"== {module.NAME}: {module.TITLE}", flush=True)
    return module.run(out, tiny=tiny)


def run_all(out_dir: Path | str = DEFAULT_OUT, tiny: bool = False) -> dict[str, float]:
    """Run every demo in order; returns each demo's wall time in seconds."""
    seconds = {}
    for name, _ in available():
        start = time.perf_counter()
        run(name, out_dir, tiny=tiny)
        seconds[name] = time.perf_counter() - start
        print(f"   ({seconds[name]:.1f} s)", flush=True)
    return seconds
