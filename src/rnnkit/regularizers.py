"""Weight and activity regularizers (Keras's ``l1``, ``l2``, ``l1_l2``).

A regularizer maps a tensor to a scalar penalty; a layer's ``losses`` are
its regularizers applied to its weights (and, for ``activity_regularizer``,
to its outputs), and ``fit`` adds them to the training loss. Definitions
and default factors are Keras 3's:

=============================  =====================================  ==========
name / class                   penalty                                defaults
=============================  =====================================  ==========
``"l1"`` / ``L1(l1)``          ``l1 * sum(|w|)``                      l1 = 0.01
``"l2"`` / ``L2(l2)``          ``l2 * sum(w**2)``                     l2 = 0.01
``L1L2(l1, l2)``               ``l1 * sum(|w|) + l2 * sum(w**2)``     0.0, 0.0
=============================  =====================================  ==========

``get_regularizer`` takes a name, an instance, a ``{"class_name", "config"}``
dict (a config) or None; the registry is closed. (Keras has no ``"l1_l2"``
name; ``L1L2`` is its class.)

>>> float(L2(0.5)(torch.tensor([1.0, 2.0])))
2.5
"""

from __future__ import annotations

import torch

from .ops import ConfigObject, object_from_spec


class Regularizer(ConfigObject):
    """Base: ``regularizer(w)`` is a scalar tensor; ``get_config()`` its factors."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _factor(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{arg}: expected a non-negative number, got {value!r}")
    return float(value)


class L1(Regularizer):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1: float = 0.01):
        self.l1 = _factor(l1, "l1")

    def __call__(self, w):
        return self.l1 * w.abs().sum()

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w**2)``."""

    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(l2, "l2")

    def __call__(self, w):
        return self.l2 * w.square().sum()

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = _factor(l1, "l1"), _factor(l2, "l2")

    def __call__(self, w):
        return self.l1 * w.abs().sum() + self.l2 * w.square().sum()

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


REGULARIZERS: dict[str, type[Regularizer]] = {"l1": L1, "l2": L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get_regularizer(spec, arg: str = "regularizer") -> Regularizer | None:
    """None, a name (``"l1"``, ``"l2"``), a ``Regularizer``, or its config ``{"class_name", "config"}``."""
    return object_from_spec(spec, REGULARIZERS, Regularizer, arg, "regularizer", "a name ('l1', 'l2'), a Regularizer (L1, L2, L1L2)")
