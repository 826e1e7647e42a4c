"""Keras's ``SpatialDropout1D``: dropout of whole feature channels, the same ones at every step.

    y[b, t, f] = x[b, t, f] * keep[b, f] / (1 - rate),   keep[b, f] ~ Bernoulli(1 - rate)

Plain ``Dropout`` draws each ``(b, t, f)`` on its own; neighbouring steps
are strongly correlated, so dropping single values regularizes little, and
dropping a feature for a whole sequence does better (Tompson et al., 2015).
"""

from __future__ import annotations

import torch

from .base import Layer
from .ops import as_tensor, bernoulli_mask, check_rate


class SpatialDropout1D(Layer):
    """Zero a fraction ``rate`` of each sample's features for all its steps in training, scale the rest by 1/(1-rate).

    Shapes: (batch, steps, features) in and out; the noise has shape
    (batch, 1, features). In eval mode (``predict``, ``model.eval()``) it
    is the identity. ``seed`` makes the draws repeatable. A mask passes
    through unchanged.

    >>> drop = SpatialDropout1D(0.5, seed=1)
    >>> y = drop(torch.ones(2, 4, 3), training=True)
    >>> bool(((y == 0).all(dim=1) | (y == 2).all(dim=1)).all())   # each feature dropped for every step or none
    True
    """

    supports_masking = True

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.rate = check_rate(rate, "rate")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {seed!r}")
        self.seed = seed
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.built = True

    def forward(self, inputs, training=None):
        x = as_tensor(inputs)
        if x.dim() != 3:
            raise ValueError(f"inputs: layer {self.name!r} expects (batch, steps, features), got shape {tuple(x.shape)}")
        training = self.training if training is None else training
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        return x * bernoulli_mask((x.shape[0], 1, x.shape[2]), keep, x, self._generator) / keep

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "rate": self.rate, "seed": self.seed}
