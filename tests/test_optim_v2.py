"""Optimizers, contract v2: parameter groups (per-group options, changing them between steps,
adding a group mid-training, saving and loading) and the schedulers MultiStepLR, LambdaLR,
ReduceLROnPlateau and OneCycleLR, each against torch.optim on the same numbers."""

import math

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
        theirs = [
            {"params": [self.theirs[i] for i in pick[k]], **o} for k, o in enumerate(options)
        ]
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
