"""The ``tinygrad-edu`` command (also ``python -m tinygrad_edu``).

    tinygrad-edu train        train the chapter's network (inputs-15-10, sigmoid) on the digits
    tinygrad-edu gradcheck    backprop against finite differences on the same network
    tinygrad-edu graph        draw the graph of that network's loss on one batch (.dot, .svg)

Run ``tinygrad-edu train --help`` for the options. Everything the commands do goes through the
public API (``tg.nn``, ``tg.optim``, ``tg.data``, ``tg.train``), so this file doubles as an
example of a complete training script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Learning rates that work for each rule on the digits with the default network (measured:
# see docs/training.md). ``--lr`` overrides them.
DEFAULT_LR = {
    "sgd": 0.5,
    "momentum": 0.1,
    "nesterov": 0.1,
    "adagrad": 0.1,
    "adadelta": 1.0,
    "rmsprop": 0.005,
    "adam": 0.01,
    "adamw": 0.01,
}
ACTIVATIONS = ("sigmoid", "relu", "tanh", "leaky_relu")


# ----- building blocks shared by the commands (and the tests) -----


def build_model(
    inputs: int,
    hidden: Sequence[int],
    classes: int,
    activation: str = "sigmoid",
    dropout: float = 0.0,
    noise: float = 0.0,
    dtype: Any = None,
) -> Any:
    """inputs -> hidden[0] -> ... -> classes, ``activation`` after each hidden layer;
    ``noise`` adds GaussianNoise to the inputs, ``dropout`` a Dropout after each activation."""
    from tinygrad_edu import nn

    make_activation = {
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "leaky_relu": nn.LeakyReLU,
    }[activation]
    layers: list[Any] = []
    if noise:
        layers.append(nn.GaussianNoise(noise))
    width = inputs
    for h in hidden:
        layers += [nn.Linear(width, h, dtype=dtype), make_activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, classes, dtype=dtype))
    return nn.Sequential(*layers)


# ----- the convolutional network (train --model cnn) -----


def build_cnn(side: int, classes: int, dtype: Any = None) -> Any:
    """A small CNN on (N, 1, side, side) images: Conv(1->16, 3x3, pad 1) - ReLU -
    Conv(16->32, 3x3, pad 1) - ReLU - MaxPool 2 - Flatten - Linear(32 (side/2)^2 -> classes)."""
    from tinygrad_edu import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, dtype=dtype),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (side // 2) ** 2, classes, dtype=dtype),
    )


def as_images(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Flat square images (N, side^2) as (N, 1, side, side) for the CNN; returns (images, side)."""
    side = int(round(X.shape[1] ** 0.5))
    if side * side != X.shape[1]:
        raise ValueError(f"train --model cnn: {X.shape[1]} features are not a square image")
    return X.reshape(len(X), 1, side, side), side


def build_optimizer(name: str, params: list, lr: float | None = None) -> Any:
    """An optimizer by its CLI name; ``lr=None`` takes DEFAULT_LR[name]."""
    from tinygrad_edu import optim

    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if name == "nesterov":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    rule = {
        "adagrad": optim.Adagrad,
        "adadelta": optim.Adadelta,
        "rmsprop": optim.RMSprop,
        "adam": optim.Adam,
        "adamw": optim.AdamW,
    }[name]
    return rule(params, lr=lr)


def load_dataset(mnist: str | None, seed: int) -> tuple[str, tuple, tuple, tuple]:
    """(name, train, val, test) pairs of numpy arrays: the bundled digits split 80/10/10, or
    MNIST's training file split 90/10 into train/val with its test file as the test set."""
    import tinygrad_edu as tg

    if mnist is None:
        X, y = tg.datasets.load_digits()
        train, val, test = tg.data.train_val_test_split(X, y, (0.8, 0.1, 0.1), seed=seed)
        return "digits", train, val, test
    X, y = tg.datasets.load_mnist(mnist, kind="train")
    train, val, _ = tg.data.train_val_test_split(X, y, (0.9, 0.1, 0.0), seed=seed)
    return "mnist", train, val, tg.datasets.load_mnist(mnist, kind="test")


# ----- the argument parser -----


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="Train a small network with tinygrad_edu, or check its gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,gradcheck,graph,demo}")
    sub.required = True

    train = sub.add_parser(
        "train",
        help="train an MLP on the bundled digits (or MNIST)",
        description="Train an MLP (default: the chapter's inputs-15-10 with a sigmoid hidden "
        "layer) on the bundled 8x8 digits with SGD + momentum, report the test accuracy, and "
        "save the weights (.npz) and learning curves (.png).",
    )
    train.add_argument(
        "--model",
        choices=("mlp", "cnn"),
        default="mlp",
        help="mlp (default; --hidden, --activation) or cnn (a small convolutional network: "
        "conv 16 - conv 32 - max pool - linear, on the digits as 1x8x8 images)",
    )
    train.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[15],
        metavar="N",
        help="hidden layer sizes (default: 15)",
    )
    train.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid")
    train.add_argument(
        "--optimizer",
        choices=list(DEFAULT_LR),
        default="momentum",
        help="update rule (default: momentum = SGD with momentum 0.9)",
    )
    train.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="learning rate (default: tuned per optimizer, 0.1 for momentum)",
    )
    train.add_argument("--epochs", type=_positive_int, default=50)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument(
        "--l1", type=_non_negative_float, default=0.0, help="L1 penalty lam * sum|w| on the weights"
    )
    train.add_argument(
        "--l2",
        type=_non_negative_float,
        default=0.0,
        help="L2 penalty 0.5 * lam * sum w^2 on the weights",
    )
    train.add_argument(
        "--dropout",
        type=_probability,
        default=0.0,
        help="dropout probability after each hidden layer",
    )
    train.add_argument(
        "--noise",
        type=_non_negative_float,
        default=0.0,
        help="std of Gaussian noise added to the inputs while training",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=10,
        help="early stopping: epochs without a better validation loss (default 10)",
    )
    train.add_argument("--no-early-stopping", action="store_true", help="train for all the epochs")
    train.add_argument("--seed", type=int, default=0, help="seed for init, split and shuffling")
    train.add_argument(
        "--mnist",
        metavar="PATH",
        default=None,
        help="folder with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...)",
    )
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="folder for model.npz, model.json, curves.png (default runs/<data>)",
    )
    train.add_argument("--quiet", action="store_true", help="print only the final result")

    check = sub.add_parser(
        "gradcheck",
        help="compare backprop with finite differences",
        description="On the default network (float64, a batch of digits), compute the gradient of "
        "the cross-entropy loss by backprop and by central finite differences, and compare "
        "the values and the cost.",
    )
    check.add_argument("--hidden", type=_positive_int, nargs="+", default=[15], metavar="N")
    check.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid")
    check.add_argument("--batch-size", type=_positive_int, default=16)
    check.add_argument("--seed", type=int, default=0)
    check.add_argument(
        "--eps",
        type=_positive_float,
        default=1e-5,
        help="finite-difference step (default 1e-5: rounding error ~1e-16 * J / eps "
        "and truncation error ~eps^2 balance near there in float64)",
    )
    check.add_argument(
        "--max-params",
        type=_positive_int,
        default=None,
        metavar="N",
        help="check only N randomly chosen parameters (for big networks)",
    )

    graph = sub.add_parser(
        "graph",
        help="draw the graph of the network's loss",
        description="Build the network that train builds, compute the cross-entropy loss of one "
        "batch of the bundled digits, and draw the graph behind it (tg.viz.draw): always a .dot "
        "file, and a picture when the graphviz package and its dot program are installed.",
    )
    graph.add_argument("--hidden", type=_positive_int, nargs="+", default=[15], metavar="N")
    graph.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid")
    graph.add_argument("--batch-size", type=_positive_int, default=32)
    graph.add_argument("--seed", type=int, default=0)
    graph.add_argument(
        "--out",
        metavar="PATH",
        default="graph",
        help="where to write, without suffix (default: graph -> graph.dot, graph.svg)",
    )
    graph.add_argument("--format", choices=["svg", "png", "pdf"], default="svg")
    graph.add_argument(
        "--grads", action="store_true", help="label each node with its backprop gradient"
    )
    graph.add_argument(
        "--fd",
        action="store_true",
        help="also the finite-difference gradient of every node (float64; red where they "
        "disagree); costs two forward passes per entry, so keep the network small",
    )

    demo = sub.add_parser(
        "demo",
        help="run the chapter's demos: each draws one idea as a PNG",
        description="Run one demo of the chapter (or all of them), print the numbers it draws "
        "and write its picture as NAME.png in the output folder.",
    )
    demo.add_argument("name", nargs="?", metavar="NAME", help="a demo's name, or 'all'")
    demo.add_argument("--list", action="store_true", help="list the demos and exit")
    demo.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="folder for the pictures (default: runs/demos)",
    )
    demo.add_argument(
        "--tiny", action="store_true", help="a small size that runs in seconds (for tests)"
    )
    return parser


# ----- train -----


def _say(quiet: bool, *args: Any) -> None:
    if not quiet:
        print(*args, flush=True)


def _plot(history: Any, path: Path, title: str) -> bool:
    """Loss and accuracy curves as a PNG; False when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    except ImportError:
        return False
    epochs = np.arange(1, history.epochs + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history.train_loss, label="train")
    ax_acc.plot(epochs, history.train_acc, label="train")
    if history.val_loss:
        ax_loss.plot(epochs, history.val_loss, label="validation")
        ax_acc.plot(epochs, history.val_acc, label="validation")
    if history.best_epoch is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(history.best_epoch + 1, color="gray", linestyle=":", label="best epoch")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return True


def cmd_train(args: argparse.Namespace) -> int:
    import tinygrad_edu as tg
    from tinygrad_edu import data, train
    from tinygrad_edu.nn import functional as F

    quiet = args.quiet
    tg.manual_seed(args.seed)
    name, (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = load_dataset(args.mnist, args.seed)
    classes = 10  # both datasets are the digits 0..9
    if getattr(args, "model", "mlp") == "cnn":  # --model cnn: the digits as 1 x 8 x 8 images
        (X_tr, side), (X_va, _), (X_te, _) = as_images(X_tr), as_images(X_va), as_images(X_te)
        model = build_cnn(side, classes).to(args.device)
    else:
        model = build_model(
            X_tr.shape[1], args.hidden, classes, args.activation, args.dropout, args.noise
        ).to(args.device)
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr)
    train_loader = data.DataLoader(X_tr, y_tr, batch_size=args.batch_size, seed=args.seed)
    val_loader = data.DataLoader(X_va, y_va, batch_size=1024, shuffle=False)
    test_loader = data.DataLoader(X_te, y_te, batch_size=1024, shuffle=False)
    patience = None if args.no_early_stopping else args.patience

    _say(
        quiet,
        f"data: {name}, {len(X_tr)} train / {len(X_va)} validation / {len(X_te)} test "
        f"samples, {X_tr.shape[1]} inputs, {classes} classes",
    )
    _say(quiet, f"model: {model.num_parameters():,} parameters on {args.device}")
    _say(quiet, model)
    _say(
        quiet,
        f"optimizer: {args.optimizer} (lr={lr}), batch size {args.batch_size}, "
        f"up to {args.epochs} epochs" + (f", patience {patience}" if patience else ""),
    )

    width = len(str(args.epochs))

    def report(epoch: int, h: Any) -> None:
        line = (
            f"epoch {epoch + 1:>{width}}/{args.epochs}  train loss {h.train_loss[-1]:.4f} "
            f"acc {h.train_acc[-1]:.3f}  val loss {h.val_loss[-1]:.4f} "
            f"acc {h.val_acc[-1]:.3f}"
        )
        _say(quiet, line + ("  *" if h.best_epoch == epoch else ""))

    start = time.perf_counter()
    history = train.fit(
        model,
        F.cross_entropy,
        optimizer,
        train_loader,
        val_loader,
        epochs=args.epochs,
        patience=patience,
        progress=False,
        l1=args.l1,
        l2=args.l2,
        callback=report,
    )
    seconds = time.perf_counter() - start
    if history.stopped_early:
        _say(quiet, f"early stop: no better validation loss for {patience} epochs")
    if history.restored_best:
        _say(
            quiet,
            f"restored the weights of epoch {history.best_epoch + 1} "
            f"(validation loss {history.val_loss[history.best_epoch]:.4f})",
        )
    test = train.evaluate(model, test_loader, F.cross_entropy)
    correct = round(test["accuracy"] * test["samples"])
    print(
        f"test accuracy: {test['accuracy']:.4f} ({correct}/{test['samples']}), "
        f"test loss {test['loss']:.4f}, trained {history.epochs} epochs in {seconds:.1f} s"
    )

    out = Path(args.out if args.out is not None else Path("runs") / name)
    out.mkdir(parents=True, exist_ok=True)
    model_path = tg.save(model.state_dict(), out / "model.npz")
    config = {
        "dataset": name,
        "inputs": int(np.prod(X_tr.shape[1:])),
        "model": getattr(args, "model", "mlp"),
        "hidden": list(args.hidden),
        "classes": classes,
        "activation": args.activation,
        "dropout": args.dropout,
        "noise": args.noise,
        "optimizer": args.optimizer,
        "lr": lr,
        "batch_size": args.batch_size,
        "epochs_run": history.epochs,
        "seed": args.seed,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
    }
    (out / "model.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"saved {model_path} (weights) and {out / 'model.json'} (architecture, results)")
    plot_path = out / "curves.png"
    title = (
        f"{name}: {'-'.join(map(str, [config['inputs'], *args.hidden, classes]))} "
        f"{args.activation}, {args.optimizer}"
    )
    if _plot(history, plot_path, title):
        # The last line says where to look: a newcomer's first run ends on its picture.
        print(f"learning curves drawn in {plot_path.resolve()}")
    else:
        print(
            "matplotlib is not installed: skipped the learning-curve plot "
            '(pip install -e ".[plot]")'
        )
    return 0


# ----- gradcheck -----


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import tinygrad_edu as tg
    from tinygrad_edu.nn import functional as F

    tg.manual_seed(args.seed)
    X, y = tg.datasets.load_digits()
    rows = np.random.default_rng(args.seed).choice(len(X), min(args.batch_size, len(X)), False)
    xb = tg.Tensor(X[rows], dtype="float64")
    yb = tg.Tensor(y[rows], dtype="int64")
    model = build_model(X.shape[1], args.hidden, 10, args.activation, dtype="float64")
    params = model.parameters()
    total = sum(p.size for p in params)
    shape = "-".join(map(str, [X.shape[1], *args.hidden, 10]))
    print(
        f"network {shape} ({args.activation}), float64, {total:,} parameters, "
        f"batch of {len(rows)} digits, cross-entropy loss"
    )

    def loss() -> Any:
        return F.cross_entropy(model(xb), yb)

    # Finite differences need two forward passes per checked entry; backprop needs one forward
    # and one backward pass for all of them. tg.fd_report measures both (study.py).
    picks = None
    if args.max_params is not None and args.max_params < total:
        rng = np.random.default_rng(args.seed)
        flat = rng.choice(total, args.max_params, replace=False)
        offsets = np.cumsum([0] + [p.size for p in params])
        picks = []
        for i in flat:
            k = int(np.searchsorted(offsets, i, side="right") - 1)
            picks.append((k, np.unravel_index(i - offsets[k], params[k].shape)))
        print(
            f"checking a random sample of {len(picks):,} of the {total:,} parameters "
            f"(--max-params); the full check would take ~{2 * total:,} forward passes"
        )
    names = [name for name, _ in model.named_parameters()]
    report = tg.fd_report(loss, params, eps=args.eps, names=names, entries=picks)
    print(report.table())
    # Entries whose gradient is ~0 (e.g. weights of always-blank pixels) have no meaningful
    # relative error: fd_report judges those by the absolute difference alone.
    print(f"max |backprop - finite diff|          = {report.max_abs:.3e}")
    print(
        f"max relative difference               = {report.max_rel:.3e}  "
        f"(over the {report.meaningful:,} entries with |grad| > {report.rel_floor:g})"
    )
    print(
        f"forward passes for finite differences = {report.forward_passes:,}  (2 per parameter, "
        f"eps = {args.eps:g})"
    )
    print(f"backprop time (forward + backward)    = {report.backprop_seconds * 1e3:.3f} ms")
    print(f"finite differences time               = {report.fd_seconds * 1e3:.1f} ms")
    print(f"ratio                                 = {report.ratio:,.0f}x slower")
    return 0


# ----- graph -----


def cmd_graph(args: argparse.Namespace) -> int:
    import tinygrad_edu as tg
    from tinygrad_edu.nn import functional as F

    tg.manual_seed(args.seed)
    X, y = tg.datasets.load_digits()
    rows = np.random.default_rng(args.seed).choice(len(X), min(args.batch_size, len(X)), False)
    dtype = "float64" if args.fd else None  # finite differences need float64's digits
    model = build_model(X.shape[1], args.hidden, 10, args.activation, dtype=dtype)
    xb = tg.Tensor(X[rows], dtype=dtype or "float32")
    yb = tg.Tensor(y[rows], dtype="int64")
    loss = F.cross_entropy(model(xb), yb)
    names = {**dict(model.named_parameters()), "images": xb, "labels": yb}
    shape = "-".join(map(str, [X.shape[1], *args.hidden, 10]))
    print(f"network {shape} ({args.activation}), batch of {len(rows)} digits, cross-entropy loss")
    written = tg.viz.draw(
        loss,
        args.out,
        names,
        formats=(args.format,),
        grads=args.grads,
        fd=True if args.fd else None,
    )
    for path in written:
        print(f"wrote {path}")
    if len(written) == 1:
        print(
            f"graphviz is not installed: skipped the .{args.format} picture "
            "(pip install graphviz, and Graphviz's dot program)"
        )
    return 0


# ----- demo -----


def cmd_demo(args: argparse.Namespace) -> int:
    from tinygrad_edu import demos

    if args.list or args.name is None:
        for name, title in demos.available():
            print(f"{name:<20} {title}")
        if not args.list:
            print("run one with: tinygrad-edu demo NAME (or: tinygrad-edu demo all)")
        return 0
    out = Path(args.out) if args.out is not None else demos.DEFAULT_OUT
    if args.name == "all":
        seconds = demos.run_all(out, tiny=args.tiny)
        print(f"ran {len(seconds)} demos in {sum(seconds.values()):.1f} s")
    else:
        demos.run(args.name, out, tiny=args.tiny)
    print(f"pictures written to {out.resolve()}")
    return 0


# ----- entry point -----


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (argparse exits with 2 on a bad argument)."""
    args = make_parser().parse_args(argv)
    command = {
        "train": cmd_train,
        "gradcheck": cmd_gradcheck,
        "graph": cmd_graph,
        "demo": cmd_demo,
    }[args.command]
    try:
        return command(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"tinygrad-edu {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
