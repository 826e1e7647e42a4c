"""Fused sequence kernels: faster ways to run ``RNN``'s loop, same numbers.

``select(layer, x, state, mask, dropout)`` returns ``(kernel, reason)``:
a callable ``kernel(layer, x, state, mask, dropout) -> (outputs, state)``
with a ``name``, or ``None`` and the reason the reference loop must run.
"""

from __future__ import annotations


def select(layer, x, state, mask, dropout):  # noqa: ARG001 - the fused engine fills this in
    return None, "no fused kernel is available in this build"
