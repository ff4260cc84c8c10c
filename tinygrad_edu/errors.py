"""The library's own exception class.

PyTorch raises ``RuntimeError`` for a shape or value an op cannot take; numpy (and contract v1 of
this library) raises ``ValueError``. ``InputError`` is both, so ``except RuntimeError:`` written for
PyTorch code and ``except ValueError:`` written for numpy code catch the same error.
"""


class InputError(ValueError, RuntimeError):
    """A shape, dtype-dependent value or argument that an op or function cannot take.

    The message names the op, the offending shapes, dtypes or values, and what was expected.
    """
