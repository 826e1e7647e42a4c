"""``tf.nn.rnn_cell``: TF1's cell names in the graph (see ``rnn.py``)."""

from ...v1 import LSTMStateTuple
from .graph import unsupported
from .rnn import (
    BasicLSTMCell,
    BasicRNNCell,
    DeviceWrapper,
    DropoutWrapper,
    GRUCell,
    LSTMCell,
    MultiRNNCell,
    ResidualWrapper,
    RNNCell,
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
    "RNNCell",
    "ResidualWrapper",
]


def __getattr__(name):
    raise unsupported("tf.nn.rnn_cell", name)
