"""Embedding: a lookup table of learned vectors, one row per token id.

``Embedding(num_embeddings, embedding_dim)(ids)`` is ``weight[ids]``: an int64 tensor of ids of
any shape S gives a float tensor of shape S + (embedding_dim,). The backward of indexing adds the
gradient of every occurrence of an id into that id's row (repeated ids accumulate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.module import Module
from tinygrad_edu.nn.normalization import _positive_int
from tinygrad_edu.random import get_rng
from tinygrad_edu.tensor import Tensor


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table ``weight``, initialised N(0, 1) as PyTorch.

    ``padding_idx`` (optional, may be negative): that row starts at zero and gets no gradient,
    so it stays whatever it is set to (PyTorch's rule). An id outside [0, num_embeddings)
    raises IndexError naming the layer.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool):
                raise TypeError(
                    f"Embedding: padding_idx must be an int or None, got {padding_idx!r}"
                )
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise IndexError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"num_embeddings={self.num_embeddings}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        w = get_rng().standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            w[padding_idx] = 0.0
        self.weight = Tensor(w, dtype="float32" if dtype is None else dtype, requires_grad=True)

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx, _who=repr(self))

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
