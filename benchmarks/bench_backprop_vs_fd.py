"""What backpropagation saves over finite differences, as the network grows.

Backprop gets every dJ/dw from one forward and one backward pass. Central differences need two
forward passes per weight, (J(w + eps e_i) - J(w - eps e_i)) / 2 eps, so their cost grows with the
parameter count P while backprop's grows only with the work of one pass. The networks run from
about 100 to about 100,000 parameters and include the chapter's 784-15-10 network (11,935).
"""

from . import common
from .common import FD_FULL_MAX_PARAMS, FD_SAMPLE, GROWTH, GROWTH_BATCH, n_params


class BackpropVsFiniteDifferences:
    """One batch of ``GROWTH_BATCH`` examples through each network of ``GROWTH``."""

    params = list(GROWTH)
    param_names = ["network"]
    timeout = 300

    def setup(self, network):
        import tinygrad_edu as tg

        self.net = common.TgNetwork(network, GROWTH_BATCH)
        self.entries = common.fd_sample(self.net.params, FD_SAMPLE)
        self.numerical_gradient = tg.numerical_gradient
        self.net.forward_backward()  # warm-up: load or compile the kernels outside the timing

    def _fd_sample(self):
        """Central differences at the sampled weights, by the library's own routine."""
        return self.numerical_gradient(
            self.net.forward, self.net.params, eps=1e-3, entries=self.entries
        )

    def time_forward_backward(self, network):
        """Backprop: the whole gradient (all P entries) from one forward and one backward."""
        self.net.forward_backward()

    def time_fd_gradient_sampled(self, network):
        """Central differences for a fixed sample of FD_SAMPLE weights only (2 forward passes
        each); track_fd_gradient_sampled_scaled_seconds scales this to all P weights."""
        self._fd_sample()

    def track_fd_gradient_sampled_scaled_seconds(self, network):
        """Seconds for a full central-difference gradient, estimated as the time for a sample of
        FD_SAMPLE weights times P / FD_SAMPLE (the full one takes minutes for large P)."""
        per_sample = common.median_time(self._fd_sample, repeat=3)
        return per_sample * n_params(network) / len(self.entries)

    track_fd_gradient_sampled_scaled_seconds.unit = "seconds"

    def track_fd_over_backprop_ratio(self, network):
        """How many times longer the (sampled, scaled) central-difference gradient takes than
        backprop's forward + backward: about 2P forward passes against one forward + backward."""
        backprop = common.median_time(self.net.forward_backward)
        return self.track_fd_gradient_sampled_scaled_seconds(network) / backprop

    track_fd_over_backprop_ratio.unit = "ratio"

    def track_forward_passes_fd(self, network):
        """Forward passes a full central-difference gradient needs: 2 per parameter (backprop
        needs one forward and one backward pass whatever P is)."""
        return 2 * n_params(network)

    track_forward_passes_fd.unit = "forward passes"

    def track_n_params(self, network):
        """Parameters of the network (weights and biases)."""
        return n_params(network)

    track_n_params.unit = "parameters"


class FiniteDifferencesFull:
    """``tg.numerical_gradient`` over every weight (central differences, the library's own
    function as users call it), for the networks small enough to time it whole."""

    params = [name for name in GROWTH if n_params(name) <= FD_FULL_MAX_PARAMS]
    param_names = ["network"]
    timeout = 600
    number = 1
    repeat = (1, 3, 30.0)

    def setup(self, network):
        self.net = common.TgNetwork(network, GROWTH_BATCH)

    def time_fd_gradient_full(self, network):
        """All P central differences with tg.numerical_gradient (2P forward passes); compare
        with BackpropVsFiniteDifferences.time_forward_backward."""
        import tinygrad_edu as tg

        tg.numerical_gradient(self.net.forward, self.net.params, eps=1e-3)
