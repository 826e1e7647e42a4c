"""Subnormal floats flushed to zero inside rnnkit's fused kernels.

Gradients that decay back through a long sequence (a SimpleRNN or LSTM of a
few hundred steps) end up as subnormal floats (below 1.2e-38 in float32), and
x86 CPUs run arithmetic on them 10-100 times slower. A training step then
costs 20-70x more at 500 steps than at 250 (issue 14). TensorFlow flushes
subnormals to zero in its CPU threads; rnnkit does the same, for the length
of each call only:

* the native kernels set flush-to-zero and denormals-are-zero (MXCSR FTZ|DAZ
  on x86-64, FPCR.FZ on aarch64) on the calling thread and every thread of
  torch's OpenMP pool (where BLAS runs) for each forward and backward call,
  and give every thread its own mode back afterwards;
* the LSTM routed to torch's oneDNN op (``run_flushed``): its forward runs
  inside the same pool-wide scope, and its backward enters it from a hook on
  its autograd nodes and leaves it when that backward pass ends.

A flushed value differs from the exact one by less than 1.2e-38 (2.3e-308 in
float64), far inside any tolerance. To keep subnormals (e.g. to compare with
another library bit for bit), switch it off:

>>> import rnnkit.kernels as kernels
>>> previous = kernels.flush_denormals(False)
>>> _ = kernels.flush_denormals(previous)

or set the environment variable ``RNNKIT_FLUSH_DENORMALS=0`` before import.
"""

from __future__ import annotations

import os

import torch

try:
    from .. import _native
except ImportError:  # no native extension: kernels.native reports why; nothing here to switch
    _native = None

__all__ = ["flush_denormals", "flushing", "run_flushed"]

_enabled = os.environ.get("RNNKIT_FLUSH_DENORMALS", "1").strip().lower() not in ("0", "false", "no", "off")


def flush_denormals(enabled: bool) -> bool:
    """Turn flushing subnormals to zero in rnnkit's CPU kernels on or off; returns the previous setting.

    On by default (``RNNKIT_FLUSH_DENORMALS=0`` in the environment starts it off).
    Only rnnkit's own calls change the FP mode, and each restores it.
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"flush_denormals: enabled must be a bool, got {type(enabled).__name__}")
    previous, _enabled = _enabled, enabled
    if _native is not None:
        _native.set_flush_denormals(enabled)
    return previous


def flushing() -> bool:
    """Whether rnnkit's kernels flush subnormals (the switch, and a CPU that has the mode)."""
    return _enabled and _native is not None and _native.FLUSH_SUPPORTED


if _native is not None:
    _native.set_flush_denormals(_enabled)


def _enter_for_backward(_grad_outputs):
    """Autograd pre-hook: flush from here to the end of this backward pass."""
    _native.flush_pool_enter()
    torch.autograd.Variable._execution_engine.queue_callback(_native.flush_pool_leave)


def run_flushed(fn, *args):
    """``fn(*args)`` (a torch op over a sequence) with subnormals flushed, forward and backward.

    ``fn`` returns ``(y, state)``, ``state`` a tensor or a tuple of tensors.
    The forward runs inside the pool-wide scope. Each distinct autograd node
    of the outputs gets a pre-hook that enters the scope before its backward
    runs and queues the exit for the end of the pass: the op's own backward
    node lies behind those nodes, so it runs flushed (and so does the rest of
    that backward pass, which is where the other layers' gradients are small).
    """
    if not flushing():
        return fn(*args)
    _native.flush_pool_enter()
    try:
        y, state = fn(*args)
    finally:
        _native.flush_pool_leave()
    outputs = (y, *state) if isinstance(state, tuple) else (y, state)
    nodes = {t.grad_fn for t in outputs if t.grad_fn is not None}
    for node in nodes:
        node.register_prehook(_enter_for_backward)
    return y, state
