r"""Eight optimizers racing on the same two surfaces.

Every method below turns the gradient g into a step; they differ in what they remember.

- SGD: :math:`w \leftarrow w - \alpha g`.
- Momentum / Nesterov: a velocity of past gradients (see the momentum demo).
- AdaGrad: divide each coordinate's step by the root of the *sum* of its squared gradients,
  :math:`w_i \leftarrow w_i - \alpha g_i / (\sqrt{G_i} + \epsilon)`, so steep coordinates slow
  down and shallow ones speed up; G only grows, so the steps shrink for ever.
- RMSprop: the same with a decaying *average* :math:`v \leftarrow \rho v + (1-\rho) g^2`, so
  the steps stop shrinking.
- AdaDelta: RMSprop's average for the gradient, and a second one of past steps in the numerator,
  so the step has the units of w and needs almost no learning rate.
- Adam: momentum on g (first moment m) and RMSprop on :math:`g^2` (second moment v), both
  bias-corrected: :math:`w \leftarrow w - \alpha \hat m / (\sqrt{\hat v} + \epsilon)`.
- AdamW: Adam with the weight decay applied to w directly rather than added to g.

The adaptive methods take steps of about :math:`\alpha` in every coordinate, whatever the
gradient's scale: on the elongated bowl they head straight for the minimum instead of crawling.
No method wins everywhere: along the Rosenbrock valley's curved floor the momentum methods,
which build up speed, get furthest in the same number of steps. All paths come from
``tg.optim``; the learning rates are set per method and problem (printed); steps are equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.demos.d03_gradient_descent import descend
from tinygrad_edu.demos.d05_momentum import PROBLEMS, draw_contours

NAME = "optimizers"
TITLE = "SGD, momentum, Nesterov, AdaGrad, AdaDelta, RMSprop, Adam, AdamW: paths and loss curves"

# name: (optimizer class, options for the elongated bowl, options for Rosenbrock)
OPTIMIZERS = {
    "SGD": (tg.optim.SGD, dict(lr=0.03), dict(lr=1e-3)),
    "momentum": (tg.optim.SGD, dict(lr=0.03, momentum=0.9), dict(lr=1e-3, momentum=0.9)),
    "Nesterov": (
        tg.optim.SGD,
        dict(lr=0.03, momentum=0.9, nesterov=True),
        dict(lr=1e-3, momentum=0.9, nesterov=True),
    ),
    "AdaGrad": (tg.optim.Adagrad, dict(lr=1.0), dict(lr=0.5)),
    "AdaDelta": (tg.optim.Adadelta, dict(lr=10.0), dict(lr=10.0)),
    "RMSprop": (tg.optim.RMSprop, dict(lr=0.1), dict(lr=0.01)),
    "Adam": (tg.optim.Adam, dict(lr=0.3), dict(lr=0.05)),
    "AdamW": (tg.optim.AdamW, dict(lr=0.3, weight_decay=0.01), dict(lr=0.05, weight_decay=0.01)),
}


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Run every optimizer on both surfaces for the same number of steps; print the distances."""
    from matplotlib.figure import Figure

    steps = {"elongated bowl": 40 if tiny else 150, "Rosenbrock": 60 if tiny else 500}
    colors = dict(zip(OPTIMIZERS, [f"C{i}" for i in range(len(OPTIMIZERS))], strict=True))
    results: dict[str, float] = {}
    fig = Figure(figsize=(13, 10), layout="constrained")
    axes = fig.subplots(2, 2)
    for row, (problem, (f, start, minimum, _, box)) in enumerate(PROBLEMS.items()):
        ax_path, ax_loss = axes[row]
        draw_contours(ax_path, f, box)
        for name, (cls, *options) in OPTIMIZERS.items():
            opts = options[row]
            path, losses = descend(f, start, lambda ps, c=cls, o=opts: c(ps, **o), steps[problem])
            dist = float(np.linalg.norm(path[-1] - np.array(minimum)))
            key = f"{problem.split()[-1].lower()}_{name.lower()}"
            results[f"distance_{key}"] = dist
            results[f"loss_{key}"] = float(losses[-1])
            print(
                f"{problem:>14}, {name:<8} {opts}: after {steps[problem]} steps loss "
                f"{losses[-1]:.2e}, distance to minimum {dist:.2e}"
            )
            ax_path.plot(path[:, 0], path[:, 1], "-", lw=1.2, color=colors[name], label=name)
            ax_loss.semilogy(np.maximum(losses, 1e-16), color=colors[name], label=name)
        ax_path.plot(*start, "ko", ms=7)
        ax_path.plot(*minimum, "r*", ms=14, label="minimum")
        ax_path.set_title(f"{problem}: paths from the black dot, {steps[problem]} steps each")
        ax_path.legend(fontsize=8, loc="lower right", ncol=2)
        ax_loss.set(title=f"{problem}: loss against step", xlabel="step", ylabel="loss (log)")
        ax_loss.legend(fontsize=8, ncol=2)
    fig.savefig(out_dir / f"{NAME}.png", dpi=100)
    return results
