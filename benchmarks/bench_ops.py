"""Costs below the network: per-op overhead, matrix products, optimizer steps."""

import numpy as np

from . import common
from .common import BLOCKED_SIZES, CHAIN_LEN, MATMUL_SIZES, OPTIM_PARAMS, OPTIMIZERS


class ChainOfSmallOps:
    """CHAIN_LEN elementwise ops on a CHAIN_SIZE-element tensor (scalar *, scalar +, tanh,
    tensor *), then sum and backward: the arrays are tiny, so the time is the framework's
    Python overhead per op (building the node, dispatching the kernel, the backward walk)."""

    def setup(self):
        from tinygrad_edu import Tensor

        self.x = Tensor(common.chain_input(), requires_grad=True)
        common.chain_forward_backward(self.x)  # warm-up outside the timing

    def time_chain_forward_backward(self):
        """The whole chain, forward and backward (divide by CHAIN_LEN for the cost per op)."""
        common.chain_forward_backward(self.x)

    def track_chain_us_per_op(self):
        """Microseconds per op, forward and backward together (target: at most 3)."""
        seconds = common.median_time(lambda: common.chain_forward_backward(self.x))
        return seconds / CHAIN_LEN * 1e6

    track_chain_us_per_op.unit = "us/op"


class MatMul:
    """C = A @ B for square float32 matrices, forward and backward (dA = G B^T, dB = A^T G):
    three products of 2 n^3 flops each."""

    params = list(MATMUL_SIZES)
    param_names = ["n"]

    def setup(self, n):
        from tinygrad_edu import Tensor

        rng = np.random.default_rng(0)
        self.a = Tensor(rng.standard_normal((n, n), dtype=np.float32), requires_grad=True)
        self.b = Tensor(rng.standard_normal((n, n), dtype=np.float32), requires_grad=True)
        self.g = rng.standard_normal((n, n), dtype=np.float32)
        self._forward_backward()  # warm-up outside the timing

    def _forward_backward(self):
        self.a.grad = self.b.grad = None
        (self.a @ self.b).backward(self.g)

    def time_matmul_forward_backward(self, n):
        """Forward and backward of A @ B through the autograd engine."""
        self._forward_backward()

    def track_matmul_forward_backward_gflops(self, n):
        """GFLOP/s of forward + backward (6 n^3 flops); compare with track_numpy_matmul_gflops
        (target at n = 1024: at least 90% of numpy's)."""
        return 6 * n**3 / common.median_time(self._forward_backward, repeat=5) / 1e9

    track_matmul_forward_backward_gflops.unit = "GFLOP/s"

    def track_numpy_matmul_gflops(self, n):
        """GFLOP/s of one plain numpy float32 A @ B (2 n^3 flops), the reference."""
        a, b = self.a.numpy(), self.b.numpy()
        return 2 * n**3 / common.median_time(lambda: a @ b, repeat=5) / 1e9

    track_numpy_matmul_gflops.unit = "GFLOP/s"


class BlockedMatMul:
    """The readable cache-blocked Numba kernel (backend.cpu.matmul_blocked), kept for teaching,
    against the BLAS product that the library actually uses."""

    params = list(BLOCKED_SIZES)
    param_names = ["n"]

    def setup(self, n):
        from tinygrad_edu.backend import cpu

        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((n, n), dtype=np.float32)
        self.b = rng.standard_normal((n, n), dtype=np.float32)
        self.blocked = cpu.matmul_blocked
        self.blocked(self.a, self.b)  # compile (or load from the cache) outside the timing

    def time_blocked_matmul_forward(self, n):
        """A @ B with the blocked teaching kernel."""
        self.blocked(self.a, self.b)

    def time_blas_matmul_forward(self, n):
        """A @ B with numpy's BLAS, for comparison."""
        self.a @ self.b


class OptimizerStep:
    """One optimizer step over a single parameter of OPTIM_PARAMS (1M) float32 entries: one fused
    kernel pass over the parameter, its gradient and the rule's state."""

    params = list(OPTIMIZERS)
    param_names = ["optimizer"]

    def setup(self, optimizer):
        from tinygrad_edu import Tensor

        rng = np.random.default_rng(0)
        self.p = Tensor(rng.standard_normal(OPTIM_PARAMS, dtype=np.float32), requires_grad=True)
        self.p.grad = Tensor(rng.standard_normal(OPTIM_PARAMS, dtype=np.float32) * 1e-3)
        self.opt = common.tg_optimizer(optimizer, [self.p])
        self.opt.step()  # compile and create the state outside the timing

    def time_step(self, optimizer):
        """optimizer.step() over the 1M-entry parameter."""
        self.opt.step()
