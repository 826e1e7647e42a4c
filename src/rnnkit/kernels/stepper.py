"""``Stepper``: one step at a time with the state carried, for generation.

``RNN.forward`` checks its arguments, builds masks and records the kernel on
every call: right for sequences, but tens of microseconds per call, more than
the step itself at batch 1. A ``Stepper`` checks once, then each call is one
native function (input projection, recurrent matmul and fused pointwise) with
no autograd::

    step = Stepper(layer)              # an RNN layer or a built-in cell
    state = step.initial_state(1)      # zeros, the cell's structure
    for t in range(n):
        y, state = step(x_t, state)    # x_t (batch, features)

Numbers equal ``cell(x_t, state)`` (float64 exactly, float32 to ~1e-6).
Inference only: it runs under ``torch.no_grad()``, without dropout. A cell
the native kernels do not cover runs its own ``forward`` (``step.kernel_used``
and ``step.kernel_reason`` say which and why).
"""

from __future__ import annotations

import torch

from ..cells import LSTMState, StackedRNNCells
from . import native


class Stepper:
    """Fast single-step inference for an ``RNN`` layer or a built-in cell."""

    def __init__(self, layer_or_cell):
        cell = getattr(layer_or_cell, "cell", layer_or_cell)
        if isinstance(cell, StackedRNNCells):
            raise TypeError("layer_or_cell: a Stepper runs one cell; make one per cell of a StackedRNNCells")
        if not getattr(cell, "built", True):
            raise ValueError(f"layer_or_cell: cell {getattr(cell, 'name', cell)!r} is not built; call it once first")
        self.cell = cell
        code, act, what = native.cell_support(cell)
        if native.IMPORT_ERROR is not None:
            code, what = None, native.IMPORT_ERROR
        self._code, self._act = code, act
        self.kernel_used = "native" if code is not None else "reference"
        self.kernel_reason = what

    def initial_state(self, batch_size: int):
        return self.cell.get_initial_state(batch_size)

    def __call__(self, x_t: torch.Tensor, state):
        """``(y, new_state)`` for one step; ``x_t`` (batch, features) of the cell's dtype."""
        cell, code = self.cell, self._code
        if code is None or x_t.device.type != "cpu" or x_t.dtype not in (torch.float32, torch.float64):
            with torch.no_grad():
                return cell(x_t, state)
        if x_t.dim() != 2 or x_t.shape[1] != cell.input_size:
            raise ValueError(f"x_t: expected shape (batch, {cell.input_size}), got {tuple(x_t.shape)}")
        if x_t.dtype != cell.kernel.dtype:
            raise TypeError(f"x_t: dtype {x_t.dtype} does not match the cell's weights ({cell.kernel.dtype})")
        # The native step runs without autograd (it writes its outputs directly).
        b_rec = cell.bias[1] if code == native.GRU_AFTER and cell.bias is not None else None
        if code == native.LSTM:
            h, c = native._native.step(
                code, self._act, x_t, cell.kernel, cell.input_bias(), cell.recurrent_kernel, None, state[0], state[1]
            )
            return h, LSTMState(h, c)
        h, _ = native._native.step(
            code, self._act, x_t, cell.kernel, cell.input_bias(), cell.recurrent_kernel, b_rec, state, None
        )
        return h, h
