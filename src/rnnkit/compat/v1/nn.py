"""``tf.nn``: activations, losses, ``in_top_k``, ``dropout``, the RNN loops and ``rnn_cell``."""

from . import rnn_cell
from .graph import unsupported
from .ops import (
    dropout,
    elu,
    in_top_k,
    relu,
    sigmoid,
    softmax,
    softmax_cross_entropy_with_logits_v2,
    softplus,
    sparse_softmax_cross_entropy_with_logits,
    tanh,
)
from .rnn import dynamic_rnn, static_rnn

# TF1's v1 name computes the same loss (it did not backpropagate into labels; nothing here feeds labels a gradient).
softmax_cross_entropy_with_logits = softmax_cross_entropy_with_logits_v2

__all__ = [
    "dropout",
    "dynamic_rnn",
    "elu",
    "in_top_k",
    "relu",
    "rnn_cell",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "softplus",
    "sparse_softmax_cross_entropy_with_logits",
    "static_rnn",
    "tanh",
]


def __getattr__(name):
    raise unsupported("tf.nn", name)
