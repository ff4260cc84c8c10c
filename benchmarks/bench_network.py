"""Forward pass, backward pass and training step of the two reference networks.

- the chapter's 784-15-10 sigmoid network on batches of 32 ("small");
- a wide 784-256-256-10 ReLU network on batches of 128 ("wide").
The loss is the mean cross-entropy of the logits; weights are float32.
"""

from . import common
from .common import SMALL, SMALL_BATCH, WIDE, WIDE_BATCH

NETWORKS = {"small": (SMALL, SMALL_BATCH), "wide": (WIDE, WIDE_BATCH)}


class ForwardBackward:
    """Forward alone, backward alone, and how they compare."""

    params = list(NETWORKS)
    param_names = ["network"]

    def setup(self, network):
        self.net = common.TgNetwork(*NETWORKS[network])
        self.net.forward_backward()  # warm-up: load or compile the kernels outside the timing
        self.net.keep_graph()

    def time_forward(self, network):
        """Forward pass to the loss, recording the graph as training does."""
        self.net.forward()

    def time_backward(self, network):
        """Backward pass alone, through a graph built once in setup (retain_graph=True so it
        can be repeated; gradients are cleared before each call, so nothing accumulates)."""
        self.net.backward_again()

    def time_forward_backward(self, network):
        """Forward and backward together: the gradient of one batch."""
        self.net.forward_backward()

    def track_backward_over_forward(self, network):
        """Backward time / forward time (target: at most 1.3; the matmul FLOPs alone make it
        about 2 when the input's gradient is computed, about 1 when it is skipped)."""
        forward = common.median_time(self.net.forward)
        backward = common.median_time(self.net.backward_again)
        return backward / forward

    track_backward_over_forward.unit = "ratio"


class TrainingStep:
    """One training step: clear gradients, forward, backward, optimizer update."""

    params = (list(NETWORKS), ["SGD(momentum)", "Adam"])
    param_names = ["network", "optimizer"]

    def setup(self, network, optimizer):
        self.net = common.TgNetwork(*NETWORKS[network], optimizer=optimizer)
        self.net.step()  # compile the optimizer's kernel and create its state

    def time_step(self, network, optimizer):
        """Forward, backward and update of the whole network on one batch."""
        self.net.step()


class TrainingStepMemory:
    """Memory of training the wide network."""

    def setup(self):
        self.net = common.TgNetwork(WIDE, WIDE_BATCH, optimizer="Adam")
        self.net.step()  # the optimizer's state exists from the first step on

    def peakmem_training_step_wide(self):
        """Peak resident memory of the process around an Adam training step of the wide
        network (weights, Adam's two buffers, activations and gradients)."""
        self.net.step()
