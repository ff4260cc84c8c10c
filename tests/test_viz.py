"""tg.viz: the DOT text of a graph (nodes, edges, names, gradients, finite differences), the
pictures drawn from it, and the ``graph`` command."""

import builtins
import re
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import cli, nn
from tinygrad_edu.autograd import Op

HAVE_DOT = shutil.which("dot") is not None


# ----- reading DOT text back -----

NODE = re.compile(r"^\s*(n\d+) \[(.*)\];$", re.M)
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);$", re.M)
ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(dot):
    """{node id: {attribute: value}} (labels split into lines) and the list of edges."""
    nodes = {}
    for node, attrs in NODE.findall(dot):
        values = {k: v for k, v in ATTR.findall(attrs)}
        values["lines"] = values["label"].split("\\n")
        nodes[node] = values
    return nodes, EDGE.findall(dot)


def ops_and_leaves(nodes):
    ops = [n for n in nodes.values() if n["shape"] == "ellipse"]
    leaves = [n for n in nodes.values() if n["shape"] == "box"]
    return ops, leaves


def by_first_line(nodes, text):
    (node,) = [n for n in nodes.values() if n["lines"][0] == text]
    return node


def numbers(line):
    """The listed values of a ``grad |g|=... [v0, v1, ...]`` line."""
    inside = line[line.index("[") + 1 : line.index("]")]
    return [float(v) for v in inside.split(", ") if v != "..."]


def is_red(node):
    return node.get("color") == "red"


def svg_of(dot):
    return subprocess.run(
        ["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True
    ).stdout


def randn(*shape):
    return tg.Tensor(np.random.default_rng(0).standard_normal(shape), dtype="float32")


def double(values):
    return tg.Tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ----- structure -----


def test_sum_of_products_has_three_ops_two_leaves_five_edges():
    a, b = tg.Tensor([1.0, 2.0], requires_grad=True), tg.Tensor([3.0, 4.0], requires_grad=True)
    nodes, edges = parse(tg.viz.to_dot((a * b + a).sum(), {"a": a, "b": b}))
    ops, leaves = ops_and_leaves(nodes)
    assert sorted(n["lines"][0] for n in ops) == ["Add", "Mul", "Sum"]
    assert sorted(n["lines"][0] for n in leaves) == ["a", "b"]
    assert len(edges) == 5  # a->Mul, b->Mul, Mul->Add, a->Add, Add->Sum
    ids = {n["lines"][0]: k for k, n in nodes.items()}
    assert set(edges) == {
        (ids["a"], ids["Mul"]),
        (ids["b"], ids["Mul"]),
        (ids["Mul"], ids["Add"]),
        (ids["a"], ids["Add"]),
        (ids["Add"], ids["Sum"]),
    }
    assert by_first_line(nodes, "a")["lines"][1:] == ["(2,) float32", "requires_grad"]
    assert by_first_line(nodes, "Sum")["lines"][1] == "()"
    assert by_first_line(nodes, "Sum")["fillcolor"] == "palegreen"  # the root


def test_a_tensor_used_twice_gives_two_edges_and_constants_are_grey():
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    c = tg.Tensor([[5.0, 6.0]])  # does not require grad
    nodes, edges = parse(tg.viz.to_dot((x * x * 2 + c).sum()))
    ops, leaves = ops_and_leaves(nodes)
    assert sorted(n["lines"][0] for n in ops) == ["Add", "Mul", "MulScalar(2)", "Sum"]
    mul = [k for k, n in nodes.items() if n["lines"][0] == "Mul"][0]
    assert sum(1 for e in edges if e[1] == mul) == 2  # x * x: the same input twice
    const = [n for n in leaves if "const" in n["lines"]]
    assert len(const) == 1 and const[0]["fillcolor"] == "lightgrey"
    assert const[0]["lines"][0] == "(1, 2) float32"


def test_an_mlp_is_labelled_with_its_parameter_names():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    out = model(randn(5, 4))
    loss = (out * out).mean()
    nodes, edges = parse(tg.viz.to_dot(loss, params=model))
    _, leaves = ops_and_leaves(nodes)
    names = {n["lines"][0]: n["lines"][1] for n in leaves if "requires_grad" in n["lines"]}
    assert names == {
        "0.weight": "(3, 4) float32",
        "0.bias": "(3,) float32",
        "2.weight": "(2, 3) float32",
        "2.bias": "(2,) float32",
    }
    # Every parameter feeds the op that uses it.
    ids = {n["lines"][0]: k for k, n in nodes.items()}
    targets = {nodes[b]["lines"][0] for a, b in edges if a in (ids["0.weight"], ids["0.bias"])}
    assert len(targets) == 1 and targets.pop().startswith("Linear")


def test_labels_are_escaped_for_dot():
    w = tg.Tensor([1.0], requires_grad=True)
    name = 'w "quoted" \\ back\nslash'
    dot = tg.viz.to_dot((w * 3).sum(), {name: w})
    assert 'label="w \\"quoted\\" \\\\ back\\nslash\\n(1,) float32' in dot
    if HAVE_DOT:
        assert "w &quot;quoted&quot; \\ back" in svg_of(dot)


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
def test_dot_parses_and_the_svg_names_the_parameters_and_ops():
    tg.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2))
    loss = nn.functional.cross_entropy(
        model(randn(6, 3)), tg.Tensor([0, 1, 1, 0, 1, 0], dtype="int64")
    )
    svg = svg_of(tg.viz.to_dot(loss, model, grads=True))
    for text in ("0.weight", "0.bias", "2.weight", "2.bias", "CrossEntropy", "Linear(sigmoid)"):
        assert text in svg
    assert svg.count('class="node"') == 9 and svg.count('class="edge"') == 8


def test_a_deep_chain_is_walked_without_recursion():
    x = tg.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    nodes, edges = parse(tg.viz.to_dot(y))
    assert len(nodes) == 5001 and len(edges) == 5000


def test_drawing_after_a_backward_that_freed_the_graph_says_retain_graph():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        tg.viz.to_dot(y)


def test_bad_arguments_are_clear_errors():
    x = tg.Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="Tensor"):
        tg.viz.to_dot(x.numpy())
    with pytest.raises(TypeError, match="params"):
        tg.viz.to_dot(x * 2, params=[x])
    with pytest.raises(TypeError, match="fd must be"):
        tg.viz.to_dot((x * 2).sum(), fd="yes")
    big = tg.Tensor(np.ones(100), requires_grad=True)
    with pytest.raises(ValueError, match="fd_max_entries"):
        tg.viz.to_dot((big * 2).sum(), fd=True, fd_max_entries=50)


# ----- gradients -----


def test_gradient_labels_are_the_numbers_backward_computes():
    a = double([1.0, -2.0])
    b = double([3.0, 0.5])
    h = a * b
    y = (h * h + a).sum()
    y.backward(retain_graph=True)
    nodes, _ = parse(tg.viz.to_dot(y, {"a": a, "b": b, "h": h}, grads=True, values=2))
    for name, expected in (("a", a.grad.numpy()), ("b", b.grad.numpy())):
        line = [s for s in by_first_line(nodes, name)["lines"] if s.startswith("grad")][0]
        assert numbers(line) == pytest.approx(expected, rel=1e-3)
        norm = float(re.search(r"\|g\|=(\S+)", line).group(1))
        assert norm == pytest.approx(np.linalg.norm(expected), rel=1e-3)
    # An intermediate tensor shows dy/dh = 2h.
    mul = [n for n in nodes.values() if n["lines"][:2] == ["Mul", "h"]][0]
    assert numbers(mul["lines"][3]) == pytest.approx(2 * h.numpy(), rel=1e-3)
    # Drawing did not touch .grad or the graph: a second backward adds the same again.
    before = a.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * before)


class SquareTwiceTooSteep(Op):
    """z = x^2, with a wrong backward: 4x g instead of 2x g."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.binary("mul", x, x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return ctx.backend.binary("mul", g, ctx.backend.binary("mul", x, 4.0))


class Square(SquareTwiceTooSteep):
    def backward(ctx, g):
        (x,) = ctx.saved
        return ctx.backend.binary("mul", g, ctx.backend.binary("mul", x, 2.0))


def _chain(op, x, w):
    return op.apply(x * w).tanh().sum()


@pytest.mark.parametrize("op", [Square, SquareTwiceTooSteep])
def test_replayed_finite_differences_mark_the_nodes_below_a_wrong_backward(op):
    x, w = double([0.3, -0.7, 1.1]), double([0.5, 0.2, -0.4])
    x_before = x.numpy().copy()
    nodes, _ = parse(tg.viz.to_dot(_chain(op, x, w), {"x": x, "w": w}, fd=True))
    red = {n["lines"][0] for n in nodes.values() if is_red(n)}
    if op is Square:
        assert red == set()
    else:  # the wrong rule doubles what reaches its input and everything below it
        assert red == {"x", "w", "Mul"}
        assert "backprop != finite differences" in by_first_line(nodes, "x")["lines"]
    for node in nodes.values():  # every tensor that requires grad gets both gradients
        kinds = [s.split(" ")[0] for s in node["lines"] if s.startswith(("grad ", "fd "))]
        assert kinds == ["grad", "fd"]
    x_lines = by_first_line(nodes, "x")["lines"]
    fd = numbers([s for s in x_lines if s.startswith("fd")][0])
    bp = numbers([s for s in x_lines if s.startswith("grad")][0])
    factor = 2.0 if op is SquareTwiceTooSteep else 1.0
    assert bp == pytest.approx(factor * np.array(fd), rel=1e-3)
    np.testing.assert_array_equal(x.numpy(), x_before)  # every nudge undone


def test_closure_finite_differences_check_the_leaves():
    x, w = double([0.3, -0.7, 1.1]), double([0.5, 0.2, -0.4])

    def f():
        return _chain(SquareTwiceTooSteep, x, w)

    nodes, _ = parse(tg.viz.to_dot(f(), {"x": x, "w": w}, fd=f))
    red = {n["lines"][0] for n in nodes.values() if is_red(n)}
    assert red == {"x", "w"}  # a closure can only nudge the leaves
    assert not any(s.startswith("fd") for s in by_first_line(nodes, "Mul")["lines"])


def test_float32_graphs_use_a_looser_finite_difference_check():
    tg.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    loss = nn.functional.cross_entropy(
        model(randn(5, 3)), tg.Tensor([0, 1, 1, 0, 1], dtype="int64")
    )
    nodes, _ = parse(tg.viz.to_dot(loss, model, fd=True))
    assert not any(is_red(n) for n in nodes.values())
    assert (
        sum(1 for n in nodes.values() if any(s.startswith("fd") for s in n["lines"])) == 7
    )  # 4 params, 3 ops


def test_the_graph_of_a_gradient_shows_second_derivatives():
    x = double([0.5, -1.0, 2.0])
    (g,) = tg.grad((x**3).sum(), x, create_graph=True)  # g = 3 x^2, itself a graph
    root = g.sum()
    nodes, edges = parse(tg.viz.to_dot(root, {"x": x}, fd=True))
    ops, leaves = ops_and_leaves(nodes)
    assert len(ops) >= 2 and len(edges) >= 2
    assert not any(is_red(n) for n in nodes.values())
    x_lines = by_first_line(nodes, "x")["lines"]
    second = numbers([s for s in x_lines if s.startswith("grad")][0])
    assert second == pytest.approx(6 * x.numpy(), rel=1e-3)  # d(sum 3x^2)/dx = 6x


# ----- pictures -----


def test_draw_writes_the_dot_file_without_graphviz(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_graphviz(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError("no graphviz here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_graphviz)
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    written = tg.viz.draw((x * 2).sum(), tmp_path / "sub" / "g.svg", {"x": x})
    assert written == [tmp_path / "sub" / "g.dot"]
    assert parse(written[0].read_text())[0]["n0"]["lines"][0] == "x"


def test_draw_renders_svg_and_png(tmp_path):
    pytest.importorskip("graphviz")
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot program is not installed")
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    written = tg.viz.draw((x * 2).sum(), tmp_path / "g", {"weights_x": x}, formats=("svg", "png"))
    assert written == [tmp_path / "g.dot", tmp_path / "g.svg", tmp_path / "g.png"]
    assert "weights_x" in written[1].read_text() and "MulScalar(2)" in written[1].read_text()
    assert written[2].read_bytes()[:4] == b"\x89PNG"


# ----- the command -----


def test_graph_command_draws_the_chapter_network(capsys, tmp_path):
    code = cli.main(["graph", "--out", str(tmp_path / "net"), "--batch-size", "8", "--grads"])
    out = capsys.readouterr().out
    assert code == 0 and "network 64-15-10 (sigmoid), batch of 8 digits" in out
    assert f"wrote {tmp_path / 'net.dot'}" in out
    nodes, edges = parse((tmp_path / "net.dot").read_text())
    first = {n["lines"][0] for n in nodes.values()}
    assert {"0.weight", "0.bias", "2.weight", "2.bias", "images", "labels"} <= first
    assert {"Linear(sigmoid)", "Linear", "CrossEntropy(mean)"} <= first
    assert by_first_line(nodes, "images")["lines"][1] == "(8, 64) float32"
    assert len(nodes) == 9 and len(edges) == 8
    try:
        import graphviz  # noqa: F401
    except ImportError:
        assert "skipped the .svg picture" in out
    else:
        if HAVE_DOT:
            assert "0.weight" in (tmp_path / "net.svg").read_text()


def test_graph_command_with_finite_differences_finds_no_disagreement(capsys, tmp_path):
    argv = ["graph", "--out", str(tmp_path / "g"), "--batch-size", "2", "--hidden", "3", "--fd"]
    assert cli.main(argv) == 0
    nodes, _ = parse((tmp_path / "g.dot").read_text())
    assert by_first_line(nodes, "0.weight")["lines"][1] == "(3, 64) float64"
    with_fd = [n for n in nodes.values() if any(s.startswith("fd") for s in n["lines"])]
    assert len(with_fd) == 7 and not any(is_red(n) for n in nodes.values())


def test_replay_passes_keyword_arguments_and_copes_with_views():
    x = double([0.2, -0.3, 0.4, 0.1])
    v = x.reshape(2, 2)  # a view of x's storage: nudging it must not nudge x as well
    y = (tg.Tensor.cat([v, v * x.reshape(2, 2)], axis=1) ** 2).sum()  # Cat: axis keyword-only
    nodes, _ = parse(tg.viz.to_dot(y, {"x": x, "v": v}, fd=True))
    assert by_first_line(nodes, "Cat")["lines"][1] == "(2, 4)"
    assert not any(is_red(n) for n in nodes.values())
    assert sum(1 for n in nodes.values() if any(s.startswith("fd") for s in n["lines"])) == 7


class ForgetsItsGradient(Op):
    """z = x, with a backward that sends nothing back (as if the rule were missing)."""

    def forward(ctx, x):
        return ctx.backend.copy(x)

    def backward(ctx, g):
        return None


def test_a_tensor_no_gradient_reaches_is_marked_and_checked_as_zero():
    x = double([0.5, -1.5])
    y = (ForgetsItsGradient.apply(x) * 3.0).sum() + x.sum()
    nodes, _ = parse(tg.viz.to_dot(y, {"x": x}, fd=True))
    forgets = by_first_line(nodes, "ForgetsItsGradient")
    assert not is_red(forgets) and numbers(forgets["lines"][2]) == pytest.approx([3.0, 3.0])
    x_node = by_first_line(nodes, "x")  # backprop says 1 (only through x.sum()), fd says 4
    assert is_red(x_node)
    assert numbers(x_node["lines"][3]) == pytest.approx([1.0, 1.0])
    assert numbers(x_node["lines"][4]) == pytest.approx([4.0, 4.0], rel=1e-4)
    # Alone, the forgetful op leaves x with no gradient at all.
    z = ForgetsItsGradient.apply(x).sum()
    nodes, _ = parse(tg.viz.to_dot(z, {"x": x}, fd=True))
    x_node = by_first_line(nodes, "x")
    assert "grad none (no gradient reaches it: 0)" in x_node["lines"] and is_red(x_node)


def test_fd_replay_refuses_a_custom_function_clearly():
    """A tg.autograd.Function's forward ran on Tensors; replay cannot re-run it, and says so."""

    class Twice(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0

    x = tg.Tensor(np.array([1.0, 2.0]), dtype=np.float64, requires_grad=True)
    y = Twice.apply(x).sum()
    with pytest.raises(RuntimeError, match="cannot replay Twice"):
        tg.viz.to_dot(y, fd=True)
    assert "Twice" in tg.viz.to_dot(y, fd=lambda: Twice.apply(x).sum())
