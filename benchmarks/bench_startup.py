"""Start-up: what a user waits for before the first training step of the small network.

Each benchmark starts a fresh Python process that imports tinygrad_edu, builds the chapter's
784-15-10 network and runs its first SGD-with-momentum step. Numba compiles kernels on first use
and, with ``cache=True``, stores them in its cache (here a private ``NUMBA_CACHE_DIR``):

- cold: the cache is empty, so every kernel the step needs is compiled;
- warm: the cache was filled by an earlier process, so kernels are loaded from disk.

The times are measured around a subprocess, so they are ``track_`` benchmarks in seconds.
"""

import os
import tempfile

from . import common


class StartUp:
    timeout = 600

    def setup_cache(self):
        """A Numba cache filled by one full start-up, shared by the warm benchmarks."""
        cache_dir = os.path.abspath("numba_cache_warm")
        os.makedirs(cache_dir, exist_ok=True)
        common.run_startup("tinygrad_edu", cache_dir)
        return cache_dir

    def track_cold_start_seconds(self, cache_dir):
        """Fresh process, empty Numba cache: from launch to the end of the first training step,
        including the compilation of the kernels it uses (target: under 10 s)."""
        with tempfile.TemporaryDirectory(prefix="tg_numba_cold_") as empty:
            return common.run_startup("tinygrad_edu", empty)["ready_s"]

    track_cold_start_seconds.unit = "seconds"

    def track_warm_start_seconds(self, cache_dir):
        """Fresh process, filled Numba cache: from launch to the end of the first training step
        (target: under 0.5 s)."""
        return common.run_startup("tinygrad_edu", cache_dir)["ready_s"]

    track_warm_start_seconds.unit = "seconds"

    def track_warm_start_deps_only_seconds(self, cache_dir):
        """The warm start as after a fresh install (numpy and numba only): SciPy, if this
        environment has it, is hidden from the process, because Numba imports it on first use
        (about 0.2 s) and tinygrad_edu does not need it (target: under 0.5 s)."""
        return common.run_startup("tinygrad_edu", cache_dir, common.WITHOUT_SCIPY)["ready_s"]

    track_warm_start_deps_only_seconds.unit = "seconds"

    def track_warm_start_to_exit_seconds(self, cache_dir):
        """Fresh process, filled Numba cache: from launch to the process's exit, which adds the
        interpreter's tear-down of numpy, Numba and the library's modules."""
        return common.run_startup("tinygrad_edu", cache_dir)["wall_s"]

    track_warm_start_to_exit_seconds.unit = "seconds"

    def track_warm_import_seconds(self, cache_dir):
        """Of the warm start, the time spent importing tinygrad_edu (numpy and numba included)."""
        return common.run_startup("tinygrad_edu", cache_dir)["import_s"]

    track_warm_import_seconds.unit = "seconds"

    def track_warm_first_step_seconds(self, cache_dir):
        """Of the warm start, the first training step itself (kernels loaded from the cache)."""
        return common.run_startup("tinygrad_edu", cache_dir)["first_step_s"]

    track_warm_first_step_seconds.unit = "seconds"
