"""The image workloads of issue 11 (``conv_workloads.py``), tinygrad_edu beside PyTorch.

- Conv2d forward + backward: batch 32, 1 -> 16 -> 32 channels, 3x3, padding 1, on 28x28;
- one training step of ``train --model cnn`` (batch 32 of 1x8x8 digits, SGD with momentum).
The PyTorch variant is skipped (``NotImplementedError`` in setup) when torch is not installed.
"""

from . import conv_workloads as cw

BUILDERS = {
    ("conv", "tinygrad_edu"): cw.conv_tg,
    ("conv", "torch"): cw.conv_torch,
    ("cnn_step", "tinygrad_edu"): cw.cnn_step_tg,
    ("cnn_step", "torch"): cw.cnn_step_torch,
}


class Conv:
    """Image workloads, per framework."""

    params = (["conv", "cnn_step"], ["tinygrad_edu", "torch"])
    param_names = ["workload", "framework"]

    def setup(self, workload, framework):
        if framework == "torch":
            try:
                import torch
            except ImportError:
                raise NotImplementedError("torch is not installed") from None
            torch.set_num_threads(2)
        self.run = BUILDERS[workload, framework]()
        self.run()  # warm-up: compile kernels, create the optimizer's state

    def time_run(self, workload, framework):
        """conv: two convolutions forward + backward; cnn_step: a whole SGD step."""
        self.run()
