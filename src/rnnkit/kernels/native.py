"""The native sequence engine: one autograd Function per sequence and cell.

``rnnkit._native`` (csrc/rnnkit_native.cpp) runs a built-in cell's whole time
loop and its backprop through time. This module wraps it:

* the input projection of every step is one matmul done here, in time-major
  layout, ``xw = x W + b`` of shape (time, batch, gates * units), so autograd
  gives the input, kernel and bias gradients as one matmul/reduction each;
* ``SequenceFunction`` runs the recurrence (``forward``) and backprop through
  time (``backward``), returning gradients for xw, the recurrent kernel, the
  GRU's recurrent bias and the initial state;
* ``run_layer`` applies it cell by cell for ``StackedRNNCells`` (a masked
  step's intermediate output is discarded by the next cell, so running each
  cell over the whole sequence equals the per-step stack).
"""

from __future__ import annotations

import torch

from ..cells import GRUCell, LSTMCell, LSTMState, SimpleRNNCell, StackedRNNCells
from ..ops import ACTIVATIONS

try:
    from .. import _native
except ImportError as exc:  # built without a compiler, or a torch ABI mismatch
    _native = None
    IMPORT_ERROR = f"native extension not built: {exc}"
else:
    IMPORT_ERROR = None

# Codes shared with csrc/rnnkit_native.cpp.
SIMPLE, GRU_AFTER, GRU_BEFORE, LSTM = 0, 1, 2, 3
SIMPLE_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3}


def cell_support(cell) -> tuple[int | None, int, str]:
    """``(code, activation code, description)``; code None when the cell is not covered."""
    kind = type(cell)  # exact types: a subclass may redefine the step
    if kind is SimpleRNNCell:
        name = _name(cell.activation)
        if name not in SIMPLE_ACTIVATIONS:
            return None, 0, f"SimpleRNNCell activation {name or repr(cell.activation)} has no fused kernel"
        return SIMPLE, SIMPLE_ACTIVATIONS[name], f"SimpleRNNCell({name})"
    if kind in (GRUCell, LSTMCell):
        act, rec = _name(cell.activation), _name(cell.recurrent_activation)
        if (act, rec) != ("tanh", "sigmoid"):
            return None, 0, (
                f"{kind.__name__} activation={act or repr(cell.activation)}, recurrent_activation="
                f"{rec or repr(cell.recurrent_activation)}: the fused kernel covers tanh/sigmoid"
            )
        if kind is LSTMCell:
            return LSTM, 0, "LSTMCell(tanh, sigmoid)"
        code = GRU_AFTER if cell.reset_after else GRU_BEFORE
        return code, 0, f"GRUCell(tanh, sigmoid, reset_after={cell.reset_after})"
    return None, 0, f"custom cell {kind.__name__} has no fused kernel"


def _name(fn):
    for name, f in ACTIVATIONS.items():
        if f is fn:
            return name
    return None


class SequenceFunction(torch.autograd.Function):
    """The recurrence of one cell over a time-major sequence.

    Inputs: ``xw`` (T, B, G) projected inputs with the input bias,
    ``U`` (units, G), ``b_rec`` (G,) or None (GRU reset_after), ``h0``, ``c0``
    (B, units; c0 only for the LSTM), ``mask`` (T, B) bool or None, ``rd``
    (B, units) recurrent-dropout mask or None. Outputs: ``Y`` (T, B, units),
    ``h_T`` and, for the LSTM, ``c_T``.
    """

    @staticmethod
    def forward(ctx, code, act, zero_out, xw, U, b_rec, h0, c0, mask, rd):
        Y, hT, cT, Hs, Cs, gates, rh = _native.forward(code, act, xw, U, b_rec, h0, c0, mask, rd, zero_out, True)
        ctx.meta = (code, act, zero_out, b_rec is not None)
        ctx.save_for_backward(U, h0, c0, mask, rd, Hs, Cs, gates, rh)
        return (Y, hT, cT) if code == LSTM else (Y, hT)

    @staticmethod
    def backward(ctx, dY, dhT, dcT=None):
        if torch.is_grad_enabled():  # create_graph=True: the native backward has no gradient of its own
            raise RuntimeError(
                "rnnkit's native kernel gives first derivatives only; for higher-order gradients run the "
                "layer with unroll=True (the reference loop)"
            )
        code, act, zero_out, has_brec = ctx.meta
        U, h0, c0, mask, rd, Hs, Cs, gates, rh = ctx.saved_tensors
        dxw, dU, db, dh0, dc0 = _native.backward(
            code, act, dY, dhT, dcT, U, has_brec, h0, c0, mask, rd, zero_out, Hs, Cs, gates, rh
        )
        return None, None, None, dxw, dU, db, dh0, dc0, None, None


def onednn_lstm_available() -> bool:
    """torch's own LSTM goes to oneDNN on the CPU when torch was built with it."""
    return torch.backends.mkldnn.is_available()


def run_lstm_onednn(cell, x_tm, state):
    """An unmasked float32 LSTM through ``torch._VF.lstm`` (oneDNN), weights converted on the fly.

    torch's gate order (i, f, g, o) is Keras's (i, f, c, o); torch's weights are
    the transposed kernels and its second bias is zero. Measured faster than
    the native kernel here (benchmarks/bench_rnn.py): oneDNN packs the weights
    once per sequence for its GEMMs.
    """
    h0, c0 = state
    params = [cell.kernel.t(), cell.recurrent_kernel.t()]
    if cell.bias is not None:
        params += [cell.bias, torch.zeros_like(cell.bias)]
    train = torch.is_grad_enabled()
    y, h, c = torch._VF.lstm(x_tm, (h0[None], c0[None]), params, cell.bias is not None, 1, 0.0, train, False, False)
    return y, LSTMState(h[0], c[0])


def run_cell(cell, code, act, x_tm, state, mask_tm, dropout, zero_out):
    """One built-in cell over time-major ``x_tm`` (T, B, in); returns ``(Y (T, B, units), state)``."""
    T, B, F = x_tm.shape
    if dropout is not None and dropout.input is not None:
        x_tm = x_tm * dropout.input
    W = cell.kernel
    b_in = cell.input_bias()
    x2 = x_tm.reshape(T * B, F)
    xw = (x2 @ W if b_in is None else torch.addmm(b_in, x2, W)).view(T, B, -1)
    # The native code reads these as dense row-major arrays.
    b_rec = cell.bias[1].contiguous() if code == GRU_AFTER and cell.bias is not None else None
    rd = None if dropout is None or dropout.recurrent is None else dropout.recurrent.contiguous()
    if code == LSTM:
        h0, c0 = state
    else:
        h0, c0 = state, None
    U = cell.recurrent_kernel
    tensors = (xw, U, b_rec, h0, c0)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        out = SequenceFunction.apply(code, act, zero_out, xw, U, b_rec, h0, c0, mask_tm, rd)
    else:
        out = _native.forward(code, act, xw, U, b_rec, h0, c0, mask_tm, rd, zero_out, False)
    if code == LSTM:
        return out[0], LSTMState(out[1], out[2])
    return out[0], out[1]


class NativeKernel:
    """``kernel(layer, x, state, mask, dropout) -> (outputs, state)`` for ``RNN._run``."""

    def __init__(self, name: str, plan):
        self.name = name
        self.plan = plan  # [(cell, code, act, route)] in stack order; route "native" or "onednn"

    def __call__(self, layer, x, state, mask, dropout):
        stacked = isinstance(layer.cell, StackedRNNCells)
        x_tm = x.transpose(0, 1)
        mask_tm = None if mask is None else mask.t().contiguous()
        states = state if stacked else (state,)
        drops = dropout if stacked else (dropout,)
        if drops is None:
            drops = (None,) * len(self.plan)
        new_states = []
        for (cell, code, act, route), s, d in zip(self.plan, states, drops):
            if route == "onednn":
                x_tm, s = run_lstm_onednn(cell, x_tm, s)
            else:
                x_tm, s = run_cell(cell, code, act, x_tm, s, mask_tm, d, layer.zero_output_for_mask)
            new_states.append(s)
        final = tuple(new_states) if stacked else new_states[0]
        return x_tm.transpose(0, 1), final
