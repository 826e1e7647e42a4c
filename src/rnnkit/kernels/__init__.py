"""Fused sequence kernels: faster ways to run ``RNN``'s loop, same numbers.

``select(cell, x, mask, dropout, label)`` returns ``(kernel, reason)``: a
``FusedKernel`` (callable, with a ``name``) or ``None`` and the reason the
reference loop must run. Every argument is explicit: the cell (or stack of
cells), the inputs (batch, time, features), the bool (batch, time) mask or
None, the dropout masks ``rnn.sample_dropout_masks`` drew (or None), and a
label for the log. The kernel then runs as::

    outputs, state = kernel(x, state, mask, dropout, zero_output_for_mask, need_sequences)

``RNN`` records the choice in ``layer.kernel_used``/``layer.kernel_reason``
(``rnnkit.explain`` lists them); the logger ``rnnkit.kernels`` says it at
DEBUG level on every call.

The native kernels (``rnnkit._native``, built at install) cover
``SimpleRNNCell`` (tanh, sigmoid, relu, linear), ``GRUCell`` (both
``reset_after``) and ``LSTMCell`` with tanh/sigmoid, stacks of them, masks,
dropout masks, float32 and float64 on the CPU; each step's product runs
through rnnkit's own AVX-512 kernel where the CPU has it (else oneDNN's
matmul or MKL). On a CPU without it, an unmasked float32 LSTM without
dropout goes to torch's own oneDNN LSTM instead (weights converted on the
fly; faster there), except training calls of at least
``NATIVE_TRAIN_MIN_STEPS`` steps and ``NATIVE_TRAIN_MIN_BATCH`` rows, where
the native kernel was measured faster: ``assign_lstm_routes`` decides per
cell. Small calls run on one thread (``native.runs_serial``; loops of
small models: ``kernels.threads.one_thread_if_small``). On CUDA,
``torch_route`` sends unmasked LSTM, GRU (``reset_after=True``) and
tanh/relu SimpleRNN layers without dropout to torch's fused RNN op (cuDNN),
weights converted the same way. Anything else runs the reference loop and
says why. ``Stepper`` (``kernels.stepper``) runs one step at a time for
generation.

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
from .autocast import bf16_autocast, bf16_status
from .fpmode import flush_denormals, flushing  # subnormals flushed inside the kernels
from .native import FusedKernel
from .stepper import Stepper

__all__ = [
    "select", "native_route", "torch_route", "assign_lstm_routes", "plan_for", "FusedKernel", "Stepper",
    "native_available", "flush_denormals", "flushing",
]

log = logging.getLogger("rnnkit.kernels")


def native_available() -> tuple[bool, str | None]:
    """Whether ``rnnkit._native`` loaded, and the import error when it did not."""
    return native.IMPORT_ERROR is None, native.IMPORT_ERROR


# TF1's MultiRNNCell(state_is_tuple=False) carries one concatenated state; the kernels take each cell's own.
CONCATENATED_STATE = "a stack with one concatenated state (state_is_tuple=False) has no fused kernel"


def plan_for(cell):
    """``(plan, description)``: the per-cell native plan, or ``(None, reason)``."""
    if native.IMPORT_ERROR is not None:
        return None, native.IMPORT_ERROR
    if not getattr(cell, "state_is_tuple", True):
        return None, CONCATENATED_STATE
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


def select(cell, x, mask, dropout, label: str = "") -> tuple[FusedKernel | None, str]:
    """``(kernel, reason)`` for running ``cell`` over ``x`` with ``mask`` and ``dropout``; kernel None: the reference loop.

    ``label`` (the layer's name) only goes to the DEBUG log.
    """
    pick = torch_route if x.device.type == "cuda" else native_route
    kernel, reason = pick(cell, x, mask, dropout)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s (%s)", label, kernel.name if kernel else "reference", reason)
    return kernel, reason


def native_route(cell, x, mask, dropout):
    """``(kernel, reason)`` through the native kernels (or oneDNN's LSTM) on the CPU, or ``(None, reason)``."""
    plan, what = plan_for(cell)
    if plan is None:
        return None, what
    if x.device.type != "cpu":
        return None, f"{x.device.type.upper()}: reference loop (the fused kernels cover CPU and CUDA)"
    if x.dtype not in (torch.float32, torch.float64):
        return None, f"dtype {x.dtype}: the native kernels cover float32 and float64"
    if x.shape[0] == 0:
        return None, "empty batch: nothing to fuse"
    stacked = isinstance(cell, StackedRNNCells)
    routed = assign_lstm_routes(plan, x, mask, dropout, stacked)
    name = "+".join(f"{'torch-onednn' if r == 'onednn' else 'native'}:{type(c).__name__}" for c, _, _, r in routed)
    if all(r == "onednn" for *_, r in routed):
        reason = (
            f"torch's oneDNN LSTM (no mask, no dropout, float32, >= {ONEDNN_MIN_STEPS} steps; faster than "
            f"the native kernel): {what}"
        )
    else:
        reason = f"fused native kernel: {what}, {x.dtype}; {threads_note(routed, x.shape[0])}"
        lstm = any(code == native.LSTM for _, code, _, _ in routed) and mask is None and x.dtype == torch.float32
        if lstm and native.ukernel_on():
            reason += "; AVX-512 step products: faster than oneDNN's LSTM"
        elif lstm and native_trains_faster(x):
            reason += (f"; training >= {NATIVE_TRAIN_MIN_STEPS} steps at batch >= {NATIVE_TRAIN_MIN_BATCH}: "
                       "faster than oneDNN's LSTM")
        if bf16_autocast(x):
            reason += f"; {bf16_status()}"
            if any(code == native.LSTM for _, code, _, _ in routed) and mask is None and not torch.is_grad_enabled():
                reason += f"; {BF16_LSTM_NOTE}"
    return FusedKernel(name, routed, stacked), reason


# Under autocast an unmasked LSTM inference call may run faster as torch's oneDNN bfloat16 LSTM; it is not
# taken (assign_lstm_routes), and explain says so. Wall time / torch.nn.LSTM under the same autocast, two
# threads, idle machine, median of 3 runs, 2026-11-29: the native kernel 0.83 (batch 1), 0.92 (batch 128,
# 128 units), 1.07 (batch 64, 512 units), 1.22 (batch 32, 256 units) (docs/performance.md, "The issue's
# four shapes").
BF16_LSTM_NOTE = (
    "torch's oneDNN bfloat16 LSTM can be faster for unmasked inference (up to 1.2x here, from batch 32 at "
    "256+ units) but carries its state in bfloat16; the native kernel keeps it in float32"
)


def threads_note(routed, batch: int) -> str:
    """How the native cells of ``routed`` use torch's threads at ``batch`` rows (``native.runs_serial``)."""
    threads = torch.get_num_threads()
    if threads < 2:
        return "one thread (torch.get_num_threads() == 1)"
    cells = [(code, c.units) for c, code, _, route in routed if route == "native"]
    serial = [native.runs_serial(code, batch, units) for code, units in cells]
    work = max(batch * units * units * GATES[code] for code, units in cells)
    if all(serial):
        return f"one thread (small work: {work:,} multiply-adds per step < {native.serial_work():,})"
    if any(serial):
        return f"{threads} threads for the cells from {native.serial_work():,} multiply-adds per step, one below"
    return f"{threads} threads ({work:,} multiply-adds per step)"


# gates per cell code: G = GATES[code] * units
GATES = {native.SIMPLE: 1, native.GRU_AFTER: 3, native.GRU_BEFORE: 3, native.LSTM: 4}


# oneDNN costs 0.2-0.4 ms of setup per call (weights reordered each time): measured slower than the
# native kernel for 1 step, faster from 32 steps at batch 1 to 128 (docs/performance.md).
ONEDNN_MIN_STEPS = 16

# Training from 100 steps and 16 rows, the native kernel (weights laid out once per sequence) beats
# or ties oneDNN's LSTM. Process CPU time / torch.nn.LSTM, one thread, 2026-11-29, native / oneDNN:
# batch 32, 256 units: 0.90 / 1.00 at 100 steps, 0.81 / 1.04 at 1,000 (MKL products), 0.78 / 0.76
# at 1,000 with oneDNN's per-step matmul; batch 16, 100 steps: 1.00 / 1.08 (256 units), 1.01 / 1.13
# (128); batch 16, 200 steps, 256 units: 0.91 / 1.03; batch 64, 512 units, 100 steps: 0.89 / 0.89.
# oneDNN wins at 28 steps (batch 128) and below 16 rows (batch 8: 1.24 / 1.08; batch 1: 1.16 / 1.02)
# (docs/performance.md).
NATIVE_TRAIN_MIN_STEPS = 100
NATIVE_TRAIN_MIN_BATCH = 16


def native_trains_faster(x) -> bool:
    """A training call (grad on) long and wide enough for the native LSTM to beat oneDNN's."""
    return torch.is_grad_enabled() and x.shape[1] >= NATIVE_TRAIN_MIN_STEPS and x.shape[0] >= NATIVE_TRAIN_MIN_BATCH


# SimpleRNN activations cuDNN has (torch's rnn_tanh / rnn_relu)
CUDNN_SIMPLE = (native.SIMPLE_ACTIVATIONS["tanh"], native.SIMPLE_ACTIVATIONS["relu"])


def _no_dropout(dropout) -> bool:
    if dropout is None:
        return True
    if isinstance(dropout, DropoutMasks):
        return dropout.input is None and dropout.recurrent is None
    return all(_no_dropout(d) for d in dropout)  # a stack: one per cell


def torch_route(cell, x, mask, dropout):
    """``(kernel, reason)`` through torch's own fused RNN op (cuDNN on CUDA), or ``(None, reason)``.

    Covers unmasked sequences without dropout of ``LSTMCell``, ``GRUCell(reset_after=True)`` and
    ``SimpleRNNCell`` with tanh or relu (and stacks of them): the forms cuDNN computes. The rest runs
    the reference loop and says why.
    """
    where = x.device.type.upper()
    if not getattr(cell, "state_is_tuple", True):
        return None, f"{where}: reference loop ({CONCATENATED_STATE})"
    stacked = isinstance(cell, StackedRNNCells)
    cells = list(cell.cells) if stacked else [cell]
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
    return FusedKernel(name, plan, stacked), f"torch's fused RNN (cuDNN), weights converted on the fly: {' + '.join(names)}"


def assign_lstm_routes(plan, x, mask, dropout, stacked):
    """``plan`` with a route added to each ``(cell, code, act)``: "onednn" or "native".

    An LSTM cell goes to torch's oneDNN LSTM where that applies and was
    measured faster: no mask, no dropout on that cell, float32, at least
    ``ONEDNN_MIN_STEPS`` steps, not a training call of at least
    ``NATIVE_TRAIN_MIN_STEPS`` steps and ``NATIVE_TRAIN_MIN_BATCH`` rows
    (``native_trains_faster``), and a CPU without rnnkit's AVX-512 step
    products (``native.ukernel_on``: with them the native kernel beat oneDNN's
    LSTM on every shape measured). Every other cell runs the native kernel.
    """
    drops = dropout if stacked and dropout is not None else (dropout,) * len(plan)
    onednn = (
        mask is None
        and x.dtype == torch.float32
        and x.shape[1] >= ONEDNN_MIN_STEPS
        and native.onednn_lstm_available()
        and not bf16_autocast(x)  # the native kernel keeps a float32 state under autocast
        and not native_trains_faster(x)
        and not native.ukernel_on()
    )
    return [
        (c, code, act, "onednn" if onednn and code == native.LSTM and d is None else "native")
        for (c, code, act), d in zip(plan, drops)
    ]

