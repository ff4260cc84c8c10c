"""Optimizers, contract v2: parameter groups (per-group options, changing them between steps,
adding a group mid-training, saving and loading) and the schedulers MultiStepLR, LambdaLR,
ReduceLROnPlateau and OneCycleLR, each against torch.optim on the same numbers."""

import numpy as np
import pytest

from tinygrad_edu.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    lr_scheduler,
)
from tinygrad_edu.tensor import Tensor

torch = pytest.importorskip("torch")

OURS = {
    "SGD": SGD,
    "Adam": Adam,
    "AdamW": AdamW,
    "RMSprop": RMSprop,
    "Adagrad": Adagrad,
    "Adadelta": Adadelta,
}

# Per optimizer: (constructor defaults, options of group 0, options of group 1). The groups
# differ in lr, weight_decay and, where the rule has it, momentum.
GROUP_CASES = {
    "SGD": ({"lr": 0.1, "momentum": 0.9}, {}, {"lr": 0.01, "weight_decay": 0.1, "momentum": 0.5}),
    "Adam": ({"lr": 0.01}, {"weight_decay": 0.05}, {"lr": 0.003, "betas": (0.8, 0.99)}),
    "AdamW": ({"lr": 0.01}, {"amsgrad": True}, {"lr": 0.05, "weight_decay": 0.2}),
    "RMSprop": ({"lr": 0.01}, {"momentum": 0.9}, {"lr": 0.002, "weight_decay": 0.1}),
    "Adagrad": ({"lr": 0.1}, {"lr_decay": 0.01}, {"lr": 0.5, "weight_decay": 0.1}),
    "Adadelta": ({"lr": 1.0}, {"rho": 0.95}, {"lr": 0.5, "weight_decay": 0.1}),
}
SHAPES = ((3, 4), (5,), (2, 3), (4,))
STEPS = 12


class Twins:
    """The same parameters twice, ours and torch's, fed the same gradients."""

    def __init__(self, rng, shapes=SHAPES):
        w0s = [rng.standard_normal(s) for s in shapes]
        self.rng = rng
        self.ours = [Tensor(w.copy(), requires_grad=True) for w in w0s]
        self.theirs = [torch.tensor(w.copy(), requires_grad=True) for w in w0s]

    def groups(self, options, pick):
        """Parameter groups [{"params": [...], **opts}, ...]; pick(k) lists group k's params."""
        ours = [{"params": [self.ours[i] for i in pick[k]], **o} for k, o in enumerate(options)]
        theirs = [{"params": [self.theirs[i] for i in pick[k]], **o} for k, o in enumerate(options)]
        return ours, theirs

    def step(self, opt, topt):
        for p, q in zip(self.ours, self.theirs):
            g = self.rng.standard_normal(p.shape)
            p.grad, q.grad = Tensor(g), torch.tensor(g)
        opt.step()
        topt.step()

    def check(self):
        for p, q in zip(self.ours, self.theirs):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)


def _make(name, twins, pick=((0, 1), (2, 3))):
    defaults, opts0, opts1 = GROUP_CASES[name]
    ours, theirs = twins.groups([opts0, opts1], pick)
    return OURS[name](ours, **defaults), getattr(torch.optim, name)(theirs, **defaults)


# ----- parameter groups against torch.optim -----


@pytest.mark.parametrize("name", list(OURS))
def test_two_groups_with_their_own_options_match_torch(name, rng):
    twins = Twins(rng)
    opt, topt = _make(name, twins)
    for key in ("lr", "weight_decay"):
        assert [g[key] for g in opt.param_groups] == [g[key] for g in topt.param_groups]
    for _ in range(STEPS):
        twins.step(opt, topt)
        twins.check()


@pytest.mark.parametrize("name", list(OURS))
def test_changing_a_groups_options_mid_training_takes_effect(name, rng):
    twins = Twins(rng)
    opt, topt = _make(name, twins)
    for k in range(STEPS):
        if k == 4:  # the way a scheduler or a user changes a group: write into the dict
            for groups in (opt.param_groups, topt.param_groups):
                groups[0]["lr"] *= 0.1
                groups[1]["lr"] = 0.2
                groups[1]["weight_decay"] = 0.0
        if k == 8 and "momentum" in opt.param_groups[0]:
            for groups in (opt.param_groups, topt.param_groups):
                groups[0]["momentum"] = 0.3
        twins.step(opt, topt)
        twins.check()


def test_changing_lr_changes_the_very_next_step(rng):
    p = Tensor(np.ones(3), requires_grad=True)
    opt = SGD([p], lr=0.1)
    for lr in (0.1, 0.5, 0.0, 2.0):
        opt.param_groups[0]["lr"] = lr
        before = p.numpy().copy()
        p.grad = Tensor(np.full(3, 1.0))
        opt.step()
        np.testing.assert_allclose(p.numpy(), before - lr)


@pytest.mark.parametrize("name", list(OURS))
def test_add_param_group_mid_training_matches_torch(name, rng):
    twins = Twins(rng)
    defaults, opts0, opts1 = GROUP_CASES[name]
    ours, theirs = twins.groups([opts0, opts1], [(0, 1), (2, 3)])
    opt = OURS[name]([ours[0]], **defaults)
    topt = getattr(torch.optim, name)([theirs[0]], **defaults)
    for k in range(STEPS):
        if k == 5:
            opt.add_param_group(ours[1])
            topt.add_param_group(theirs[1])
            assert len(opt.param_groups) == 2
        twins.step(opt, topt)
        if k < 5:  # params 2 and 3 are in no optimizer yet: compare only the first group
            for p, q in zip(twins.ours[:2], twins.theirs[:2]):
                np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10)
        else:
            twins.check()


@pytest.mark.parametrize("name", list(OURS))
def test_state_dict_round_trip_with_groups_continues_like_torch(name, rng):
    twins = Twins(rng)
    opt, topt = _make(name, twins)
    for _ in range(5):
        twins.step(opt, topt)
    opt.param_groups[1]["lr"] *= 0.5
    topt.param_groups[1]["lr"] *= 0.5
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    assert saved["param_groups"][1]["lr"] == topt.param_groups[1]["lr"]
    # A fresh optimizer built with other options, on the same tensors, takes the saved ones.
    defaults, _, _ = GROUP_CASES[name]
    fresh = OURS[name](
        [{"params": twins.ours[:2]}, {"params": twins.ours[2:]}], **{**defaults, "lr": 0.7}
    )
    fresh.load_state_dict(saved)
    for ours, theirs in zip(fresh.param_groups, topt.param_groups):
        for key, value in ours.items():
            if key != "params":
                assert value == theirs[key] or tuple(value) == tuple(theirs[key]), key
    for _ in range(5):
        twins.step(fresh, topt)
        twins.check()


def test_state_dict_after_add_param_group_numbers_the_new_params_last(rng):
    twins = Twins(rng)
    opt, topt = _make("Adam", twins, pick=((0,), (1, 2)))
    twins.step(opt, topt)
    opt.add_param_group({"params": [twins.ours[3]], "lr": 0.1})
    topt.add_param_group({"params": [twins.theirs[3]], "lr": 0.1})
    twins.step(opt, topt)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in ours["param_groups"]] == [
        g["params"] for g in theirs["param_groups"]
    ]
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for i, entry in theirs["state"].items():
        np.testing.assert_allclose(ours["state"][i]["exp_avg"], entry["exp_avg"].numpy())
        assert ours["state"][i]["step"] == int(entry["step"])


def test_a_group_missing_an_option_takes_the_default_and_unknown_params_are_rejected():
    a, b = (Tensor(np.zeros(2), requires_grad=True) for _ in range(2))
    opt = SGD([{"params": [a]}, {"params": b, "momentum": 0.5}], lr=0.1, weight_decay=0.01)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.5
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.01
    assert opt.param_groups[1]["params"] == [b]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="'params' entry"):
        opt.add_param_group({"lr": 0.1})
    with pytest.raises(ValueError, match="SGD: invalid lr"):
        opt.add_param_group({"params": [Tensor(np.zeros(1), requires_grad=True)], "lr": -1})
    assert len(opt.param_groups) == 2  # a rejected group is not added


# ----- the v2 schedulers against torch's -----


def _scheduled_twins(name, opt_name="SGD", opt_kwargs=None, **kwargs):
    """Our optimizer and scheduler, and torch's, on two groups with different rates."""
    opt_kwargs = opt_kwargs if opt_kwargs is not None else {"lr": 0.1, "momentum": 0.9}
    p, q = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)
    tp, tq = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = OURS[opt_name]([{"params": [p]}, {"params": [q], "lr": 0.3}], **opt_kwargs)
    topt = getattr(torch.optim, opt_name)(
        [{"params": [tp]}, {"params": [tq], "lr": 0.3}], **opt_kwargs
    )
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    return opt, topt, sched, tsched


def _same_lrs(opt, topt, sched, tsched):
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [g["lr"] for g in topt.param_groups], rel=1e-12, abs=1e-15
    )
    assert sched.last_epoch == tsched.last_epoch


V2_SCHEDULERS = [
    ("MultiStepLR", {"milestones": [2, 5, 9]}),
    ("MultiStepLR", {"milestones": [0, 3, 3, 8], "gamma": 0.5}),  # 0 and a repeated milestone
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95**epoch}),
    ("LambdaLR", {"lr_lambda": [lambda e: min(1.0, (e + 1) / 5), lambda e: 1 / (1 + e)]}),
]


@pytest.mark.parametrize(("name", "kwargs"), V2_SCHEDULERS)
def test_v2_scheduler_matches_torch(name, kwargs):
    opt, topt, sched, tsched = _scheduled_twins(name, **kwargs)
    _same_lrs(opt, topt, sched, tsched)
    for _ in range(20):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        _same_lrs(opt, topt, sched, tsched)


def test_multisteplr_closed_form():
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[4, 2, 7], gamma=0.5)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(10):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    decays = [sum(epoch >= m for m in (2, 4, 7)) for epoch in range(11)]
    np.testing.assert_allclose(lrs, [0.5**d for d in decays])


def test_lambdalr_state_dict_keeps_a_callable_objects_attributes_only():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.n)

    opt = SGD([{"params": [Tensor(np.zeros(1), requires_grad=True)]}] * 1, lr=1.0)
    sched = lr_scheduler.LambdaLR(opt, Warmup(4))
    for _ in range(2):
        sched.step()
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [{"n": 4}] and saved["last_epoch"] == 2
    opt2 = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched2 = lr_scheduler.LambdaLR(opt2, Warmup(10))
    sched2.load_state_dict(saved)
    assert sched2.lr_lambdas[0].n == 4 and sched2.last_epoch == 2
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr() == [1.0]
    plain = lr_scheduler.LambdaLR(opt2, lambda e: 1.0).state_dict()
    assert plain["lr_lambdas"] == [None]


PLATEAU_CASES = [
    {},
    {"patience": 2},
    {"patience": 1, "factor": 0.5, "cooldown": 2},
    {"patience": 0, "factor": 0.5, "min_lr": [0.01, 0.05]},
    {"patience": 1, "threshold": 0.1, "threshold_mode": "abs"},
    {"mode": "max", "patience": 1, "factor": 0.3},
    {"mode": "max", "patience": 2, "threshold_mode": "abs", "threshold": 0.05, "eps": 1e-3},
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_lr_on_plateau_matches_torch(kwargs, rng):
    opt, topt, sched, tsched = _scheduled_twins("ReduceLROnPlateau", **kwargs)
    # A metric that improves, stalls, wobbles by less than the thresholds, then improves again.
    metrics = np.concatenate(
        [
            np.linspace(1.0, 0.5, 6),
            0.5 + 0.01 * rng.standard_normal(25),
            np.linspace(0.5, 0.2, 5),
            np.full(20, 0.2),
        ]
    )
    if kwargs.get("mode") == "max":
        metrics = -metrics
    for m in metrics:
        opt.step()
        topt.step()
        sched.step(float(m))
        tsched.step(float(m))
        _same_lrs(opt, topt, sched, tsched)
        assert sched.num_bad_epochs == tsched.num_bad_epochs
        assert sched.best == tsched.best and sched.in_cooldown == tsched.in_cooldown
    assert sched.get_last_lr()[0] < 0.1  # it did reduce


def test_reduce_lr_on_plateau_takes_a_tensor_metric_and_saves_its_state():
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(Tensor(np.array(1.0)))
    sched.step(Tensor(np.array(2.0)))
    assert sched.get_last_lr() == [pytest.approx(0.1)]
    saved = sched.state_dict()
    assert saved["best"] == 1.0 and "optimizer" not in saved
    sched2 = lr_scheduler.ReduceLROnPlateau(SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1))
    sched2.load_state_dict(saved)
    assert sched2.patience == 0 and sched2.best == 1.0
    with pytest.raises(TypeError, match="ReduceLROnPlateau.step: expected the metric"):
        sched.step("low")


ONECYCLE_CASES = [
    {"max_lr": 1.0, "total_steps": 30},
    {"max_lr": [1.0, 0.5], "epochs": 4, "steps_per_epoch": 7, "pct_start": 0.25},
    {"max_lr": 0.8, "total_steps": 25, "anneal_strategy": "linear", "div_factor": 10.0},
    {"max_lr": 0.8, "total_steps": 40, "three_phase": True, "final_div_factor": 100.0},
    {"max_lr": 0.8, "total_steps": 21, "three_phase": True, "anneal_strategy": "linear"},
    {"max_lr": 1.0, "total_steps": 30, "cycle_momentum": False},
    {"max_lr": 1.0, "total_steps": 30, "base_momentum": [0.8, 0.7], "max_momentum": 0.9},
]


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize("kwargs", ONECYCLE_CASES)
def test_onecycle_lr_and_momentum_match_torch(kwargs, opt_name):
    opt_kwargs = {"lr": 0.1, "momentum": 0.9} if opt_name != "Adam" else {"lr": 0.1}
    opt, topt, sched, tsched = _scheduled_twins("OneCycleLR", opt_name, opt_kwargs, **kwargs)
    key = "betas" if opt_name == "Adam" else "momentum"
    for k in range(sched.total_steps):
        _same_lrs(opt, topt, sched, tsched)
        for ours, theirs in zip(opt.param_groups, topt.param_groups):
            for extra in ("initial_lr", "max_lr", "min_lr"):
                assert ours[extra] == pytest.approx(theirs[extra], rel=1e-14)
            assert np.allclose(ours[key], theirs[key], rtol=1e-12, atol=0)
        if k == sched.total_steps - 1:
            break
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    # The last step ends at min_lr; one more step is past the cycle.
    assert sched.get_last_lr()[0] == pytest.approx(opt.param_groups[0]["min_lr"])
    sched.step()
    with pytest.raises(ValueError, match="more than total_steps"):
        sched.step()


@pytest.mark.parametrize(("opt_name", "opt_kwargs"), [("SGD", {"lr": 0.1}), ("Adam", {})])
def test_onecycle_training_follows_torch(opt_name, opt_kwargs, rng):
    """The cycled rates and momenta reach the update: same parameters after every batch
    (SGD starts without momentum; the cycle switches it on)."""
    twins = Twins(rng)
    ours, theirs = twins.groups([{}, {"lr": 0.05}], [(0, 1), (2, 3)])
    opt, topt = (
        OURS[opt_name](ours, **opt_kwargs),
        getattr(torch.optim, opt_name)(theirs, **opt_kwargs),
    )
    kwargs = {"max_lr": [0.5, 0.1], "total_steps": 15}
    sched = lr_scheduler.OneCycleLR(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    for _ in range(15):
        twins.step(opt, topt)
        twins.check()
        sched.step()
        tsched.step()


def _opt(name="SGD"):
    return OURS[name]([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        (lambda o: lr_scheduler.MultiStepLR(o, milestones=3), TypeError, "milestones must be"),
        (lambda o: lr_scheduler.MultiStepLR(o, milestones=[1.5]), TypeError, "milestones must"),
        (lambda o: lr_scheduler.MultiStepLR(o, milestones=[-1]), ValueError, ">= 0"),
        (lambda o: lr_scheduler.MultiStepLR(o, [2], gamma=0), ValueError, "MultiStepLR: gamma"),
        (lambda o: lr_scheduler.LambdaLR(o, [abs, abs]), ValueError, "expected 1 lr_lambdas"),
        (lambda o: lr_scheduler.LambdaLR(o, 0.5), TypeError, "lr_lambda must be callable"),
        (lambda o: lr_scheduler.LambdaLR("sgd", abs), TypeError, "expected an Optimizer"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="low"), ValueError, "mode must be"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor must"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor="x"), TypeError, "factor must"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1.5), TypeError, "patience"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, cooldown=-2), ValueError, "cooldown"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold=-1), ValueError, "threshold"),
        (
            lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"),
            ValueError,
            "threshold_mode",
        ),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0, 0]), ValueError, "1 min_lrs"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=-1), ValueError, "min_lr must"),
        (lambda o: lr_scheduler.ReduceLROnPlateau([1], 0.1), TypeError, "expected an Optimizer"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0), ValueError, "either total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, epochs=2), ValueError, "either total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, total_steps=0), ValueError, "total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, total_steps=2.5), TypeError, "total_steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, pct_start=1.5), ValueError, "pct_start"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, pct_start=0.1), ValueError, "no steps"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, anneal_strategy="x"), ValueError, "anneal"),
        (lambda o: lr_scheduler.OneCycleLR(o, [1.0, 2.0], 10), ValueError, "1 values of max_lr"),
        (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, div_factor=0), ValueError, "div_factor"),
        (lambda o: lr_scheduler.OneCycleLR(_opt("Adagrad"), 1.0, 10), ValueError, "no momentum"),
    ],
)
def test_v2_scheduler_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make(_opt())


def test_onecycle_without_momentum_cycling_runs_on_adagrad():
    opt = _opt("Adagrad")
    sched = lr_scheduler.OneCycleLR(opt, 1.0, total_steps=10, cycle_momentum=False)
    for _ in range(9):
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(1.0 / 25 / 1e4)
