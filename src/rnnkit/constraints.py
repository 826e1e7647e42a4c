"""Weight constraints (Keras's ``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm``).

A constraint maps a weight to its projection; ``fit`` applies each layer's
constraints to its weights after every optimizer step
(``Layer.apply_constraints``). Definitions are Keras 3's, with norms over
``axis`` (0: each column of a kernel (in, units), i.e. each unit's incoming
weights) and ``eps = 1e-7`` (Keras's ``epsilon()``):

=============================================  ====================================================
``MaxNorm(max_value=2, axis=0)``               ``w * clip(n, 0, max_value) / (eps + n)``
``NonNeg()``                                   ``w * (w >= 0)``
``UnitNorm(axis=0)``                           ``w / (eps + n)``
``MinMaxNorm(min_value=0, max_value=1,``       ``w * (rate * clip(n, min, max) + (1 - rate) * n) / (eps + n)``
``rate=1, axis=0)``
=============================================  ====================================================

where ``n = sqrt(sum(w**2, axis, keepdims=True))``. Names: ``"max_norm"``,
``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"`` (default arguments).

>>> MaxNorm(1.0)(torch.tensor([[3.0], [4.0]])).flatten().tolist()  # doctest: +ELLIPSIS
[0.6..., 0.8...]
"""

from __future__ import annotations

import torch

from .ops import ConfigObject, object_from_spec

EPSILON = 1e-7


class Constraint(ConfigObject):
    """Base: ``constraint(w)`` is the projected weight; ``get_config()`` its arguments."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _norms(w, axis):
    return w.square().sum(dim=axis, keepdim=True).sqrt()


class MaxNorm(Constraint):
    def __init__(self, max_value: float = 2, axis: int = 0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        n = _norms(w, self.axis)
        return w * (n.clamp(0, self.max_value) / (EPSILON + n))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    def __call__(self, w):
        return w * (w >= 0).to(w.dtype)


class UnitNorm(Constraint):
    def __init__(self, axis: int = 0):
        self.axis = axis

    def __call__(self, w):
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: int = 0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        n = _norms(w, self.axis)
        desired = self.rate * n.clamp(self.min_value, self.max_value) + (1 - self.rate) * n
        return w * (desired / (EPSILON + n))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


CONSTRAINTS: dict[str, type[Constraint]] = {
    "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm,
    "MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm,
}


def get_constraint(spec, arg: str = "constraint") -> Constraint | None:
    """None, a name (``"max_norm"`` ...), a ``Constraint``, or its config ``{"class_name", "config"}``."""
    return object_from_spec(spec, CONSTRAINTS, Constraint, arg, "constraint", "a name ('max_norm', 'non_neg', 'unit_norm', 'min_max_norm'), a Constraint")
