"""train --model cnn: the small CNN learns the bundled digits (as 1x8x8 images).

The full check (the default 50 epochs with early stopping, seed 0) reaches 0.983 test accuracy
(docs/training.md); here 4 epochs keep the test short and must reach 0.95.
"""

from __future__ import annotations

import json
import re

from tinygrad_edu import nn
from tinygrad_edu.cli import build_cnn, main


def test_build_cnn_layers():
    model = build_cnn(8, 10)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear]
    # conv weights + biases and the linear layer: 16*9+16 + 32*16*9+32 + 512*10+10
    assert sum(p.size for p in model.parameters()) == 160 + 4640 + 5130


def test_train_cnn_reaches_accuracy(tmp_path, capsys):
    status = main(
        ["train", "--model", "cnn", "--epochs", "4", "--no-early-stopping", "--quiet",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95, out
    config = json.loads((tmp_path / "model.json").read_text())
    assert config["model"] == "cnn" and abs(config["test_accuracy"] - accuracy) < 1e-4
