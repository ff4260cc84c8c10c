"""MkDocs hook: the Learn pages' figures, drawn by ``tinygrad_edu.demos`` at build time.

Every figure a Learn page shows (``learn/img/NAME.png``) is produced here by running the demo
called ``NAME`` into a temporary folder and adding the PNG to the build as a generated file, so
no figure is ever committed. ``TINYGRAD_EDU_DOCS_TINY=1`` runs the demos at their tiny size
(what the tests build). A demo that is not in the package (yet) gets a placeholder figure that
says so, and a log line; a demo that exists but fails stops the build.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.tinygrad_edu")

# The demos the Learn pages show, in the chapter's order (page learn/NN-NAME.md shows NAME.png).
DEMOS = [
    "linear-regression",
    "random-search",
    "gradient-descent",
    "minibatch",
    "momentum",
    "optimizers",
    "overfitting",
    "validation",
    "backprop-vs-fd",
    "graph",
    "fd-training-race",
    "kernels",
]

# One temporary folder per process: `mkdocs serve` rebuilds reuse the figures drawn once.
_OUT: Path | None = None


def _tiny() -> bool:
    return os.environ.get("TINYGRAD_EDU_DOCS_TINY", "") not in ("", "0")


def _placeholder(path: Path, name: str) -> None:
    """A figure saying the demo is missing, so the page still builds and says why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"demo {name!r} is not in this checkout", ha="center", va="center")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_figures(out: Path, tiny: bool) -> dict[str, Path]:
    """Run every demo of ``DEMOS`` into ``out``; returns NAME -> the PNG it wrote."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a build machine
    from tinygrad_edu import demos

    present = {name for name, _ in demos.available()}
    figures = {}
    for name in DEMOS:
        png = out / f"{name}.png"
        if name in present:
            demos.run(name, out, tiny=tiny)
            if not png.is_file():
                raise RuntimeError(f"docs: demo {name!r} ran but wrote no {png}")
        else:
            log.info("demo %r is not in tinygrad_edu.demos: placeholder figure", name)
            _placeholder(png, name)
        figures[name] = png
    return figures


def on_files(files: Files, config) -> Files:
    """Add ``learn/img/NAME.png`` for every demo to the build, drawn now."""
    global _OUT
    if _OUT is None:
        _OUT = Path(tempfile.mkdtemp(prefix="tinygrad_edu_docs_"))
        draw_figures(_OUT, _tiny())
    for name in DEMOS:
        files.append(
            File.generated(config, f"learn/img/{name}.png", abs_src_path=str(_OUT / f"{name}.png"))
        )
    return files
