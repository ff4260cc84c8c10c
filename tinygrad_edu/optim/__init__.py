"""Optimizers: the update rules of the chapter, with torch.optim's names, defaults and semantics.

>>> opt = tg.optim.Adam(model.parameters(), lr=1e-3)
>>> for x, y in loader:
...     opt.zero_grad()
...     loss_fn(model(x), y).backward()
...     opt.step()
"""

from tinygrad_edu.optim import lr_scheduler
from tinygrad_edu.optim.adadelta import Adadelta
from tinygrad_edu.optim.adagrad import Adagrad
from tinygrad_edu.optim.adam import Adam, AdamW
from tinygrad_edu.optim.optimizer import Optimizer
from tinygrad_edu.optim.rmsprop import RMSprop
from tinygrad_edu.optim.sgd import SGD

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
