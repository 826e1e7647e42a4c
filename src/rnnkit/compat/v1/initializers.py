"""TF1's initializers: callables ``init(shape, dtype) -> torch.Tensor``, drawn on torch's global RNG.

    W = tf.get_variable("W", [3, 5], initializer=tf.truncated_normal_initializer(stddev=0.01))

The random ones are drawn again each time a variable's initializer op runs.
"""

from __future__ import annotations

import torch

from ... import ops as core_ops


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=torch.float32) -> torch.Tensor:
    """Normal draws, redrawn past two standard deviations (TF1's rule): values in [mean - 2σ, mean + 2σ]."""
    t = torch.empty(tuple(shape), dtype=dtype)
    return torch.nn.init.trunc_normal_(t, mean=mean, std=stddev, a=mean - 2 * stddev, b=mean + 2 * stddev)


def _named(fn, name):
    fn.__name__ = name
    return fn


def zeros_initializer(dtype=torch.float32):  # noqa: ARG001 - TF1 signature; the variable's dtype is used
    return _named(lambda shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype), "zeros_initializer")


def ones_initializer(dtype=torch.float32):  # noqa: ARG001
    return _named(lambda shape, dtype=torch.float32: torch.ones(shape, dtype=dtype), "ones_initializer")


def constant_initializer(value=0.0, dtype=torch.float32):  # noqa: ARG001
    def init(shape, dtype=torch.float32):
        v = torch.as_tensor(value, dtype=dtype)
        return v.expand(shape).clone() if v.numel() == 1 else v.reshape(shape).clone()

    return _named(init, "constant_initializer")


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=torch.float32):  # noqa: ARG001
    return _named(lambda shape, dtype=torch.float32: torch.randn(shape, dtype=dtype) * stddev + mean, "random_normal_initializer")


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=torch.float32):  # noqa: ARG001
    return _named(lambda shape, dtype=torch.float32: truncated_normal(shape, mean, stddev, dtype), "truncated_normal_initializer")


def random_uniform_initializer(minval=-0.05, maxval=0.05, seed=None, dtype=torch.float32):  # noqa: ARG001
    def init(shape, dtype=torch.float32):
        return torch.rand(shape, dtype=dtype) * (maxval - minval) + minval

    return _named(init, "random_uniform_initializer")


def glorot_uniform_initializer(seed=None, dtype=torch.float32):  # noqa: ARG001
    """``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``: TF1's default for ``get_variable`` and ``layers.dense``."""
    return _named(lambda shape, dtype=torch.float32: core_ops.glorot_uniform(shape, dtype=dtype), "glorot_uniform_initializer")


def glorot_normal_initializer(seed=None, dtype=torch.float32):  # noqa: ARG001
    return _named(lambda shape, dtype=torch.float32: core_ops.glorot_normal(shape, dtype=dtype), "glorot_normal_initializer")


def orthogonal_initializer(gain=1.0, seed=None, dtype=torch.float32):  # noqa: ARG001
    return _named(lambda shape, dtype=torch.float32: gain * core_ops.orthogonal(shape, dtype=dtype), "orthogonal_initializer")
