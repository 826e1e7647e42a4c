"""``tf.layers.dense``: a kernel and a bias made with ``get_variable`` in a ``dense`` scope, then ``x W + b``.

    logits = tf.layers.dense(states, 10)          # dense/kernel (150, 10), dense/bias (10,)
    hidden = tf.layers.dense(x, 64, activation=tf.nn.relu, name="hidden")
"""

from __future__ import annotations

from . import ops
from .graph import convert_to_tensor, unsupported
from .initializers import glorot_uniform_initializer, zeros_initializer
from .variables import get_variable, variable_scope


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None, bias_initializer=None,
          trainable=True, name=None, reuse=None, **_tf1_only):
    """``activation(inputs @ kernel + bias)``; ``inputs`` (..., features) with ``features`` known.

    Variables ``<name>/kernel`` (features, units), glorot_uniform, and
    ``<name>/bias`` (units,), zeros: TF1's defaults. ``name`` defaults to a
    fresh ``dense``, ``dense_1``...; with ``reuse=True`` an existing layer's
    variables are used.
    """
    x = convert_to_tensor(inputs)
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"units: expected a positive int, got {units!r}")
    if x.shape is None or not x.shape or x.shape[-1] is None:
        raise ValueError(f"inputs: dense needs the last axis's size known, got {x.name} with shape {x.shape}")
    with variable_scope(name, default_name="dense", reuse=reuse):
        kernel = get_variable("kernel", [x.shape[-1], units], dtype=x.dtype,
                              initializer=kernel_initializer or glorot_uniform_initializer(), trainable=trainable)
        y = ops.matmul(x, kernel, name="MatMul") if len(x.shape) == 2 else ops.matmul(x, kernel, name="Tensordot")
        if use_bias:
            bias = get_variable("bias", [units], dtype=x.dtype, initializer=bias_initializer or zeros_initializer(),
                                trainable=trainable)
            y = ops.add(y, bias, name="BiasAdd")
        if activation is not None:
            y = activation(y)
    return y


def __getattr__(name):
    raise unsupported("tf.layers", name)
