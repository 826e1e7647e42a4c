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
on the fly; faster here). On CUDA, ``torch_route`` sends unmasked LSTM, GRU
(``reset_after=True``) and tanh/relu SimpleRNN layers without dropout to
torch's fused RNN op (cuDNN), weights converted the same way. Anything else
runs the reference loop and says why.

>>> import rnnkit as rk
>>> layer = rk.LSTM(8)
>>> _ = layer(torch.zeros(2, 5, 3))
>>> layer.kernel_used
'native:LSTMCell'
"""

from __future__ import annotations

import logging

import torch

from ..cells import DropoutMasks, StackedRNNCells
from . import native
from .autocast import bf16_autocast, bf16_status  # speed(#14)
from .fpmode import flush_denormals, flushing  # speed(#14): subnormals flushed in the kernels
from .stepper import Stepper

__all__ = ["select", "native_route", "torch_route", "explain", "Stepper", "native_available"]
__all__ += ["flush_denormals", "flushing"]  # speed(#14)

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
    pick = torch_route if x.device.type == "cuda" else native_route
    kernel, reason = pick(layer, x, mask, dropout)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s (%s)", layer.name, kernel.name if kernel else "reference", reason)
    return kernel, reason


def native_route(layer, x, mask, dropout):
    """``(kernel, reason)`` through the native kernels (or oneDNN's LSTM) on the CPU, or ``(None, reason)``."""
    plan, what = plan_for(layer.cell)
    if plan is None:
        return None, what
    if x.device.type != "cpu":
        return None, f"{x.device.type.upper()}: reference loop (the fused kernels cover CPU and CUDA)"
    if x.dtype not in (torch.float32, torch.float64):
        return None, f"dtype {x.dtype}: the native kernels cover float32 and float64"
    if x.shape[0] == 0:
        return None, "empty batch: nothing to fuse"
    routed = route(plan, x, mask, dropout, isinstance(layer.cell, StackedRNNCells))
    name = "+".join(f"{'torch-onednn' if r == 'onednn' else 'native'}:{type(c).__name__}" for c, _, _, r in routed)
    if all(r == "onednn" for *_, r in routed):
        reason = (
            f"torch's oneDNN LSTM (no mask, no dropout, float32, >= {ONEDNN_MIN_STEPS} steps; faster than "
            f"the native kernel): {what}"
        )
    else:
        reason = f"fused native kernel: {what}, {x.dtype}"
        reason += f"; {bf16_status()}" if bf16_autocast(x) else ""  # speed(#14)
    return native.NativeKernel(name, routed), reason


# oneDNN costs 0.2-0.4 ms of setup per call (weights reordered each time): measured slower than the
# native kernel for 1 step, faster from 32 steps at batch 1 to 128 (docs/performance.md).
ONEDNN_MIN_STEPS = 16


# SimpleRNN activations cuDNN has (torch's rnn_tanh / rnn_relu)
CUDNN_SIMPLE = (native.SIMPLE_ACTIVATIONS["tanh"], native.SIMPLE_ACTIVATIONS["relu"])


def _no_dropout(dropout) -> bool:
    if dropout is None:
        return True
    if isinstance(dropout, DropoutMasks):
        return dropout.input is None and dropout.recurrent is None
    return all(_no_dropout(d) for d in dropout)  # a stack: one per cell


def torch_route(layer, x, mask, dropout):
    """``(kernel, reason)`` through torch's own fused RNN op (cuDNN on CUDA), or ``(None, reason)``.

    Covers unmasked sequences without dropout of ``LSTMCell``, ``GRUCell(reset_after=True)`` and
    ``SimpleRNNCell`` with tanh or relu (and stacks of them): the forms cuDNN computes. The rest runs
    the reference loop and says why.
    """
    where = x.device.type.upper()
    cells = list(layer.cell.cells) if isinstance(layer.cell, StackedRNNCells) else [layer.cell]
    plan, names = [], []
    for c in cells:
        code, act, what = native.cell_support(c)
        if code is None or code == native.GRU_BEFORE or (code == native.SIMPLE and act not in CUDNN_SIMPLE):
            why = what if code is None else f"{what} has no cuDNN form"
            return None, f"{where}: reference loop ({why})"
        plan.append((c, code, act, "cudnn"))
        names.append(what)
    if mask is not None:
        return None, f"{where}: reference loop (cuDNN takes no mask; masked batches run the readable loop)"
    if not _no_dropout(dropout):
        return None, f"{where}: reference loop (dropout masks: cuDNN's dropout is not Keras's)"
    if x.shape[0] == 0:
        return None, "empty batch: nothing to fuse"
    name = "+".join(f"torch-cudnn:{type(c).__name__}" for c, *_ in plan)
    return native.NativeKernel(name, plan), f"torch's fused RNN (cuDNN), weights converted on the fly: {' + '.join(names)}"


def route(plan, x, mask, dropout, stacked):
    """Add each cell's route: torch's oneDNN LSTM where it applies (and measured faster), else native."""
    drops = dropout if stacked and dropout is not None else (dropout,) * len(plan)
    onednn = (
        mask is None
        and x.dtype == torch.float32
        and x.shape[1] >= ONEDNN_MIN_STEPS
        and native.onednn_lstm_available()
        and not bf16_autocast(x)  # speed(#14): the native kernel keeps a float32 state under autocast
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
