"""The tinygrad-edu command, run in-process through ``main([...])`` with few epochs."""

import json
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import cli
from tinygrad_edu.data import DataLoader
from tinygrad_edu.train import evaluate


def _run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_saves_a_model_whose_test_accuracy_it_printed(capsys, tmp_path):
    code, out, _ = _run(capsys, "train", "--epochs", "5", "--seed", "3", "--out", str(tmp_path))
    assert code == 0
    # Per-epoch progress, with the training loss falling.
    losses = [float(v) for v in re.findall(r"train loss (\d+\.\d+)", out)]
    assert len(losses) == 5 and losses[-1] < 0.5 * losses[0]
    printed = float(re.search(r"test accuracy: (\d\.\d+) \((\d+)/180\)", out).group(1))

    # Rebuild the network from model.json, load model.npz, and score the same test split.
    config = json.loads((tmp_path / "model.json").read_text())
    assert config["hidden"] == [15] and config["activation"] == "sigmoid"
    model = cli.build_model(config["inputs"], config["hidden"], config["classes"])
    model.load_state_dict(tg.load(tmp_path / "model.npz"))
    _, _, (X_te, y_te) = cli.load_dataset(None, seed=3)[1:]
    accuracy = evaluate(model, DataLoader(X_te, y_te, 64, shuffle=False))["accuracy"]
    assert accuracy == pytest.approx(printed, abs=1e-4)
    assert config["test_accuracy"] == pytest.approx(accuracy)
    assert accuracy > 0.8  # five epochs of the default network already do this well
    if pytest.importorskip("matplotlib"):
        assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
        # The run ends by saying where its picture is (README's first command ends on it).
        last = out.strip().splitlines()[-1]
        assert last == f"learning curves drawn in {(tmp_path / 'curves.png').resolve()}"


def test_train_with_every_option(capsys, tmp_path):
    argv = ["train", "--hidden", "20", "10", "--activation", "relu", "--optimizer", "adam"]
    argv += ["--lr", "0.01", "--epochs", "2", "--batch-size", "64", "--l1", "1e-5"]
    argv += ["--l2", "1e-4", "--dropout", "0.1", "--noise", "0.05", "--no-early-stopping"]
    argv += ["--quiet", "--out", str(tmp_path)]
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "train loss" not in out and "test accuracy" in out
    state = tg.load(tmp_path / "model.npz")
    # GaussianNoise, then (Linear, ReLU, Dropout) twice, then the output Linear.
    assert {k: v.shape for k, v in state.items()} == {
        "1.weight": (20, 64),
        "1.bias": (20,),
        "4.weight": (10, 20),
        "4.bias": (10,),
        "7.weight": (10, 10),
        "7.bias": (10,),
    }


@pytest.mark.parametrize("optimizer", list(cli.DEFAULT_LR))
def test_every_optimizer_name_builds(optimizer):
    model = cli.build_model(4, [3], 2)
    opt = cli.build_optimizer(optimizer, model.parameters())
    assert opt.param_groups[0]["lr"] == cli.DEFAULT_LR[optimizer]


def _write_idx(folder, prefix, n, rng):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">ii", 2049, n) + labels.tobytes()
    )


def test_train_on_mnist_files(capsys, tmp_path, rng):
    _write_idx(tmp_path, "train", 60, rng)
    _write_idx(tmp_path, "t10k", 20, rng)
    out_dir = tmp_path / "run"
    code, out, _ = _run(
        capsys, "train", "--mnist", str(tmp_path), "--epochs", "1", "--out", str(out_dir)
    )
    assert code == 0
    assert "54 train / 6 validation / 20 test" in out and "/20)" in out
    assert tg.load(out_dir / "model.npz")["0.weight"].shape == (15, 784)


def test_mnist_header_claiming_absurd_dimensions_is_a_clear_error(capsys, tmp_path, rng):
    # --mnist goes through load_mnist's size checks: a header claiming 10**9 images in a tiny file
    # is refused from the header, not answered with a MemoryError.
    _write_idx(tmp_path, "train", 6, rng)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(struct.pack(">iiii", 2051, 10**9, 28, 28) + bytes(784))
    code, _, err = _run(capsys, "train", "--mnist", str(tmp_path), "--out", str(tmp_path))
    assert code == 1
    assert "tinygrad-edu train: error: load_mnist:" in err
    assert bad.name in err and f"{10**9 * 784} bytes" in err and "max_bytes" in err


def test_missing_mnist_folder_is_a_clear_error(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--mnist", str(tmp_path / "nope"), "--out", str(tmp_path))
    assert code == 1
    assert "tinygrad-edu train: error: load_mnist: none of train-images-idx3-ubyte" in err


def test_unusable_device_is_a_clear_error(capsys, tmp_path):
    from tinygrad_edu.backend import cuda_support

    if cuda_support.is_available():
        pytest.skip("a GPU is usable here")
    code, _, err = _run(capsys, "train", "--device", "cuda", "--out", str(tmp_path))
    assert code == 1 and "tinygrad-edu train: error: device 'cuda' is not available" in err
    code, _, err = _run(capsys, "train", "--device", "tpu", "--out", str(tmp_path))
    assert code == 1 and "unknown device 'tpu'" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["train", "--activation", "gelu"], "argument --activation: invalid choice"),
        (["train", "--epochs", "0"], "argument --epochs: must be >= 1"),
        (["train", "--dropout", "1.0"], r"argument --dropout: must be in \[0, 1\)"),
        (["train", "--lr", "-1"], "argument --lr: must be > 0"),
        (["fit"], "invalid choice: 'fit'"),
        ([], "the following arguments are required"),
    ],
)
def test_bad_arguments_exit_with_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def _gradcheck_numbers(out):
    def grab(label):
        return float(re.search(label + r"\s*= ([\d.e+-]+)", out).group(1).replace(",", ""))

    return {
        "abs": grab(r"max \|backprop - finite diff\|"),
        "rel": grab("max relative difference"),
        "passes": int(re.search(r"finite differences = ([\d,]+)", out).group(1).replace(",", "")),
    }


def test_gradcheck_agrees_with_finite_differences(capsys):
    code, out, _ = _run(capsys, "gradcheck", "--batch-size", "8")
    assert code == 0
    numbers = _gradcheck_numbers(out)
    assert "1,135 parameters" in out
    assert numbers["passes"] == 2 * 1135  # two forward passes per parameter
    assert numbers["rel"] < 1e-4 and numbers["abs"] < 1e-8
    assert "ratio" in out and "slower" in out


def test_gradcheck_can_sample_parameters(capsys):
    code, out, _ = _run(capsys, "gradcheck", "--hidden", "30", "20", "--max-params", "40")
    assert code == 0
    assert "checking a random sample of 40 of the 2,780 parameters" in out
    numbers = _gradcheck_numbers(out)
    assert numbers["passes"] == 80 and numbers["rel"] < 1e-4


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_edu", "gradcheck", "--max-params", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "max relative difference" in result.stdout
