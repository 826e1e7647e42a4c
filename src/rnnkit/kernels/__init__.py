"""Fused sequence kernels: faster ways to run ``RNN``'s loop, same numbers.

``select(layer, x, state, mask, dropout)`` returns ``(kernel, reason)``:
a callable ``kernel(layer, x, state, mask, dropout) -> (outputs, state)``
with a ``name``, or ``None`` and the reason the reference loop must run.
``RNN`` records the choice in ``layer.kernel_used``/``layer.kernel_reason``;
``explain(model)`` lists it for every recurrent layer, and the logger
``rnnkit.kernels`` says it at DEBUG level on every call.

The native kernels (``rnnkit._native``, built at install) cover
``SimpleRNNCell`` (tanh, sigmoid, relu, linear), ``GRUCell`` (both
``reset_after``) and ``LSTMCell`` with tanh/sigmoid, stacks of them, masks,
dropout masks, float32 and float64 on the CPU. An unmasked float32 LSTM
without dropout goes to torch's own oneDNN LSTM instead (weights converted
on the fly; faster here). Anything else runs the reference loop and says why.

>>> import rnnkit as rk
>>> layer = rk.LSTM(8)
>>> _ = layer(torch.zeros(2, 5, 3))
>>> layer.kernel_used
'native:LSTMCell'
"""

from __future__ import annotations

import logging

import torch

from ..cells import StackedRNNCells
from . import native
from .stepper import Stepper

__all__ = ["select", "explain", "Stepper", "native_available"]

log = logging.getLogger("rnnkit.kernels")


def native_available() -> tuple[bool, str | None]:
    """Whether ``rnnkit._native`` loaded, and the import error when it did not."""
    return native.IMPORT_ERROR is None, native.IMPORT_ERROR


def plan_for(cell):
    """``(plan, description)``: the per-cell native plan, or ``(None, reason)``."""
    if native.IMPORT_ERROR is not None:
        return None, native.IMPORT_ERROR
    cells = list(cell.cells) if isinstance(cell, StackedRNNCells) else [cell]
    plan, names = [], []
    for k, c in enumerate(cells):
        code, act, what = native.cell_support(c)
        if code is None:
            where = f"cells[{k}]: " if isinstance(cell, StackedRNNCells) else ""
            return None, where + what
        plan.append((c, code, act))
        names.append(what)
    return plan, " + ".join(names)


def select(layer, x, state, mask, dropout):  # noqa: ARG001 - the state is checked by RNN
    plan, what = plan_for(layer.cell)
    if plan is None:
        kernel, reason = None, what
    elif x.device.type != "cpu":
        kernel, reason = None, f"{x.device.type.upper()}: reference loop (cuDNN routing not implemented in this build)"
    elif x.dtype not in (torch.float32, torch.float64):
        kernel, reason = None, f"dtype {x.dtype}: the native kernels cover float32 and float64"
    elif x.shape[0] == 0:
        kernel, reason = None, "empty batch: nothing to fuse"
    else:
        routed = route(plan, x, mask, dropout, isinstance(layer.cell, StackedRNNCells))
        name = "+".join(f"{'torch-onednn' if r == 'onednn' else 'native'}:{type(c).__name__}" for c, _, _, r in routed)
        if all(r == "onednn" for *_, r in routed):
            reason = (
                f"torch's oneDNN LSTM (no mask, no dropout, float32, >= {ONEDNN_MIN_STEPS} steps; faster than "
                f"the native kernel): {what}"
            )
        else:
            reason = f"fused native kernel: {what}, {x.dtype}"
        kernel = native.NativeKernel(name, routed)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s (%s)", layer.name, kernel.name if kernel else "reference", reason)
    return kernel, reason


# oneDNN costs 0.2-0.4 ms of setup per call (weights reordered each time): measured slower than the
# native kernel for 1 step, faster from 32 steps at batch 1 to 128 (docs/performance.md).
ONEDNN_MIN_STEPS = 16


def route(plan, x, mask, dropout, stacked):
    """Add each cell's route: torch's oneDNN LSTM where it applies (and measured faster), else native."""
    drops = dropout if stacked and dropout is not None else (dropout,) * len(plan)
    onednn = (
        mask is None
        and x.dtype == torch.float32
        and x.shape[1] >= ONEDNN_MIN_STEPS
        and native.onednn_lstm_available()
    )
    return [
        (c, code, act, "onednn" if onednn and code == native.LSTM and d is None else "native")
        for (c, code, act), d in zip(plan, drops)
    ]


def explain(layer_or_model) -> str:
    """One line per recurrent layer: which kernel ran last and why.

    Layers that have not run yet show what would run for CPU float32 inputs.
    """
    from ..rnn import RNN  # rnn imports this package

    lines = []
    for name, module in layer_or_model.named_modules():
        if not isinstance(module, RNN):
            continue
        label = module.name or name
        if module.kernel_used is not None:
            lines.append(f"{label}: {module.kernel_used} ({module.kernel_reason})")
        elif module.unroll:
            lines.append(f"{label}: not run yet; would use reference (unroll=True asks for the readable Python loop)")
        else:
            plan, what = plan_for(module.cell)
            would = "reference" if plan is None else "a fused kernel"
            lines.append(f"{label}: not run yet; would use {would} on CPU ({what})")
    return "\n".join(lines) if lines else f"{type(layer_or_model).__name__}: no recurrent layers"
