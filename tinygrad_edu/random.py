"""One random source for the whole library, so that ``tg.manual_seed`` makes runs repeatable."""

import numpy as np

_rng: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed every random source of tinygrad_edu: initialisation, dropout, noise and shuffling."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def get_rng() -> np.random.Generator:
    """The library's generator (re-seeded by ``manual_seed``)."""
    return _rng
