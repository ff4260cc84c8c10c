"""Learning-rate schedules: change each parameter group's ``lr`` once per epoch (or per batch).

The chapter's advice, made concrete: start with a learning rate large enough to make progress and
let it decay so that the last steps settle into a minimum instead of bouncing around it.
Semantics are PyTorch's (``torch.optim.lr_scheduler``): the constructor records each group's
``initial_lr`` and sets epoch 0's rate; call ``scheduler.step()`` once per epoch, *after*
``optimizer.step()``; ``get_last_lr()`` returns the rates now in use.

As in PyTorch, each rule is computed recursively from the current ``lr`` (so several schedulers
can be chained on one optimizer); the closed form is given in each docstring.

- ``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR``: fixed decays, per epoch.
- ``LambdaLR``: any rule, ``lr = initial_lr * lr_lambda(epoch)``.
- ``ReduceLROnPlateau``: ``step(val_loss)``; divide the rate when the metric stops improving.
- ``OneCycleLR``: warm up to ``max_lr`` and anneal far below the start, stepped once per *batch*.
"""

from __future__ import annotations

import math
import numbers
import types
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tinygrad_edu.errors import InputError
from tinygrad_edu.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


class LRScheduler:
    """Base class: subclasses define ``get_lr()``, the new rates after ``last_epoch`` += 1."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        if not isinstance(last_epoch, int) or last_epoch < -1:
            raise InputError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in group for group in optimizer.param_groups):
            raise InputError(
                f"{name}: resuming with last_epoch={last_epoch} needs 'initial_lr' in every "
                "parameter group: load the optimizer's state_dict first"
            )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True  # the constructor's step sets epoch 0 and must not decay
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group, as set by the last ``step()``."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (which saves itself)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def _check_positive(scheduler: str, key: str, value: Any, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an int" if integer else "a real number"
        raise TypeError(f"{scheduler}: {key} must be {expected}, got {value!r}")
    if not value > 0:
        raise InputError(f"{scheduler}: {key} must be > 0, got {value!r}")


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    lr(epoch) = initial_lr * gamma ** (epoch // step_size)
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _check_positive("StepLR", "step_size", step_size, integer=True)
        _check_positive("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each epoch listed in ``milestones``.

    lr(epoch) = initial_lr * gamma ** (number of milestones <= epoch)

    A milestone listed twice decays twice (PyTorch counts them the same way).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a list of ints, got {milestones!r}")
        milestones = list(milestones)
        for m in milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Integral):
                raise TypeError(f"MultiStepLR: milestones must be ints, got {m!r}")
            if m < 0:
                raise InputError(f"MultiStepLR: milestones must be >= 0, got {m!r}")
        _check_positive("MultiStepLR", "gamma", gamma)
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch.

    lr(epoch) = initial_lr * gamma ** epoch
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_positive("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """Follow half a cosine from the initial rate down to ``eta_min`` over ``T_max`` epochs.

    lr(epoch) = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    After T_max epochs the rate climbs back up along the same cosine (PyTorch's behaviour; the
    schedule has period 2 * T_max). Only the annealing part of SGDR: no warm restarts.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _check_positive("CosineAnnealingLR", "T_max", T_max)
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real) or eta_min < 0:
            raise InputError(f"CosineAnnealingLR: eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resumed: nothing to recurse from, use the formula
            return [
                eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                for base in self.base_lrs
            ]
        if (t - 1 - T) % (2 * T) == 0:  # the trough: the ratio below would be 0/0
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for base, lr in zip(self.base_lrs, self._current_lrs())
            ]
        # One step of the closed form, as a ratio, so that changes made by others are kept.
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class LambdaLR(LRScheduler):
    """Set the rate to the initial rate times a function of the epoch.

    lr(epoch) = initial_lr * lr_lambda(epoch)

    ``lr_lambda`` is one function for every group, or a list with one per group. A warm-up over
    the first 5 epochs, for instance: ``LambdaLR(opt, lambda epoch: min(1.0, (epoch + 1) / 5))``.
    Unlike the other rules this one is not recursive: it overwrites whatever ``lr`` holds.
    ``state_dict()`` saves no plain functions (they do not pickle), only the attributes of
    callable objects, as PyTorch does.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):  # checked by the base too, but needed here first
            raise TypeError(f"LambdaLR: expected an Optimizer, got {type(optimizer).__name__}")
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise InputError(
                f"LambdaLR: expected {n} lr_lambdas (one per parameter group), got {len(lambdas)}"
            )
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be callable, got {fn!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        saved = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        saved["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
            for fn in self.lr_lambdas
        ]
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        saved_lambdas = state_dict.pop("lr_lambdas", [])
        self.__dict__.update(state_dict)
        for fn, attributes in zip(self.lr_lambdas, saved_lambdas):
            if attributes is not None:
                fn.__dict__.update(attributes)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    Call ``scheduler.step(metric)`` once per epoch with the validation loss (``mode="min"``) or
    accuracy (``mode="max"``). A value improves on the best so far ``best`` when

        mode="min", threshold_mode="rel":   metric < best * (1 - threshold)
        mode="min", threshold_mode="abs":   metric < best - threshold
        mode="max", threshold_mode="rel":   metric > best * (1 + threshold)
        mode="max", threshold_mode="abs":   metric > best + threshold

    After more than ``patience`` epochs in a row without improvement, every group's rate becomes
    ``max(lr * factor, min_lr)`` (a change smaller than ``eps`` is skipped), and the count then
    waits ``cooldown`` epochs before it starts again. ``min_lr`` is one number or one per group.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise InputError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise InputError(
                f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        _check_real(name, "factor", factor)
        if not 0 <= factor < 1:
            raise InputError(f"{name}: factor must be in [0, 1) (< 1 to reduce), got {factor!r}")
        for key, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name}: {key} must be an int, got {value!r}")
            if value < 0:
                raise InputError(f"{name}: {key} must be >= 0, got {value!r}")
        for key, value in (("threshold", threshold), ("eps", eps)):
            _check_real(name, key, value)
            if not value >= 0:
                raise InputError(f"{name}: {key} must be >= 0, got {value!r}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise InputError(
                    f"{name}: expected {n} min_lrs (one per parameter group), got {len(min_lr)}"
                )
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * n
        for value in self.min_lrs:
            _check_real(name, "min_lr", value)
            if not value >= 0:
                raise InputError(f"{name}: min_lr must be >= 0, got {value!r}")
        # NOTE: no call to LRScheduler.__init__: the rate changes only when step(metric) says so.
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = self._current_lrs()

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """End an epoch whose metric (validation loss...) was ``metrics``; maybe lower the rate."""
        item = getattr(metrics, "item", None)
        try:
            current = float(item() if callable(item) else metrics)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"ReduceLROnPlateau.step: expected the metric as a number, got {metrics!r}"
            ) from err
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:  # bad epochs during a cooldown do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return (
                a < best * (1 - threshold) if self.threshold_mode == "rel" else a < best - threshold
            )
        return a > best * (1 + threshold) if self.threshold_mode == "rel" else a > best + threshold

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):  # a group was added since
            if self.default_min_lr is None:
                raise InputError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups but "
                    f"min_lr lists {len(self.min_lrs)}; set scheduler.min_lrs to one per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:  # too small a change is noise: skip it
                group["lr"] = new


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, 2018): up to ``max_lr``, then far below the start.

    Step it after every *batch*, ``total_steps`` times in all (or ``epochs * steps_per_epoch``).
    With T = total_steps and p = pct_start, the rate goes (each leg a half cosine, or a straight
    line with ``anneal_strategy="linear"``)::

        initial_lr = max_lr / div_factor  ->  max_lr         over steps 0 .. p*T - 1
        max_lr  ->  min_lr = initial_lr / final_div_factor   over the rest, to step T - 1

    With ``three_phase=True``: initial_lr -> max_lr, back to initial_lr over as many steps, then
    down to min_lr. Momentum moves the other way (``cycle_momentum``, on by default): from
    ``max_momentum`` down to ``base_momentum`` while the rate rises, and back; it sets the groups'
    ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam, AdamW). The group keys ``initial_lr``,
    ``max_lr``, ``min_lr``, ``max_momentum`` and ``base_momentum`` hold each group's ends, as in
    PyTorch. ``max_lr``, ``base_momentum`` and ``max_momentum`` are one number or one per group.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            _check_positive(name, "total_steps", total_steps, integer=True)
        elif epochs is not None and steps_per_epoch is not None:
            _check_positive(name, "epochs", epochs, integer=True)
            _check_positive(name, "steps_per_epoch", steps_per_epoch, integer=True)
            total_steps = epochs * steps_per_epoch
        else:
            raise InputError(f"{name}: give either total_steps or both epochs and steps_per_epoch")
        _check_real(name, "pct_start", pct_start)
        if not 0 <= pct_start <= 1:
            raise InputError(f"{name}: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise InputError(
                f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        _check_positive(name, "div_factor", div_factor)
        _check_positive(name, "final_div_factor", final_div_factor)
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        # Each phase: (its last step, where the rate starts and ends, same for momentum), by
        # group key. A phase starts where the one before ended (the first at step 0).
        T, p = self.total_steps, float(pct_start)
        if three_phase:
            self._phases = [
                (p * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * p * T - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (p * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        starts = [0.0] + [phase[0] for phase in self._phases[:-1]]
        if any(phase[0] == start for phase, start in zip(self._phases, starts)):
            # PyTorch divides 0 by 0 when it reaches such a phase.
            raise InputError(
                f"{name}: pct_start={pct_start!r} with total_steps={T} leaves a phase of the "
                "cycle with no steps; change pct_start or total_steps"
            )
        max_lrs = _per_group(name, "max_lr", max_lr, optimizer)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise InputError(
                    f"{name}: {type(optimizer).__name__} has no momentum or betas to cycle; "
                    "pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            tops = _per_group(name, "max_momentum", max_momentum, optimizer)
            bottoms = _per_group(name, "base_momentum", base_momentum, optimizer)
            if last_epoch == -1:
                for group, top, bottom in zip(optimizer.param_groups, tops, bottoms):
                    self._set_momentum(group, top)
                    group["max_momentum"], group["base_momentum"] = top, bottom
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise InputError(
                f"OneCycleLR: stepped {t} times, more than total_steps={self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for k, (end, lr0, lr1, mom0, mom1) in enumerate(self._phases):
                if t <= end or k == len(self._phases) - 1:
                    pct = (t - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[mom0], group[mom1], pct))
                    break
                start = end
        return lrs


def _check_real(scheduler: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{scheduler}: {key} must be a real number, got {value!r}")


def _per_group(scheduler: str, key: str, value: Any, optimizer: Optimizer) -> list[float]:
    """One value per parameter group, from a number or a list of them."""
    n = len(optimizer.param_groups)
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise InputError(
            f"{scheduler}: expected {n} values of {key} (one per parameter group), "
            f"got {len(values)}"
        )
    for v in values:
        _check_real(scheduler, key, v)
    return values
