"""The native sequence engine: one autograd Function per sequence and cell.

``rnnkit._native`` (csrc/rnnkit_native.cpp) runs a built-in cell's whole time
loop and its backprop through time. This module wraps it:

* ``SequenceFunction`` is one autograd node per cell and sequence: the native
  forward computes the input projection of every step as one GEMM, then the
  recurrence; the native backward runs backprop through time and returns the
  gradients of the input, both kernels, the biases and the initial state,
  each weight gradient as one product over all steps;
* ``run_torch_rnn`` runs a cell through torch's own fused RNN op instead
  (oneDNN on the CPU, cuDNN on CUDA), weights converted on the fly;
* ``FusedKernel`` applies one of the two per cell, cell by cell for
  ``StackedRNNCells`` (a masked step's intermediate output is discarded by
  the next cell, so running each cell over the whole sequence equals the
  per-step stack); when only the last output is needed (no mask) the last
  cell skips the sequence.
"""

from __future__ import annotations

import torch

from ..cells import GRUCell, LSTMCell, LSTMState, SimpleRNNCell, swap_gru_gates
from ..ops import activation_name
from .autocast import gemm_weights
from .fpmode import run_flushed

try:
    from .. import _native
except ImportError as exc:  # built without a compiler, or a torch ABI mismatch
    _native = None
    IMPORT_ERROR = f"native extension not built: {exc}"
else:
    IMPORT_ERROR = None

# Blocks of at least this many rows multiply each step against the recurrent kernel packed once per
# sequence (MKL's sgemm_pack; csrc "packed weights"); fewer rows call sgemm unpacked. Measured in
# docs/performance.md ("The LSTM on the shapes"): 5-10% faster from 32 rows, slower at 1 row.
PACK_MIN_ROWS = 16

# Blocks of at least DNNL_MIN_ROWS rows ([float32, bfloat16 under autocast]) multiply each step through
# oneDNN's matmul instead, the recurrent kernel reordered once per sequence (csrc "packed weights"), for
# kernels of at least DNNL_MIN_WEIGHTS elements: an LSTM or GRU from 256 units, a SimpleRNN from 512.
# One thread, process CPU time, oneDNN against the MKL / at::mm products (docs/performance.md, "oneDNN's
# matmul per step"): LSTM 256 units 0.55-0.8 at 2-8 rows, 0.9-0.95 at 16-32; 512 units 0.83-0.86 float32
# at 64 rows; slower at 1 row (1.2-1.8: ~16 us per call) and for smaller kernels (1.02-1.14).
DNNL_MIN_ROWS = (2, 2)
DNNL_MIN_WEIGHTS = 1 << 17

# Blocks of at most UKERNEL_MAX_ROWS rows ([float32, bfloat16 under autocast]) multiply each step through
# rnnkit's own AVX-512 kernel (csrc/step_gemm.h: the kernel laid out once per sequence in panels of 16
# columns, register tiles of 6 rows x 64 columns; vdpbf16ps for bfloat16), before oneDNN and MKL, where
# the CPU has AVX-512 (AVX512-BF16). One thread, us per LSTM product h @ U against the best of oneDNN and
# MKL packed (docs/performance.md, "An AVX-512 kernel for the step's product"): float32 0.48 at 1 row and
# 256 units, 0.64-0.87 at 8-128 rows; bfloat16 0.23-0.83. Faster at every shape measured: on for all rows.
UKERNEL_MAX_ROWS = (1 << 62, 1 << 62)
_ukernel_rows = UKERNEL_MAX_ROWS  # the setting in force (set_ukernel_products)

# A call whose step is below SERIAL_WORK multiply-adds (batch * units * gates * units) runs on the calling
# thread alone (set_serial_work). Measured forward + backward, 50 steps, split against serial, idle 2-core
# AMD EPYC, 2026-11-29 (benchmarks/load_sweep_quiet.json): serial wins or ties up to 2^17 (GRU B8 H64 98K:
# 1.30 / 1.32 ms, LSTM B8 H64 131K: 1.06 / 1.01), the split wins from 2^18 (LSTM B1 H256 262K: 2.46 / 1.78,
# GRU B32 H64 393K: 3.47 / 3.04, LSTM B32 H256 8.4M: 33.1 / 18.2). On a machine busy with other processes
# one thread won at every size (2^22 was the first default): there, torch.set_num_threads(1) or a larger
# set_serial_work; fit/evaluate/predict scope small models to one thread themselves (threads.py).
SERIAL_WORK = 1 << 17
_serial_work = SERIAL_WORK  # the setting in force (set_serial_work)
if _native is not None:
    _native.set_serial_work(SERIAL_WORK)
    _native.set_ukernel_max_rows(False, UKERNEL_MAX_ROWS[0])
    _native.set_ukernel_max_rows(True, UKERNEL_MAX_ROWS[1])
    _native.set_pack_min_rows(PACK_MIN_ROWS)
    _native.set_dnnl_min_rows(False, DNNL_MIN_ROWS[0])
    _native.set_dnnl_min_rows(True, DNNL_MIN_ROWS[1])
    _native.set_dnnl_min_weights(DNNL_MIN_WEIGHTS)
_UKERNEL_F32 = _native is not None and _native.ukernel_available(False)  # the CPU does not change

# Codes shared with csrc/rnnkit_native.cpp.
SIMPLE, GRU_AFTER, GRU_BEFORE, LSTM = 0, 1, 2, 3
SIMPLE_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3}


def cell_support(cell) -> tuple[int | None, int, str]:
    """``(code, activation code, description)``; code None when the cell is not covered."""
    kind = type(cell)  # exact types: a subclass may redefine the step
    if kind is SimpleRNNCell:
        name = activation_name(cell.activation)
        if name not in SIMPLE_ACTIVATIONS:
            return None, 0, f"SimpleRNNCell activation {name or repr(cell.activation)} has no fused kernel"
        return SIMPLE, SIMPLE_ACTIVATIONS[name], f"SimpleRNNCell({name})"
    if kind in (GRUCell, LSTMCell):
        act, rec = activation_name(cell.activation), activation_name(cell.recurrent_activation)
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


class SequenceFunction(torch.autograd.Function):
    """One cell over a whole time-major sequence: input projection and recurrence.

    Inputs: ``x`` (T, B, F) (a transposed view is fine), ``W`` (F, G),
    ``b_in`` (G,) or None, ``U`` (units, G), ``b_rec`` (G,) or None (GRU
    reset_after), ``h0``, ``c0`` (B, units; c0 only for the LSTM), ``mask``
    (T, B) bool or None, ``rd`` (B, units) recurrent-dropout mask or None.
    Outputs: ``Y`` (T, B, units) when ``need_y``, then ``h_T`` and, for the
    LSTM, ``c_T``. Without ``need_y`` the sequence of outputs is never
    materialized for autograd, so backward gets no (T, B, units) zeros for it.
    """

    @staticmethod
    def forward(ctx, code, act, zero_out, need_y, x, W, b_in, U, b_rec, h0, c0, mask, rd):
        Y, hT, cT, X, Hs, Cs, gates, rh = _native.forward(
            code, act, x, W, b_in, U, b_rec, h0, c0, mask, rd, zero_out, True, need_y
        )
        ctx.meta = (code, act, zero_out, b_in is not None, b_rec is not None, need_y)
        ctx.save_for_backward(X, W, U, h0, c0, mask, rd, Hs, Cs, gates, rh)
        # Unused outputs get None in backward instead of a zero tensor (the native code skips them).
        ctx.set_materialize_grads(False)
        outs = (hT, cT) if code == LSTM else (hT,)
        return (Y, *outs) if need_y else outs

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: the native backward has no gradient of its own
            raise RuntimeError(
                "rnnkit's native kernel gives first derivatives only; for higher-order gradients run the "
                "layer with unroll=True (the reference loop)"
            )
        code, act, zero_out, has_bin, has_brec, need_y = ctx.meta
        dY, *grads = grads if need_y else (None, *grads)
        dhT, dcT = grads if code == LSTM else (grads[0], None)
        X, W, U, h0, c0, mask, rd, Hs, Cs, gates, rh = ctx.saved_tensors
        need_dx = ctx.needs_input_grad[4]
        dx, dW, db_in, dU, db_rec, dh0, dc0 = _native.backward(
            code, act, dY, dhT, dcT, X, W, U, has_bin, has_brec, need_dx, h0, c0, mask, rd, zero_out, Hs, Cs,
            gates, rh,
        )
        return None, None, None, None, dx, dW, db_in, dU, db_rec, dh0, dc0, None, None


def set_serial_work(work: int) -> int:
    """Run native calls below ``work`` multiply-adds per step on one thread; returns the previous threshold.

    A step's work is its recurrent product, ``batch * units * G`` with ``G =
    gates * units`` (1, 3 or 4 gates). Below the threshold a call runs on the
    calling thread alone (no fan-out per step, MKL on one thread): splitting
    such small steps gains little on an idle machine and, when other processes
    keep the cores busy, every per-step barrier waits for the scheduler
    (docs/performance.md, "Small work"). ``0`` always splits when torch has
    threads; a huge value never does.

    >>> previous = set_serial_work(0)
    >>> _ = set_serial_work(previous)
    """
    if isinstance(work, bool) or not isinstance(work, int) or work < 0:
        raise ValueError(f"work: expected an integer >= 0 (multiply-adds per step), got {work!r}")
    global _serial_work
    _serial_work = work
    return _native.set_serial_work(work)


def serial_work() -> int:
    """The threshold ``set_serial_work`` sets: multiply-adds per step below which a call runs on one thread.

    Read from the last setting (asked for every call's ``explain`` note; reading the C++ value would mean
    swapping it out and back, which a call on another thread could see).
    """
    return _serial_work


def set_dnnl_products(min_rows: tuple[int, int], min_weights: int) -> tuple[tuple[int, int], int]:
    """Where the per-step products run through oneDNN's matmul; returns the previous ``(min_rows, min_weights)``.

    ``min_rows``: ``(float32, bfloat16)``, the fewest rows per block (the
    batch, or a thread's share of it) that use it; ``min_weights``: the
    fewest elements of the recurrent kernel (``units * G``). Smaller products
    use MKL's packed sgemm (or ``at::mm`` in bfloat16). Defaults:
    ``DNNL_MIN_ROWS``, ``DNNL_MIN_WEIGHTS``; a huge ``min_rows`` turns it off.
    Where torch has no oneDNN (``dnnl_available()`` false) it never runs.

    >>> previous = set_dnnl_products((1, 1), 0)  # every product through oneDNN
    >>> _ = set_dnnl_products(*previous)
    """
    ok = isinstance(min_rows, tuple) and len(min_rows) == 2
    if not ok or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in min_rows):
        raise ValueError(f"min_rows: expected a (float32, bfloat16) pair of integers >= 1, got {min_rows!r}")
    if isinstance(min_weights, bool) or not isinstance(min_weights, int) or min_weights < 0:
        raise ValueError(f"min_weights: expected an integer >= 0 (elements), got {min_weights!r}")
    rows = (_native.set_dnnl_min_rows(False, min_rows[0]), _native.set_dnnl_min_rows(True, min_rows[1]))
    return rows, _native.set_dnnl_min_weights(min_weights)


def set_ukernel_products(max_rows: tuple[int, int]) -> tuple[int, int]:
    """Where the per-step products run through rnnkit's AVX-512 kernel; returns the previous ``max_rows``.

    ``max_rows``: ``(float32, bfloat16)``, the most rows per block (the
    batch, or a thread's share of it) that use it; 0 turns it off (then
    ``set_dnnl_products`` and MKL decide). Default ``UKERNEL_MAX_ROWS``.
    Where the CPU lacks AVX-512 (``ukernel_available()`` false) it never runs.

    >>> previous = set_ukernel_products((0, 0))  # oneDNN / MKL only
    >>> _ = set_ukernel_products(previous)
    """
    ok = isinstance(max_rows, tuple) and len(max_rows) == 2
    if not ok or any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in max_rows):
        raise ValueError(f"max_rows: expected a (float32, bfloat16) pair of integers >= 0, got {max_rows!r}")
    global _ukernel_rows
    _ukernel_rows = max_rows
    return _native.set_ukernel_max_rows(False, max_rows[0]), _native.set_ukernel_max_rows(True, max_rows[1])


def ukernel_available(bf16: bool = False) -> bool:
    """Whether rnnkit's AVX-512 product kernel runs on this CPU (``bf16``: its AVX512-BF16 version)."""
    return _native is not None and _native.ukernel_available(bf16)


def ukernel_on() -> bool:
    """Whether float32 products run through the AVX-512 kernel: the CPU has it and ``set_ukernel_products`` left it on.

    Read from the last setting, not from the extension (asked on every LSTM call; reading the C++ value would
    mean swapping it out and back, which a call on another thread could see).
    """
    return _UKERNEL_F32 and _ukernel_rows[0] > 0


def dnnl_available() -> bool:
    """Whether torch's oneDNN linear operators are there and enabled (``torch.backends.mkldnn``)."""
    return _native.dnnl_available()


def runs_serial(code: int, batch: int, units: int) -> bool:
    """Whether a native call of cell ``code`` at ``batch`` rows and ``units`` runs on the calling thread alone."""
    return _native.runs_serial(code, batch, units)


def onednn_lstm_available() -> bool:
    """torch's own LSTM goes to oneDNN on the CPU when torch was built with it."""
    return torch.backends.mkldnn.is_available()


def run_torch_rnn(cell, code, act, x_tm, state):
    """A built-in cell through torch's own fused RNN op, weights converted on the fly.

    That op is oneDNN for the CPU LSTM and cuDNN on CUDA. torch's weights are
    the transposed kernels. Gates: the LSTM's (i, f, c, o) is torch's
    (i, f, g, o); the GRU's (z, r, h) becomes (r, z, n), and only
    ``reset_after=True`` has torch's form (its (input, recurrent) bias rows are
    ``b_ih``, ``b_hh``). Elsewhere Keras's one bias is ``b_ih`` and ``b_hh = 0``.
    Returns ``(Y (T, B, units), state)`` like ``run_cell``.
    """
    train = torch.is_grad_enabled()
    has_bias = cell.bias is not None
    if code == GRU_AFTER:
        params = [swap_gru_gates(cell.kernel).t(), swap_gru_gates(cell.recurrent_kernel).t()]
        if has_bias:
            params += [swap_gru_gates(cell.bias[0]), swap_gru_gates(cell.bias[1])]
        y, h = torch._VF.gru(x_tm, state[None], params, has_bias, 1, 0.0, train, False, False)
        return y, h[0]
    params = [cell.kernel.t(), cell.recurrent_kernel.t()]
    if has_bias:
        params += [cell.bias, torch.zeros_like(cell.bias)]
    if code == LSTM:
        h0, c0 = state
        y, h, c = torch._VF.lstm(x_tm, (h0[None], c0[None]), params, has_bias, 1, 0.0, train, False, False)
        return y, LSTMState(h[0], c[0])
    op = torch._VF.rnn_tanh if act == SIMPLE_ACTIVATIONS["tanh"] else torch._VF.rnn_relu
    y, h = op(x_tm, state[None], params, has_bias, 1, 0.0, train, False, False)
    return y, h[0]


def run_cell(cell, code, act, x_tm, state, mask_tm, dropout, zero_out, need_y=True):
    """One built-in cell over time-major ``x_tm`` (T, B, in).

    Returns ``(Y (T, B, units), state)``; ``Y`` is None when ``need_y`` is
    false (no mask: the caller wants only the last output, which is ``h_T``).
    """
    if dropout is not None and dropout.input is not None:
        x_tm = x_tm * dropout.input
    W, U = gemm_weights(cell, x_tm)  # bfloat16 copies under CPU autocast
    b_in = cell.input_bias()
    # The native code reads these as dense row-major arrays.
    b_rec = cell.bias[1].contiguous() if code == GRU_AFTER and cell.bias is not None else None
    rd = None if dropout is None or dropout.recurrent is None else dropout.recurrent.contiguous()
    h0, c0 = state if code == LSTM else (state, None)
    tensors = (x_tm, W, b_in, U, b_rec, h0, c0)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        out = SequenceFunction.apply(code, act, zero_out, need_y, x_tm, W, b_in, U, b_rec, h0, c0, mask_tm, rd)
        if not need_y:
            out = (None, *out)
    else:
        out = _native.forward(code, act, x_tm, W, b_in, U, b_rec, h0, c0, mask_tm, rd, zero_out, False, need_y)
    if code == LSTM:
        return out[0], LSTMState(out[1], out[2])
    return out[0], out[1]


class FusedKernel:
    """A fused run of a cell (or a stack) over a whole sequence, in place of ``RNN``'s loop.

    ``plan``: ``[(cell, code, act, route)]`` in stack order, route "native",
    "onednn" or "cudnn"; ``stacked``: the plan is a ``StackedRNNCells``
    (states and dropout masks are then tuples, one per cell). Call::

        outputs, state = kernel(x, state, mask, dropout, zero_output_for_mask, need_sequences)

    with ``x`` (batch, time, features), ``mask`` (batch, time) bool or None
    and ``dropout`` the cell's dropout masks or None. ``outputs`` is
    (batch, time, units), or (batch, 1, units) holding the last step when
    ``need_sequences`` is false and there is no mask.
    """

    def __init__(self, name: str, plan, stacked: bool):
        self.name = name
        self.plan = plan
        self.stacked = stacked

    def __call__(self, x, state, mask, dropout, zero_output_for_mask: bool = False, need_sequences: bool = True):
        x_tm = x.transpose(0, 1)
        mask_tm = None if mask is None else mask.t().contiguous()
        states = state if self.stacked else (state,)
        drops = dropout if self.stacked else (dropout,)
        if drops is None:
            drops = (None,) * len(self.plan)
        # Only the last output wanted and no mask: that output is the last cell's h_T, so the
        # last cell skips the output sequence (and its backward the zeros autograd would send).
        last_only = not need_sequences and mask is None
        new_states = []
        for k, ((cell, code, act, route), s, d) in enumerate(zip(self.plan, states, drops)):
            if route == "onednn":  # subnormals flushed on torch's threads, forward and backward
                x_tm, s = run_flushed(run_torch_rnn, cell, code, act, x_tm, s)
            elif route == "cudnn":
                x_tm, s = run_torch_rnn(cell, code, act, x_tm, s)
            else:
                need_y = not (last_only and k == len(self.plan) - 1)
                x_tm, s = run_cell(cell, code, act, x_tm, s, mask_tm, d, zero_output_for_mask, need_y)
                if x_tm is None:
                    x_tm = (s.h if code == LSTM else s)[None]  # (1, B, units): the last step
            new_states.append(s)
        final = tuple(new_states) if self.stacked else new_states[0]
        return x_tm.transpose(0, 1), final
