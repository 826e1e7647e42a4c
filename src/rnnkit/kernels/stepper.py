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
        self._step = None if code is None else native._native.step

    def initial_state(self, batch_size: int):
        return self.cell.get_initial_state(batch_size)

    def __call__(self, x_t: torch.Tensor, state):
        """``(y, new_state)`` for one step; ``x_t`` (batch, features) of the cell's dtype."""
        code = self._code
        # The weights straight from the parameter dict: nn.Module's attribute lookup costs
        # ~0.6 us per name, a third of a 256-unit step at batch 1 (measured). One combined
        # test for the common case; _checked sorts out the rest.
        params = self.cell._parameters
        kernel = params["kernel"]
        if code is None or x_t.dtype is not kernel.dtype or not x_t.is_cpu or x_t.dim() != 2 or (
            x_t.shape[1] != kernel.shape[0]
        ):
            return self._checked(x_t, state)
        # The native step runs without autograd (it writes its outputs directly). It takes the
        # GRU reset_after bias as the cell keeps it, (input, recurrent) rows, and splits it.
        bias = params.get("bias")
        if code == native.LSTM:
            if not isinstance(state, tuple) or len(state) != 2:  # issue 15: was an IndexError
                raise ValueError(f"state: an LSTM step takes (h, c), got {type(state).__name__} "
                                 f"of {len(state) if isinstance(state, (tuple, list)) else 1}")
            h, c = self._step(code, self._act, x_t, kernel, bias, params["recurrent_kernel"], None, state[0], state[1])
            return h, LSTMState(h, c)
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"state: a {type(self.cell).__name__} step takes one tensor h, got {type(state).__name__}")
        h, _ = self._step(code, self._act, x_t, kernel, bias, params["recurrent_kernel"], None, state, None)
        return h, h

    def _checked(self, x_t, state):
        """The uncommon cases: the cell's own step (not covered, not CPU), or a clear error."""
        cell = self.cell
        if self._code is None or not x_t.is_cpu or x_t.dtype not in (torch.float32, torch.float64):
            with torch.no_grad():
                return cell(x_t, state)
        if x_t.dim() != 2 or x_t.shape[1] != cell.input_size:
            raise ValueError(f"x_t: expected shape (batch, {cell.input_size}), got {tuple(x_t.shape)}")
        raise TypeError(f"x_t: dtype {x_t.dtype} does not match the cell's weights ({cell.kernel.dtype})")
