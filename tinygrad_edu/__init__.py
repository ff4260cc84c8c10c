"""tinygrad_edu: a small, readable, fast autograd framework."""

from tinygrad_edu.autograd import is_grad_enabled, no_grad
from tinygrad_edu.gradcheck import GradcheckError, gradcheck, numerical_gradient
from tinygrad_edu.random import manual_seed
from tinygrad_edu.tensor import Tensor

__version__ = "0.1.0"
__all__ = [
    "GradcheckError",
    "Tensor",
    "gradcheck",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "numerical_gradient",
]
