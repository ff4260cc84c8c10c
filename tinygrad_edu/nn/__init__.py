"""Neural-network building blocks: ``Module``, layers, and ``functional`` (losses, penalties).

Example::

    import tinygrad_edu as tg
    from tinygrad_edu import nn
    import tinygrad_edu.nn.functional as F

    model = nn.Sequential(nn.Linear(64, 15), nn.Sigmoid(), nn.Linear(15, 10))
    loss = F.cross_entropy(model(x), y)

PyTorch's spellings: containers (``ModuleList``, ``ModuleDict``), ``Parameter``, the loss
modules (``nn.CrossEntropyLoss()(logits, y)``, in ``loss.py``), ``nn.init`` (initialisers) and
``nn.utils`` (gradient clipping, flat parameter vectors).
"""

from tinygrad_edu.nn import functional, init, utils

# image layers (NCHW)
from tinygrad_edu.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from tinygrad_edu.nn.layers import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    GaussianNoise,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from tinygrad_edu.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from tinygrad_edu.nn.module import IncompatibleKeys, Module, Parameter, StateDictError

# ----- normalization and embedding layers -----
from tinygrad_edu.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from tinygrad_edu.nn.sparse import Embedding

__all__ = [
    # image layers
    "AvgPool2d",
    "Conv2d",
    "MaxPool2d",
    # normalization and embedding layers
    "BatchNorm1d",
    "BatchNorm2d",
    "Embedding",
    "LayerNorm",
    # the rest
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "Flatten",
    "GELU",
    "GaussianNoise",
    "HuberLoss",
    "Identity",
    "IncompatibleKeys",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "StateDictError",
    "Tanh",
    "functional",
    "init",
    "utils",
]
