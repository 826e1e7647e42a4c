"""Compatibility namespaces: ``rnnkit.compat.v1`` is TF1's graph mode (``import rnnkit.compat.v1 as tf``)."""

from . import v1

__all__ = ["v1"]
