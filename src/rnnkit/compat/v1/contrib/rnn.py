"""``tf.contrib.rnn``: the cells, wrappers and ``static_rnn``, as in seed 003."""

from ....v1 import LSTMStateTuple
from ..graph import unsupported
from ..rnn import (
    BasicLSTMCell,
    BasicRNNCell,
    DeviceWrapper,
    DropoutWrapper,
    GRUCell,
    LSTMCell,
    MultiRNNCell,
    OutputProjectionWrapper,
    ResidualWrapper,
    RNNCell,
    static_rnn,
)

__all__ = [
    "BasicLSTMCell",
    "BasicRNNCell",
    "DeviceWrapper",
    "DropoutWrapper",
    "GRUCell",
    "LSTMCell",
    "LSTMStateTuple",
    "MultiRNNCell",
    "OutputProjectionWrapper",
    "RNNCell",
    "ResidualWrapper",
    "static_rnn",
]


def __getattr__(name):
    raise unsupported("tf.contrib.rnn", name)
