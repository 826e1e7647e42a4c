"""Keras's ``LayerNormalization``: each sample normalized over its feature axes, then scaled and shifted.

    y = (x - mean(x)) / sqrt(var(x) + epsilon) * gamma + beta

``mean`` and the biased ``var`` are taken over ``axis`` (the features,
``-1``, by default) for each sample and step on their own, so padding and
the batch never mix in; a mask passes through unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Layer, lazy_parameter, materialize
from .ops import as_tensor, config_spec, get_initializer


class LayerNormalization(Layer):
    """Normalize over ``axis`` per sample, as Keras's ``LayerNormalization`` (weights ``gamma``, ``beta``).

    Args:
        axis: the axis, or list of axes, normalized together (not the batch
            axis 0); ``gamma`` and ``beta`` have their sizes.
        epsilon: added to the variance (Keras's default 1e-3).
        center: learn the shift ``beta``; scale: learn the factor ``gamma``.
        beta_initializer, gamma_initializer: as Keras ("zeros", "ones").

    Shapes: any (batch, ...) in, the same out. The statistics are computed
    in float32 at least, so a bfloat16 input (``dtype="mixed_bfloat16"``)
    is normalized exactly as Keras does, then returned in bfloat16. Keras's
    weight order: ``[gamma, beta]`` (each when present).

    >>> norm = LayerNormalization(epsilon=0.0)
    >>> norm(torch.tensor([[1.0, 3.0]]))
    tensor([[-1.,  1.]], grad_fn=<AddBackward0>)
    """

    supports_masking = True  # per step: a step's validity is unchanged

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", name: str | None = None, input_shape=None,
                 dtype=None):
        super().__init__(name=name, input_shape=None, dtype=dtype)
        axes = [axis] if isinstance(axis, int) and not isinstance(axis, bool) else axis
        if not isinstance(axes, (list, tuple)) or not axes or not all(
                isinstance(a, int) and not isinstance(a, bool) for a in axes):
            raise TypeError(f"axis: expected an int or a list of ints, got {axis!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
            raise ValueError(f"epsilon: expected a number >= 0, got {epsilon!r}")
        for arg, flag in (("center", center), ("scale", scale)):
            if not isinstance(flag, bool):
                raise TypeError(f"{arg}: expected True or False, got {flag!r}")
        self.axis = axis if isinstance(axis, int) else list(axis)
        self.epsilon, self.center, self.scale = float(epsilon), center, scale
        self.beta_initializer = get_initializer(beta_initializer, "beta_initializer")
        self.gamma_initializer = get_initializer(gamma_initializer, "gamma_initializer")
        self._specs = {"beta_initializer": beta_initializer, "gamma_initializer": gamma_initializer}
        self.gamma = lazy_parameter() if scale else None  # Keras builds gamma first: the weights' order
        self.beta = lazy_parameter() if center else None
        if input_shape is not None:
            self.maybe_build(tuple(input_shape))

    def _axes(self, rank: int) -> list[int]:
        """The normalized axes of a (batch, ...) input of ``rank`` axes, as non-negative ints, sorted."""
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        out = sorted({a % rank for a in axes if -rank <= a < rank})
        if len(out) != len(axes) or 0 in out:
            raise ValueError(f"axis: layer {self.name!r} normalizes over {self.axis}, which an input of {rank} axes "
                             f"(batch first) does not have (or names the batch axis)")
        return out

    def build(self, input_shape):
        # input_shape has no batch axis: axis k of the input is input_shape[k - 1]
        shape = tuple(int(input_shape[a - 1]) for a in self._axes(len(input_shape) + 1))
        with torch.no_grad():
            if self.scale:
                materialize(self, "gamma", shape).copy_(self.gamma_initializer(shape, dtype=torch.float32))
            if self.center:
                materialize(self, "beta", shape).copy_(self.beta_initializer(shape, dtype=torch.float32))

    def reset_parameters(self):
        if self.built:
            with torch.no_grad():
                for w, init in ((self.gamma, self.gamma_initializer), (self.beta, self.beta_initializer)):
                    if isinstance(w, nn.Parameter):
                        w.copy_(init(tuple(w.shape)))

    def forward(self, inputs):
        x = as_tensor(inputs)
        if x.dim() < 2:
            raise ValueError(f"inputs: layer {self.name!r} expects (batch, ...), got shape {tuple(x.shape)}")
        self.maybe_build(x.shape[1:], like=x)
        axes = self._axes(x.dim())
        shape = tuple(x.shape[a] for a in axes)
        weight = self.gamma if self.scale else self.beta
        if weight is not None and tuple(weight.shape) != shape:
            raise ValueError(f"inputs: layer {self.name!r} was built for sizes {tuple(weight.shape)} on axes {axes}, "
                             f"got shape {tuple(x.shape)}")
        # at least float32, as Keras: bfloat16 statistics would lose the small differences
        wide = torch.promote_types(x.dtype, torch.float32)
        h = x.to(wide)
        mean = h.mean(dim=axes, keepdim=True)
        var = h.var(dim=axes, keepdim=True, unbiased=False)
        y = (h - mean) * torch.rsqrt(var + self.epsilon)
        broadcast = [x.shape[a] if a in axes else 1 for a in range(x.dim())]
        if self.scale:
            y = y * self.gamma.to(wide).reshape(broadcast)
        if self.center:
            y = y + self.beta.to(wide).reshape(broadcast)
        return y.to(x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        cfg = {"name": self.name, "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
               "scale": self.scale}
        cfg.update({k: config_spec(v, self.name, k) for k, v in self._specs.items()})
        if self.built and self.input_shape is not None:
            # The sizes gamma and beta were built for (other axes None), so a loaded config builds them again.
            axes = self._axes(len(self.input_shape) + 1)
            cfg["input_shape"] = [d if i + 1 in axes else None for i, d in enumerate(self.input_shape)]
        return cfg
