"""Study tools: look inside the engine while it runs, without changing it.

- ``tg.autograd.detect_anomaly()``: the first op whose forward output or backward gradient holds
  NaN/inf raises, naming the op, its input shapes, the direction and the user's source line.
- ``tg.profile()``: calls, forward time and backward time per op name, and Numba compile time.
- ``tg.warmup(model, example_input)``: one training step run ahead, so Numba compiles (or loads
  from its disk cache) every kernel the real steps will need; the model ends as it started.
- ``tg.fd_report(f, tensors)`` / ``tg.fd_sweep(f, tensors)``: backprop against finite differences,
  measured (errors, forward passes, seconds), and the error as a function of eps.

How they hook in: every op goes through ``Op.apply`` (a classmethod of the base class).
While at least one block is active, ``Op.apply`` is replaced by a wrapper that runs the
active tools' hooks around the original; when the last block exits the original is put back, so
the tools cost nothing when unused. A hook that needs the backward pass sets an *instance*
attribute ``ctx.backward`` on each node made inside the block: it shadows the class's method, and
the backward walk calls ``ctx.backward(g)``, so the wrapped rule runs in its place.

NOTE: ``Op.apply`` is one attribute of one class: while a block is active it affects the
ops of *all* threads, not only the thread that entered it.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_edu.autograd import Op, grad
from tinygrad_edu.gradcheck import numerical_gradient
from tinygrad_edu.tensor import Tensor

# ----- the one patch of Op.apply, shared by every active block -----

_ORIGINAL_APPLY = Op.__dict__["apply"]  # the classmethod object itself
_lock = threading.Lock()
_hooks: list[Callable] = []  # hook(call, cls, inputs, kwargs) -> out; innermost first
_chain: Callable | None = None  # the hooks composed around the original apply


def _run_original(cls: type, inputs: tuple, kwargs: dict) -> Tensor:
    return _ORIGINAL_APPLY.__func__(cls, *inputs, **kwargs)


def _patched_apply(cls: type, *inputs: Any, **kwargs: Any) -> Tensor:
    return _chain(cls, inputs, kwargs)


def _rebuild() -> None:
    """Compose the active hooks; install the patch when there are some, remove it when none."""
    global _chain
    chain = _run_original
    for hook in _hooks:
        chain = (lambda h, inner: lambda cls, i, k: h(inner, cls, i, k))(hook, chain)
    _chain = chain
    Op.apply = classmethod(_patched_apply) if _hooks else _ORIGINAL_APPLY


def _add_hook(hook: Callable) -> None:
    with _lock:
        _hooks.append(hook)
        _rebuild()


def _remove_hook(hook: Callable) -> None:
    with _lock:
        _hooks.remove(hook)  # blocks may exit in any order (threads): remove this one only
        _rebuild()


def _is_ours(module_name: str) -> bool:
    return module_name == "tinygrad_edu" or module_name.startswith("tinygrad_edu.")


def _user_line(depth: int = 3) -> tuple[str, int]:
    """The first stack frame outside the tinygrad_edu package: the user's line that made the op."""
    frame = sys._getframe(depth)
    while frame is not None and _is_ours(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
    return ("<unknown>", 0) if frame is None else (frame.f_code.co_filename, frame.f_lineno)


def _shapes(inputs: tuple) -> str:
    return ", ".join(str(tuple(t.shape)) if isinstance(t, Tensor) else repr(t) for t in inputs)


# ----- detect_anomaly -----


def _non_finite(x: Any) -> str | None:
    """'nan' or 'inf' when the array (or Tensor, or number) holds such a value, else None."""
    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, (float, np.floating)):
        return None if math.isfinite(x) else ("nan" if math.isnan(x) else "inf")
    if not isinstance(x, np.ndarray):
        if not hasattr(x, "copy_to_host"):  # a GPU array is copied back; anything else passes
            return None
        x = x.copy_to_host()
    if x.dtype.kind not in "fc" or np.isfinite(x).all():
        return None
    return "nan" if np.isnan(x).any() else "inf"


def _anomaly_message(name: str, inputs: tuple, direction: str, what: str, bad: str, where) -> str:
    file, line = where
    return (
        f"detect_anomaly: {name} produced {bad} in its {direction} pass ({what}); input shapes "
        f"({_shapes(inputs)}); the op was created at {file}:{line}"
    )


def _anomaly_hook(call: Callable, cls: type, inputs: tuple, kwargs: dict) -> Tensor:
    where = _user_line()
    out = call(cls, inputs, kwargs)
    name = cls.__name__
    bad = _non_finite(out._data)
    if bad:
        raise RuntimeError(_anomaly_message(name, inputs, "forward", "its output", bad, where))
    ctx = out._ctx
    if ctx is not None:
        rule = ctx.backward  # the bound method, or an earlier hook's wrapper

        def checked_backward(g: Any) -> Any:
            grads = rule(g)
            for k, pg in enumerate(grads if type(grads) is tuple else (grads,)):
                bad = pg is not None and _non_finite(pg)
                if bad:
                    what = f"the gradient for input {k}"
                    raise RuntimeError(_anomaly_message(name, inputs, "backward", what, bad, where))
            return grads

        ctx.backward = checked_backward
    return out


class detect_anomaly(contextlib.ContextDecorator):
    """``with tg.autograd.detect_anomaly():`` (or ``@tg.autograd.detect_anomaly()``): stop at the
    first op whose forward output or backward gradient holds NaN or inf.

    The RuntimeError names the op, its input shapes, the direction (forward or backward) and the
    line of *your* code that created the op (the first stack frame outside tinygrad_edu), so a
    NaN that appears during ``loss.backward()`` still points at the forward line to blame.
    Every op's output is scanned, so it is slow: use it to debug, not to train. While active
    it affects all threads (see the module docstring).
    """

    def __enter__(self) -> detect_anomaly:
        _add_hook(_anomaly_hook)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _remove_hook(_anomaly_hook)


# ----- profile -----


def _kernel_name(dispatcher: Any) -> str:
    fn = getattr(dispatcher, "py_func", None)
    return f"{fn.__module__}.{fn.__qualname__}" if fn is not None else repr(dispatcher)


_found_dispatchers: tuple[int, list[Any]] = (-1, [])  # (len(sys.modules) then, dispatchers)


def _library_dispatchers() -> list[Any]:
    """Every Numba dispatcher defined at module level in tinygrad_edu (plain, or the serial and
    parallel builds of a ``backend.jit.Kernel``), for counting disk-cache hits. The scan takes
    milliseconds, so it is redone only when modules have been imported since the last one."""
    global _found_dispatchers
    if _found_dispatchers[0] == len(sys.modules):
        return _found_dispatchers[1]
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return []
    found = {}
    for module_name, module in list(sys.modules.items()):
        if not _is_ours(module_name) or module is None:
            continue
        for value in list(vars(module).values()):
            for d in (value, getattr(value, "serial", None), getattr(value, "parallel", None)):
                if isinstance(d, Dispatcher):
                    found[id(d)] = d
    _found_dispatchers = (len(sys.modules), list(found.values()))
    return _found_dispatchers[1]


def _cache_hits(dispatchers: list[Any]) -> dict[int, int]:
    return {id(d): sum(d._cache_hits.values()) for d in dispatchers}


def _compile_listener(prof: profile) -> Any:
    """A ``numba.core.event`` listener for "numba:compile": Numba triggers that event only when
    it really compiles (a disk-cache load skips it; see ``Dispatcher.compile``)."""
    from numba.core import event

    class CompileListener(event.Listener):
        def __init__(self) -> None:
            self.started: list[float] = []  # nested compilations (a kernel calling a kernel)

        def on_start(self, ev: Any) -> None:
            self.started.append(time.perf_counter())

        def on_end(self, ev: Any) -> None:
            seconds = time.perf_counter() - self.started.pop()
            data = ev.data or {}
            name = _kernel_name(data.get("dispatcher"))
            signature = "(" + ", ".join(map(str, data.get("args", ()))) + ")"
            prof.compiled.append((name, signature, seconds))
            if not self.started:  # count the outermost only: its time includes the inner ones
                prof.compile_seconds += seconds

    return CompileListener()


class profile(contextlib.ContextDecorator):
    """``with tg.profile() as prof:`` counts, per op name, calls and total forward and backward
    seconds, and measures Numba compilation inside the block.

    - ``prof.stats``: ``{op name: {"calls", "forward_s", "backward_s"}}``. Backward seconds are
      those of the nodes created inside the block, even if ``backward()`` runs after it.
    - ``prof.compile_seconds`` and ``prof.compiled`` (``(kernel, signature, seconds)`` per real
      compilation, from Numba's "numba:compile" event); ``prof.cache_hits`` (``{kernel: loads}``,
      the library's kernels loaded from Numba's disk cache instead of compiled).
    - ``prof.table()``: the same as text, the op taking the most time first.

    An op's forward time includes any compilation its first call triggers. While active it
    affects all threads (see the module docstring).
    """

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, float]] = {}
        self.compiled: list[tuple[str, str, float]] = []
        self.compile_seconds = 0.0
        self.cache_hits: dict[str, int] = {}
        self.wall_seconds = 0.0

    def _entry(self, name: str) -> dict[str, float]:
        entry = self.stats.get(name)
        if entry is None:
            entry = self.stats[name] = {"calls": 0, "forward_s": 0.0, "backward_s": 0.0}
        return entry

    def _hook(self, call: Callable, cls: type, inputs: tuple, kwargs: dict) -> Tensor:
        start = time.perf_counter()
        out = call(cls, inputs, kwargs)
        seconds = time.perf_counter() - start
        entry = self._entry(cls.__name__)
        entry["calls"] += 1
        entry["forward_s"] += seconds
        ctx = out._ctx
        if ctx is not None:
            rule = ctx.backward

            def timed_backward(g: Any) -> Any:
                start = time.perf_counter()
                try:
                    return rule(g)
                finally:
                    entry["backward_s"] += time.perf_counter() - start

            ctx.backward = timed_backward
        return out

    def __enter__(self) -> profile:
        self._dispatchers = _library_dispatchers()
        self._hits_before = _cache_hits(self._dispatchers)
        self._listener = None
        try:
            from numba.core import event

            self._listener = _compile_listener(self)
            event.register("numba:compile", self._listener)
        except ImportError:
            pass
        _add_hook(self._hook)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall_seconds += time.perf_counter() - self._start
        _remove_hook(self._hook)
        if self._listener is not None:
            from numba.core import event

            event.unregister("numba:compile", self._listener)
        before = self._hits_before
        for d in self._dispatchers:
            loads = sum(d._cache_hits.values()) - before.get(id(d), 0)
            if loads:
                self.cache_hits[_kernel_name(d)] = self.cache_hits.get(_kernel_name(d), 0) + loads

    def table(self) -> str:
        """The per-op table, most total time first, and a line about Numba compilation."""
        rows = sorted(
            self.stats.items(), key=lambda kv: -(kv[1]["forward_s"] + kv[1]["backward_s"])
        )
        width = max([len("op")] + [len(name) for name in self.stats])
        lines = [
            f"{'op':<{width}}  {'calls':>7}  {'forward ms':>11}  {'backward ms':>11}  "
            f"{'total ms':>10}",
        ]
        for name, s in rows:
            total = s["forward_s"] + s["backward_s"]
            lines.append(
                f"{name:<{width}}  {s['calls']:>7}  {s['forward_s'] * 1e3:>11.3f}  "
                f"{s['backward_s'] * 1e3:>11.3f}  {total * 1e3:>10.3f}"
            )
        hits = sum(self.cache_hits.values())
        lines.append(
            f"numba: {len(self.compiled)} compilations, {self.compile_seconds * 1e3:.1f} ms; "
            f"{hits} kernel builds loaded from the disk cache"
        )
        return "\n".join(lines)


# ----- warmup -----


@dataclass
class WarmupReport:
    """What ``warmup`` made Numba do: ``compiled`` (kernel, signature, seconds) per compilation,
    ``cache_hits`` (kernel: builds loaded from disk), and the seconds the whole step took."""

    compiled: list[tuple[str, str, float]]
    cache_hits: dict[str, int]
    compile_seconds: float
    seconds: float

    def __str__(self) -> str:
        return (
            f"warmup: {self.seconds:.3f} s, {len(self.compiled)} compilations "
            f"({self.compile_seconds:.3f} s), {sum(self.cache_hits.values())} cache loads"
        )


def warmup(
    model: Any,
    example_input: Any,
    loss_fn: Callable[..., Tensor] | None = None,
    optimizer: Any = None,
) -> WarmupReport:
    """Run one training step (forward, backward, and ``optimizer.step()`` if given) so that
    Numba compiles, or loads from its cache, every kernel a real step needs; then put the
    parameters, their ``.grad`` and the optimizer's state back as they were.

    ``example_input`` is a batch ``x`` (the loss is then ``loss_fn(model(x))``, by default the
    mean of the output) or a pair ``(x, y)`` (``loss_fn(model(x), y)``, by default ``fit``'s loss:
    cross-entropy for integer labels, MSE otherwise). Use a batch of the real shapes and dtypes:
    Numba compiles once per argument type (and the CPU kernels once per serial/parallel build,
    chosen by size). Buffers outside ``parameters()`` are not restored.
    """
    from tinygrad_edu import train

    params = list(model.parameters())
    values = [p.numpy().copy() for p in params]
    grads = [p.grad for p in params]
    state = optimizer.state_dict() if optimizer is not None else None
    with profile() as prof:
        try:
            if isinstance(example_input, (tuple, list)) and len(example_input) == 2:
                x, y = example_input
                out = model(x if isinstance(x, Tensor) else Tensor(x))
                if not isinstance(y, Tensor):
                    array = np.asarray(y)
                    y = Tensor(array, dtype="int64" if array.dtype.kind in "iu" else None)
                loss = (loss_fn or train._default_loss)(out, y)
            else:
                x = example_input
                out = model(x if isinstance(x, Tensor) else Tensor(x))
                loss = loss_fn(out) if loss_fn is not None else out.mean()
            for p in params:
                p.grad = None
            loss.backward()
            if optimizer is not None:
                optimizer.step()
        finally:
            for p, v, g in zip(params, values, grads):
                if isinstance(p._data, np.ndarray) and p._data.flags.writeable:
                    p._data[...] = v  # in place: an optimizer's flat views stay valid
                else:
                    p.data = v
                p.grad = g
            if optimizer is not None:
                optimizer.load_state_dict(state)
    return WarmupReport(prof.compiled, prof.cache_hits, prof.compile_seconds, prof.wall_seconds)


# ----- finite differences, measured -----


@dataclass
class FDRow:
    """One tensor of an ``fd_report``: the largest differences between the two methods."""

    name: str
    shape: tuple[int, ...]
    checked: int  # entries compared
    max_abs: float
    max_rel: float  # over the entries with max(|backprop|, |fd|) > rel_floor
    meaningful: int  # how many entries that is


@dataclass
class FDReport:
    """``fd_report``'s result: per tensor, and for the whole function."""

    rows: list[FDRow]
    eps: float
    dtype: str
    forward_passes: int
    backprop_seconds: float  # one forward + backward, the median of a few runs
    fd_seconds: float
    rel_floor: float = 1e-6

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((r.max_rel for r in self.rows), default=0.0)

    @property
    def meaningful(self) -> int:
        return sum(r.meaningful for r in self.rows)

    @property
    def checked(self) -> int:
        return sum(r.checked for r in self.rows)

    @property
    def ratio(self) -> float:
        return self.fd_seconds / self.backprop_seconds if self.backprop_seconds else math.inf

    def table(self) -> str:
        """One line per tensor (``str(report)`` adds the totals)."""
        width = max([len("tensor")] + [len(r.name) for r in self.rows])
        lines = [
            f"{'tensor':<{width}}  {'shape':>12}  {'checked':>8}  {'max abs diff':>12}  "
            f"{'max rel diff':>12}"
        ]
        for r in self.rows:
            lines.append(
                f"{r.name:<{width}}  {str(r.shape):>12}  {r.checked:>8,}  {r.max_abs:>12.3e}  "
                f"{r.max_rel:>12.3e}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [
            self.table(),
            f"{self.dtype}, eps = {self.eps:g}: {self.forward_passes:,} forward passes for "
            "finite differences",
            f"backprop {self.backprop_seconds * 1e3:.3f} ms, finite differences "
            f"{self.fd_seconds * 1e3:.1f} ms: {self.ratio:,.0f}x slower",
        ]
        return "\n".join(lines)


@contextlib.contextmanager
def _as_dtype(tensors: list[Tensor], dtype: Any):
    """Temporarily give the tensors another float dtype (the same array objects come back)."""
    if dtype is None:
        yield
        return
    originals = [t._data for t in tensors]
    try:
        for t in tensors:
            if t.dtype != dtype:
                t._data = t._backend.astype(t._data, np.dtype(dtype))
        yield
    finally:
        for t, a in zip(tensors, originals):
            t._data = a


def _backprop(f: Callable[[], Tensor], tensors: list[Tensor], repeat: int):
    """Backprop's gradient (float64 arrays, zeros where unused) and its median time."""
    times, found = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        found = grad(f(), tensors, allow_unused=True)
        times.append(time.perf_counter() - start)
    arrays = [
        np.zeros(t.shape) if g is None else g.numpy().astype(np.float64)
        for t, g in zip(tensors, found)
    ]
    return arrays, float(np.median(times))


def fd_report(
    f: Callable[[], Tensor],
    tensors: Sequence[Tensor],
    eps: float = 1e-6,
    dtype: Any = None,
    names: Sequence[str] | None = None,
    entries: Any = None,
    repeat: int = 5,
    rel_floor: float = 1e-6,
) -> FDReport:
    """Measure backprop against central differences (``numerical_gradient``) for ``f()``.

    Per tensor: the largest absolute and relative difference (relative to
    ``max(|backprop|, |fd|)``, over entries where that exceeds ``rel_floor``: a gradient of ~0
    has no meaningful relative error). For the whole function: forward passes used (2 per
    checked entry), the seconds of each method and their ratio. ``dtype=np.float64`` promotes
    the tensors for the measurement (then puts them back); ``entries`` checks a sample, as
    ``numerical_gradient`` takes it. ``str(report)`` is a table.
    """
    tensors = list(tensors)
    names = list(names) if names is not None else [f"tensors[{k}]" for k in range(len(tensors))]
    with _as_dtype(tensors, dtype):
        analytic, t_backprop = _backprop(f, tensors, repeat)
        start = time.perf_counter()
        numeric = numerical_gradient(f, tensors, eps=eps, method="central", entries=entries)
        t_fd = time.perf_counter() - start
        dtype_name = str(np.result_type(*[t.dtype for t in tensors])) if tensors else "-"
    rows = []
    for name, t, a, n in zip(names, tensors, analytic, numeric):
        checked = ~np.isnan(n)
        a, n = a[checked], n[checked]
        diff = np.abs(a - n)
        scale = np.maximum(np.abs(a), np.abs(n))
        meaningful = scale > rel_floor
        rel = diff[meaningful] / scale[meaningful]
        rows.append(
            FDRow(
                name,
                tuple(t.shape),
                int(checked.sum()),
                float(diff.max()) if diff.size else 0.0,
                float(rel.max()) if rel.size else 0.0,
                int(meaningful.sum()),
            )
        )
    passes = 2 * sum(r.checked for r in rows)
    return FDReport(rows, eps, dtype_name, passes, t_backprop, t_fd, rel_floor)


@dataclass
class FDSweep:
    """``fd_sweep``'s result: the largest |backprop - central difference| for each eps and dtype.

    Too large an eps: truncation error, ~eps^2 (the Taylor terms central differences drop). Too
    small: round-off, ~(machine epsilon * |J|) / eps (J's last bits divided by a tiny step). The
    best eps sits between, near the cube root of the machine epsilon: ~1e-5 in float64 and ~1e-2
    in float32.
    """

    eps: list[float]
    errors: dict[str, list[float]] = field(default_factory=dict)

    def best(self, dtype: str) -> float:
        """The eps with the smallest error for ``dtype``."""
        return self.eps[int(np.nanargmin(self.errors[dtype]))]

    def __str__(self) -> str:
        kinds = list(self.errors)
        lines = [f"{'eps':>8}  " + "  ".join(f"{k:>12}" for k in kinds)]
        for i, e in enumerate(self.eps):
            lines.append(f"{e:>8.0e}  " + "  ".join(f"{self.errors[k][i]:>12.3e}" for k in kinds))
        lines.append("best eps: " + ", ".join(f"{k} {self.best(k):.0e}" for k in kinds))
        return "\n".join(lines)


def fd_sweep(
    f: Callable[[], Tensor],
    tensors: Sequence[Tensor],
    eps_values: Sequence[float] | None = None,
    dtypes: Sequence[Any] = (np.float32, np.float64),
    entries: Any = None,
) -> FDSweep:
    """The finite-difference error curve: for each dtype and eps (1e-1 to 1e-10 by default),
    the largest |central difference - backprop| over the tensors' entries, with backprop run in
    float64 as the reference. Only ``tensors`` change dtype; other inputs of ``f`` stay as they
    are (make them float64, or a float32 curve measures float32 perturbations only)."""
    tensors = list(tensors)
    eps_values = [10.0**-k for k in range(1, 11)] if eps_values is None else list(eps_values)
    with _as_dtype(tensors, np.float64):
        reference, _ = _backprop(f, tensors, 1)
    sweep = FDSweep(eps_values)
    for dtype in dtypes:
        curve = []
        with _as_dtype(tensors, dtype):
            for eps in eps_values:
                numeric = numerical_gradient(f, tensors, eps=eps, entries=entries)
                curve.append(
                    max(float(np.nanmax(np.abs(n - a))) for n, a in zip(numeric, reference))
                )
        sweep.errors[np.dtype(dtype).name] = curve
    return sweep
