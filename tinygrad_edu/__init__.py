"""tinygrad_edu: a small, readable, fast autograd framework.

import tinygrad_edu as tg
x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
"""

from tinygrad_edu import (
    autograd,
    autograd_functional,
    config,
    cuda,
    data,
    datasets,
    function,
    nn,
    optim,
    study,
    train,
    viz,
)
from tinygrad_edu.autograd import (
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

# contract v2: PyTorch's constructors, dtypes, cat/stack as module functions (creation.py).
# NOTE: this binds the name `tensor` to the function, replacing the attribute that pointed at
# the submodule tinygrad_edu.tensor (as torch.tensor). `from tinygrad_edu.tensor import Tensor`
# and `import tinygrad_edu.tensor` keep working (they go through sys.modules); the module object
# itself is sys.modules["tinygrad_edu.tensor"] (`import tinygrad_edu.tensor as m` reads the
# attribute, so m is the function).
from tinygrad_edu.creation import (
    arange,
    cat,
    eye,
    float32,
    float64,
    full,
    full_like,
    int64,
    linspace,
    ones,
    ones_like,
    rand,
    randn,
    stack,
    tensor,
    zeros,
    zeros_like,
)
from tinygrad_edu.errors import InputError
from tinygrad_edu.gradcheck import GradcheckError, gradcheck, numerical_gradient
from tinygrad_edu.io import load, save
from tinygrad_edu.random import manual_seed
from tinygrad_edu.study import fd_report, fd_sweep, profile, warmup
from tinygrad_edu.tensor import Tensor, maximum, minimum, where  # (v2: elementwise functions)

# As in PyTorch: tg.autograd.functional.jacobian, tg.autograd.Function, tg.autograd.detect_anomaly
autograd.functional = autograd_functional
autograd.Function = function.Function
autograd.detect_anomaly = study.detect_anomaly

__version__ = "0.1.0"
__all__ = [
    "GradcheckError",
    "InputError",
    "Tensor",
    "autograd",
    "config",
    "cuda",
    "data",
    "enable_grad",
    "datasets",
    "fd_report",
    "fd_sweep",
    "grad",
    "gradcheck",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "maximum",
    "minimum",
    "no_grad",
    "nn",
    "numerical_gradient",
    "optim",
    "profile",
    "save",
    "set_grad_enabled",
    "study",
    "train",
    "viz",
    "warmup",
    "where",
]
# contract v2: the constructors and dtypes of creation.py
__all__ += ["arange", "cat", "eye", "float32", "float64", "full", "full_like", "int64"]
__all__ += ["linspace", "ones", "ones_like", "rand", "randn", "stack", "tensor", "zeros"]
__all__ += ["zeros_like"]
