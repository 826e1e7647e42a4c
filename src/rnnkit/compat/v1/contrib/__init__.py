"""``tf.contrib``: only ``tf.contrib.rnn``, the cells and ``static_rnn`` seed 003 uses."""

from ..graph import unsupported
from . import rnn

__all__ = ["rnn"]


def __getattr__(name):
    raise unsupported("tf.contrib", name)
