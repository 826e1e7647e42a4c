"""Keras's global poolings over time: the usual head of a sequence classifier.

A recurrent layer with ``return_sequences=True`` gives one vector per step;
a global pooling turns them into one vector per sequence::

    GlobalAveragePooling1D: y[b, f] = sum_t m[b, t] x[b, t, f] / sum_t m[b, t]
    GlobalMaxPooling1D:     y[b, f] = max_t x[b, t, f]

Shapes: (batch, steps, features) -> (batch, features) with
``data_format="channels_last"`` (the default), (batch, features, steps) ->
(batch, features) with ``"channels_first"``; ``keepdims=True`` keeps the
steps axis with length 1. Masks are Keras 3's: the average counts only the
valid steps ``m[b, t]`` of the incoming mask (a row with none gives NaN, 0/0,
as in Keras), and the max reads no mask at all (Keras 3.15's
``GlobalMaxPooling1D`` takes every step, padding included). Neither passes a
mask on: there is no time axis left.
"""

from __future__ import annotations

import torch

from .base import Layer
from .ops import as_tensor

DATA_FORMATS = ("channels_last", "channels_first")


class _GlobalPooling1D(Layer):
    """What both poolings share: the arguments, the input check, the output shape and the config."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, name: str | None = None,
                 input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        data_format = "channels_last" if data_format is None else data_format
        if data_format not in DATA_FORMATS:
            raise ValueError(f"data_format: expected one of {DATA_FORMATS} (or None for 'channels_last'), "
                             f"got {data_format!r}")
        if not isinstance(keepdims, bool):
            raise TypeError(f"keepdims: expected True or False, got {keepdims!r}")
        self.data_format, self.keepdims = data_format, keepdims
        self.built = True

    @property
    def steps_axis(self) -> int:
        return 1 if self.data_format == "channels_last" else 2

    def _inputs(self, inputs) -> torch.Tensor:
        x = as_tensor(inputs)
        if x.dim() != 3:
            order = "(batch, steps, features)" if self.data_format == "channels_last" else "(batch, features, steps)"
            raise ValueError(f"inputs: layer {self.name!r} expects {order}, got shape {tuple(x.shape)}")
        return x

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002 - the steps axis is gone, and the mask with it
        return None

    def compute_output_shape(self, input_shape):
        batch, *rest = tuple(input_shape)
        features = rest[-1] if self.data_format == "channels_last" else rest[0]
        if not self.keepdims:
            return (batch, features)
        return (batch, 1, features) if self.data_format == "channels_last" else (batch, features, 1)

    def get_config(self):
        return {"name": self.name, "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the steps axis, of the valid steps only when a mask comes, as Keras 3's layer.

    ``y[b, f] = sum_t m[b, t] x[b, t, f] / sum_t m[b, t]`` (``m`` all ones
    without a mask); a masked step's value is never read, so NaN or inf there
    changes nothing. In a ``Sequential`` or a functional model the mask of an
    ``Embedding(mask_zero=True)`` or ``Masking`` reaches it by itself; by hand:

    >>> x = torch.tensor([[[1.0], [3.0], [9.0]]])
    >>> GlobalAveragePooling1D()(x, mask=torch.tensor([[True, True, False]]))
    tensor([[2.]])
    """

    takes_mask = True  # it reads the mask; compute_mask passes none on

    def forward(self, inputs, mask=None):
        x = self._inputs(inputs)
        axis = self.steps_axis
        if mask is None:
            return x.mean(dim=axis, keepdim=self.keepdims)
        mask = torch.as_tensor(mask, device=x.device)
        if tuple(mask.shape) != (x.shape[0], x.shape[axis]):
            raise ValueError(f"mask: layer {self.name!r} expects a (batch, steps) mask of shape "
                             f"{(x.shape[0], x.shape[axis])}, got {tuple(mask.shape)}")
        valid = mask.to(torch.bool).unsqueeze(3 - axis)  # (batch, steps, 1) or (batch, 1, steps)
        total = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=axis, keepdim=self.keepdims)
        return total / valid.to(x.dtype).sum(dim=axis, keepdim=self.keepdims)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The largest value over the steps axis, for each feature, as Keras 3's layer.

    ``y[b, f] = max_t x[b, t, f]``. Like Keras 3.15 it reads no mask: padded
    steps take part (after a masked ``LSTM(return_sequences=True)`` they hold
    zeros, or the last valid output), and the mask stops here.

    >>> GlobalMaxPooling1D()(torch.tensor([[[1.0, -2.0], [0.5, 4.0]]]))
    tensor([[1., 4.]])
    """

    def forward(self, inputs):
        x = self._inputs(inputs)
        return x.amax(dim=self.steps_axis, keepdim=self.keepdims)
