"""The image workloads of issue 11, built the same way for tinygrad_edu and PyTorch.

- ``conv``: two convolutions, batch 32, 1 -> 16 -> 32 channels, 3x3, padding 1, on 28x28,
  forward and backward (the gradient of the sum of the output, for the input and every weight);
- ``cnn_step``: one SGD(momentum) training step of ``train --model cnn`` (batch 32 of 1x8x8
  images: conv 16 - ReLU - conv 32 - ReLU - max pool 2 - flatten - linear 10, cross-entropy).

Both contenders get the same weights and batches. Used by ``benchmarks.compare`` and the asv
suite (``bench_conv.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CONV_BATCH, CONV_SIZE, CONV_CHANNELS = 32, 28, (1, 16, 32)
CNN_BATCH, CNN_SIDE = 32, 8


def _conv_arrays() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((CONV_BATCH, CONV_CHANNELS[0], CONV_SIZE, CONV_SIZE), np.float32)
    params = []
    for cin, cout in zip(CONV_CHANNELS[:-1], CONV_CHANNELS[1:], strict=True):
        bound = 1.0 / np.sqrt(cin * 9)
        params += [rng.uniform(-bound, bound, (cout, cin, 3, 3)).astype(np.float32),
                   rng.uniform(-bound, bound, cout).astype(np.float32)]  # fmt: skip
    return x, params


def conv_tg() -> Callable[[], Any]:
    """tinygrad_edu: conv 1->16, conv 16->32 (3x3, padding 1), forward + backward."""
    import tinygrad_edu as tg
    import tinygrad_edu.nn.functional as F

    x_np, p_np = _conv_arrays()
    x = tg.Tensor(x_np, requires_grad=True)
    w1, b1, w2, b2 = (tg.Tensor(p, requires_grad=True) for p in p_np)

    def run() -> None:
        for t in (x, w1, b1, w2, b2):
            t.grad = None
        y = F.conv2d(F.conv2d(x, w1, b1, 1, 1), w2, b2, 1, 1)
        y.sum().backward()

    return run


def conv_torch() -> Callable[[], Any]:
    """PyTorch: the same two convolutions, forward + backward."""
    import torch

    x_np, p_np = _conv_arrays()
    x = torch.tensor(x_np, requires_grad=True)
    w1, b1, w2, b2 = (torch.tensor(p, requires_grad=True) for p in p_np)
    conv = torch.nn.functional.conv2d

    def run() -> None:
        for t in (x, w1, b1, w2, b2):
            t.grad = None
        conv(conv(x, w1, b1, 1, 1), w2, b2, 1, 1).sum().backward()

    return run


def _cnn_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((CNN_BATCH, 1, CNN_SIDE, CNN_SIDE)).astype(np.float32)
    return x, rng.integers(0, 10, CNN_BATCH)


def cnn_step_tg() -> Callable[[], Any]:
    """tinygrad_edu: one SGD(momentum 0.9) step of the CLI's CNN on a batch of 32."""
    import tinygrad_edu as tg
    import tinygrad_edu.nn.functional as F
    from tinygrad_edu import optim
    from tinygrad_edu.cli import build_cnn

    tg.manual_seed(0)
    model = build_cnn(CNN_SIDE, 10)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_np, y_np = _cnn_batch()
    x, y = tg.Tensor(x_np), tg.Tensor(y_np, dtype="int64")

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def cnn_step_torch() -> Callable[[], Any]:
    """PyTorch: the same network and step."""
    import torch

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * (CNN_SIDE // 2) ** 2, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_np, y_np = _cnn_batch()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step
