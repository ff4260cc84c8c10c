"""Neural-network building blocks: ``Module``, layers, and ``functional`` (losses, penalties).

Example::

    import tinygrad_edu as tg
    from tinygrad_edu import nn
    import tinygrad_edu.nn.functional as F

    model = nn.Sequential(nn.Linear(64, 15), nn.Sigmoid(), nn.Linear(15, 10))
    loss = F.cross_entropy(model(x), y)
"""

from tinygrad_edu.nn import functional
from tinygrad_edu.nn.layers import (
    Dropout,
    Flatten,
    GaussianNoise,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from tinygrad_edu.nn.module import IncompatibleKeys, Module, StateDictError

__all__ = [
    "Dropout",
    "Flatten",
    "GaussianNoise",
    "IncompatibleKeys",
    "LeakyReLU",
    "Linear",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "functional",
]
