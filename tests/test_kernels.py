"""The fused native kernels give the reference loop's numbers, forward and every gradient.

Each fast path runs against the same layer with ``unroll=True`` (the readable
loop, ``rnnkit.reference_loop``): float64 to 1e-10, float32 to ~1e-5, over
random shapes, masks with left padding, holes and zero-length rows,
go_backwards, initial states, stacks, Bidirectional and dropout masks.
``gradcheck`` checks the autograd Function itself in float64.
"""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit import kernels
from rnnkit.cells import DropoutMasks
from rnnkit.kernels import Stepper, native, native_available, select, torch_route
from rnnkit.rnn import RNN, explain, tree_flatten

BUILT, WHY_NOT = native_available()
needs_native = pytest.mark.skipif(not BUILT, reason=f"{WHY_NOT} (the reference loop runs instead)")

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=2e-5)}

CELLS = {
    "simple_tanh": lambda u: rk.SimpleRNNCell(u),
    "simple_relu": lambda u: rk.SimpleRNNCell(u, activation="relu"),
    "simple_sigmoid": lambda u: rk.SimpleRNNCell(u, activation="sigmoid"),
    "simple_linear_nobias": lambda u: rk.SimpleRNNCell(u, activation=None, use_bias=False),
    "gru_after": lambda u: rk.GRUCell(u, bias_initializer="random_uniform"),
    "gru_before": lambda u: rk.GRUCell(u, reset_after=False, bias_initializer="random_uniform"),
    "gru_nobias": lambda u: rk.GRUCell(u, use_bias=False),
    "lstm": lambda u: rk.LSTMCell(u, bias_initializer="random_uniform"),
    "lstm_nobias": lambda u: rk.LSTMCell(u, use_bias=False),
}


def hard_mask(batch: int, time: int, rng: np.random.Generator) -> torch.Tensor:
    """Random holes, plus one left-padded row, one zero-length row, one full row."""
    m = rng.random((batch, time)) > 0.35
    m[0] = True
    if batch > 1:
        m[1] = False  # zero length
    if batch > 2:
        m[2, : time // 2] = False  # left padding
        m[2, time // 2 :] = True
    return torch.from_numpy(m)


def run_both(layer, x, training=False, seed=0, **call):
    """Outputs and gradients of the fused path and of the reference loop on the same inputs."""
    results = []
    for unroll in (True, False):  # the fused run last, so kernel_used names it afterwards
        for sub in layer.modules():
            if isinstance(sub, RNN):
                sub.unroll = unroll
        xi = x.detach().clone().requires_grad_(True)
        init = call.get("initial_state")
        init = None if init is None else [s.detach().clone().requires_grad_(True) for s in init]
        torch.manual_seed(seed)  # the same dropout masks on both runs
        kw = {**call, "initial_state": init}
        out = layer(xi, training=training, **kw)
        outs = rk.rnn.tree_flatten(out)  # stacked cells nest their states per cell (Keras 3)
        weights = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, generator=weights, dtype=o.dtype)).sum() for o in outs)
        wrt = [xi, *(init or []), *layer.parameters()]
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        results.append((outs, grads))
        kernels = {sub.kernel_used for sub in layer.modules() if isinstance(sub, RNN)}
        assert ("reference" not in kernels) != unroll, kernels
    return results[::-1]  # (fused, reference)


def assert_same(results, dtype):
    (fast_out, fast_grads), (ref_out, ref_grads) = results
    assert len(fast_out) == len(ref_out)
    for a, b in zip(fast_out, ref_out):
        torch.testing.assert_close(a, b, **TOL[dtype])
    for i, (a, b) in enumerate(zip(fast_grads, ref_grads)):
        if b is None:
            assert a is None or not a.any(), f"gradient {i}: the reference has none"
            continue
        torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m, i=i: f"gradient {i}: {m}")


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_matches_reference(name, dtype):
    rng = np.random.default_rng(hash(name) % 2**32)
    for case in range(4):  # plain, masked, backwards + zero outputs, initial state + masked
        batch, time, features, units = (int(v) for v in rng.integers([3, 1, 1, 1], [7, 9, 6, 9]))
        torch.manual_seed(case)
        cell = CELLS[name](units)
        layer = RNN(cell, return_sequences=True, return_state=True, go_backwards=case == 2,
                    zero_output_for_mask=case == 2, input_shape=(time, features)).to(dtype)
        x = torch.randn(batch, time, features, dtype=dtype)
        mask = hard_mask(batch, time, rng) if case else None
        init = None
        if case == 3:
            init = [torch.randn(s.shape, dtype=dtype) for s in tree_flatten(cell.get_initial_state(batch))]
        assert_same(run_both(layer, x, mask=mask, initial_state=init), dtype)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["simple_tanh", "gru_after", "gru_before", "lstm"])
def test_last_output_only(name, dtype):
    """return_sequences=False: unmasked, the last cell skips its output sequence (h_T is the output)."""
    rng = np.random.default_rng(7)
    for masked in (False, True):
        for stacked in (False, True):
            for return_state in (False, True):
                torch.manual_seed(int(rng.integers(1000)))
                cell = [CELLS[name](3), CELLS[name](4)] if stacked else CELLS[name](4)
                layer = RNN(cell, return_state=return_state, input_shape=(6, 3)).to(dtype)
                x = torch.randn(5, 6, 3, dtype=dtype)
                mask = hard_mask(5, 6, rng) if masked else None
                assert_same(run_both(layer, x, mask=mask), dtype)


@needs_native
def test_unmasked_float32_lstm_routes(monkeypatch, onednn_lstm_route):
    """Without the AVX-512 step products: torch's oneDNN LSTM where it applies, else the native kernel; both match
    the loop."""
    for onednn in (True, False):
        monkeypatch.setattr(native, "onednn_lstm_available", lambda onednn=onednn: onednn)
        torch.manual_seed(0)
        layer = rk.LSTM(5, return_sequences=True, return_state=True, input_shape=(20, 3))
        init = [torch.randn(4, 5), torch.randn(4, 5)]
        assert_same(run_both(layer, torch.randn(4, 20, 3), initial_state=init), torch.float32)
        assert layer.kernel_used == ("torch-onednn:LSTMCell" if onednn else "native:LSTMCell")
        layer(torch.randn(4, 3, 3))  # short sequences: oneDNN's per-call setup costs more than it saves
        assert layer.kernel_used == "native:LSTMCell"


@needs_native
@pytest.mark.skipif(not BUILT or not native.ukernel_available(), reason="a CPU without AVX-512")
@pytest.mark.parametrize("grad", [True, False], ids=["train", "infer"])
def test_avx512_step_products_take_the_unmasked_lstm(grad):
    """With rnnkit's AVX-512 step products the native kernel beat oneDNN's LSTM on every shape measured, so an
    unmasked float32 LSTM runs it, training and inference, and says why; it matches the loop."""
    torch.manual_seed(0)
    layer = rk.LSTM(6, return_sequences=True, input_shape=(40, 3))
    x = torch.randn(5, 40, 3)
    with torch.set_grad_enabled(grad):
        layer(x)
    assert layer.kernel_used == "native:LSTMCell"
    assert "AVX-512 step products: faster than oneDNN's LSTM" in layer.kernel_reason
    assert_same(run_both(layer, x), torch.float32)


@needs_native
def test_long_training_lstm_runs_native(onednn_lstm_route):
    """Without the AVX-512 step products: training >= NATIVE_TRAIN_MIN_STEPS steps at batch >= NATIVE_TRAIN_MIN_BATCH
    runs the native kernel (measured faster there than oneDNN's); the same call without grad stays on oneDNN. Both
    match the loop."""
    torch.manual_seed(0)
    steps, batch = kernels.NATIVE_TRAIN_MIN_STEPS, kernels.NATIVE_TRAIN_MIN_BATCH
    layer = rk.LSTM(5, return_sequences=True, input_shape=(steps, 3))
    x = torch.randn(batch, steps, 3)
    assert_same(run_both(layer, x), torch.float32)
    assert layer.kernel_used == "native:LSTMCell"
    assert "faster than oneDNN's LSTM" in layer.kernel_reason
    with torch.no_grad():
        layer(x)
    assert layer.kernel_used == "torch-onednn:LSTMCell"
    layer(x[: batch - 1])  # a narrower batch trains on oneDNN
    assert layer.kernel_used == "torch-onednn:LSTMCell"


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_stack_with_dropout_and_mask(dtype):
    rng = np.random.default_rng(7)
    cells = [
        rk.GRUCell(5, dropout=0.3, recurrent_dropout=0.4),
        rk.LSTMCell(4, recurrent_dropout=0.5),
        rk.GRUCell(3, reset_after=False, dropout=0.2, recurrent_dropout=0.3),
        rk.SimpleRNNCell(6, dropout=0.25, recurrent_dropout=0.25),
    ]
    layer = RNN(cells, return_sequences=True, return_state=True, input_shape=(7, 3)).to(dtype)
    x = torch.randn(6, 7, 3, dtype=dtype)
    results = run_both(layer, x, training=True, mask=hard_mask(6, 7, rng))
    assert_same(results, dtype)
    assert layer.kernel_used == "native:GRUCell+native:LSTMCell+native:GRUCell+native:SimpleRNNCell"


@needs_native
@contextlib.contextmanager
def split_over(threads: int):
    """torch on ``threads`` threads, and the native calls split over them however small their steps (on one
    thread, as they are); both settings come back afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    work = native.set_serial_work(0 if threads > 1 else native.serial_work())
    try:
        yield
    finally:
        torch.set_num_threads(saved)
        native.set_serial_work(work)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked+dropout"])
def test_row_blocks_per_thread(dtype, masked):
    """Batches of 32+ rows per thread run the time loop per row block, one block per thread."""
    rng = np.random.default_rng(11)
    with split_over(3):  # 75 rows: blocks of 25 < 32 rows, so 2 blocks (37 and 38 rows)
        drop = dict(dropout=0.2, recurrent_dropout=0.3) if masked else {}
        cells = [
            rk.GRUCell(6, bias_initializer="random_uniform", **drop),
            rk.LSTMCell(5, **drop),
            rk.GRUCell(4, reset_after=False, bias_initializer="random_uniform", **drop),
            rk.SimpleRNNCell(7, **drop),
        ]
        layer = RNN(cells, return_sequences=True, return_state=True, input_shape=(6, 3)).to(dtype)
        x = torch.randn(75, 6, 3, dtype=dtype)
        init = [torch.randn(s.shape, dtype=dtype) for s in tree_flatten(layer.cell.get_initial_state(75))]
        mask = hard_mask(75, 6, rng) if masked else None
        assert_same(run_both(layer, x, training=masked, mask=mask, initial_state=init), dtype)


@needs_native
@pytest.mark.parametrize("merge_mode", ["concat", "ave"])
def test_bidirectional(merge_mode):
    rng = np.random.default_rng(3)
    layer = rk.Bidirectional(rk.LSTM(4, return_sequences=True, return_state=True), merge_mode=merge_mode,
                             input_shape=(6, 3)).double()
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    assert_same(run_both(layer, x, mask=hard_mask(5, 6, rng)), torch.float64)
    assert "native:LSTMCell" in explain(layer)


@needs_native
def test_lengths_and_stateful_layers():
    layer = rk.GRU(4, stateful=True, return_sequences=True, input_shape=(5, 3)).double()
    ref = rk.GRU(4, stateful=True, return_sequences=True, unroll=True, input_shape=(5, 3)).double()
    ref.set_weights(layer.get_weights())
    for _ in range(2):  # the carried state goes through the kernel
        x = torch.randn(3, 5, 3, dtype=torch.float64)
        lengths = [5, 2, 0]
        torch.testing.assert_close(layer(x, lengths=lengths), ref(x, lengths=lengths), **TOL[torch.float64])


@needs_native
@pytest.mark.parametrize("activation,bound", [("tanh", 5e-7), ("sigmoid", 3e-7)])
def test_float32_activations_against_float64(activation, bound):
    """The native float32 tanh (rational) and sigmoid (exp-based): relative error against float64."""
    mags = torch.logspace(-8, 1.5, 100_000, dtype=torch.float64)
    xs = torch.cat([mags, -mags, torch.linspace(-30, 30, 100_001, dtype=torch.float64)]).float()
    n = xs.numel()
    # One SimpleRNN step with W = 1, U = 0, no bias: h = act(x), one row per value.
    code, act = native.SIMPLE, native.SIMPLE_ACTIVATIONS[activation]
    _, h, _ = native._native.forward(
        code, act, xs.reshape(1, n, 1), torch.ones(1, 1), None, torch.zeros(1, 1), None, torch.zeros(n, 1),
        None, None, None, False, False, False,
    )
    ref = getattr(torch, activation)(xs.double())
    rel = (h[:, 0].double() - ref).abs() / ref.abs().clamp_min(1e-30)
    assert rel.max().item() < bound
    assert torch.equal(h[:, 0].abs() <= 1, torch.ones(n, dtype=torch.bool))  # never outside the range


# ------------------------------------------------------------ the Function


def _function_inputs(code, mask_on, dropout_on):
    g = torch.Generator().manual_seed(code)
    T, B, F, U = 4, 3, 2, 3
    gates = {native.SIMPLE: 1, native.GRU_AFTER: 3, native.GRU_BEFORE: 3, native.LSTM: 4}[code]

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)

    # x batch-major, as the layer holds it; the Function sees its time-major view.
    x, W, b_in = rnd(B, T, F), rnd(F, gates * U), rnd(gates * U)
    Ur, h0 = rnd(U, gates * U, scale=0.5), rnd(B, U)
    b_rec = rnd(gates * U) if code == native.GRU_AFTER else None
    c0 = rnd(B, U) if code == native.LSTM else None
    mask = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 0, 0], [1, 0, 1]], dtype=torch.bool) if mask_on else None
    rd = (torch.rand(B, U, generator=g, dtype=torch.float64) > 0.3).double() / 0.7 if dropout_on else None
    return (x, W, b_in, Ur, b_rec, h0, c0), mask, rd


@needs_native
@pytest.mark.parametrize("code", [native.SIMPLE, native.GRU_AFTER, native.GRU_BEFORE, native.LSTM])
@pytest.mark.parametrize(
    "mask_on,dropout_on,zero_out,need_y",
    [(False, False, False, True), (False, False, False, False), (True, True, False, True), (True, False, True, True)],
)
def test_gradcheck_sequence_function(code, mask_on, dropout_on, zero_out, need_y):
    inputs, mask, rd = _function_inputs(code, mask_on, dropout_on)
    act = 0  # tanh

    def f(x, W, b_in, Ur, b_rec, h0, c0):
        return native.SequenceFunction.apply(
            code, act, zero_out, need_y, x.transpose(0, 1), W, b_in, Ur, b_rec, h0, c0, mask, rd
        )

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7)


@needs_native
def test_sequence_function_without_bias_and_unused_outputs():
    """No input bias, and only h_T used (the others get None in backward, not zeros)."""
    (x, W, _, Ur, _, h0, _), _, _ = _function_inputs(native.SIMPLE, False, False)

    def f(x, W, Ur, h0):
        Y, hT = native.SequenceFunction.apply(0, 0, False, True, x.transpose(0, 1), W, None, Ur, None, h0, None, None, None)
        return hT

    assert torch.autograd.gradcheck(f, (x, W, Ur, h0), eps=1e-6, atol=1e-7)


@needs_native
def test_second_derivatives_raise_instead_of_being_wrong():
    layer = rk.GRU(3, input_shape=(4, 2)).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="first derivatives only.*unroll=True"):
        torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    layer.unroll = True  # the reference loop has second derivatives
    (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    g.sum().backward()


@needs_native
def test_inference_path_skips_saving_and_matches():
    layer = rk.LSTM(5, return_sequences=True, input_shape=(6, 3)).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    with torch.no_grad():
        fast = layer(x)
        layer.unroll = True
        ref = layer(x)
    torch.testing.assert_close(fast, ref, **TOL[torch.float64])


@needs_native
def test_saved_memory_is_linear_in_steps(monkeypatch):
    monkeypatch.setattr(native, "onednn_lstm_available", lambda: False)  # the native kernel's own memory
    layer = rk.LSTM(8)
    saved = {}
    for steps in (50, 100, 150):
        seen = {}

        def pack(t, seen=seen):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(torch.randn(2, steps, 3))
        saved[steps] = sum(seen.values())
    # Equal steps added, equal bytes added: linear in steps (plus constants: weights, h0).
    assert saved[150] - saved[100] == pytest.approx(saved[100] - saved[50], rel=0.01)


# ---------------------------------------------------------- stepper


@needs_native
@pytest.mark.parametrize("name", ["lstm", "lstm_nobias", "gru_after", "gru_nobias", "gru_before", "simple_relu"])
def test_stepper_matches_cell(name):
    # units: a partial register tile; full tiles and a tail; weights large enough to split over threads.
    # batch 9 takes the sequence kernel instead of the small-batch step.
    for dtype in (torch.float64, torch.float32):
        for units, batch in ((6, 2), (70, 1), (200, 3), (7, 9)):
            torch.manual_seed(units)
            cell = CELLS[name](units)
            cell.build((4,))
            cell.to(dtype)
            step = Stepper(rk.RNN(cell))
            assert step.kernel_used == "native"
            s_fast = s_ref = step.initial_state(batch)
            s_fast = s_ref = tree_flatten(s_fast)[0] if not name.startswith("lstm") else s_fast
            for _ in range(3):
                x = torch.randn(batch, 4, dtype=dtype)
                y_fast, s_fast = step(x, s_fast)
                with torch.no_grad():
                    y_ref, s_ref = cell(x, s_ref)
                torch.testing.assert_close(y_fast, y_ref, **TOL[dtype])
                for a, b in zip(tree_flatten(s_fast), tree_flatten(s_ref)):
                    torch.testing.assert_close(a, b, **TOL[dtype])


def test_stepper_falls_back_for_custom_activation():
    cell = rk.SimpleRNNCell(3, activation=lambda v: torch.sin(v), input_size=2)
    step = Stepper(cell)
    assert step.kernel_used == "reference" and "activation" in step.kernel_reason
    y, h = step(torch.ones(1, 2), cell.get_initial_state(1))
    torch.testing.assert_close(y, cell(torch.ones(1, 2), cell.get_initial_state(1))[0])


# ---------------------------------------------------------- never silent


class DoubledTanhCell(rk.SimpleRNNCell):
    """A subclass with its own step: the fused kernel must not run it."""

    def step(self, xw_t, h, dropout=None):
        h = torch.tanh(2 * (xw_t + h @ self.recurrent_kernel))
        return h, h


def test_custom_cell_and_activation_fall_back_with_reason():
    x = torch.randn(2, 3, 4)
    custom = RNN(DoubledTanhCell(3))
    custom(x)
    assert custom.kernel_used == "reference"
    assert "custom cell DoubledTanhCell" in custom.kernel_reason
    act = rk.SimpleRNN(3, activation=lambda v: torch.sin(v))
    act(x)
    assert act.kernel_used == "reference" and "activation" in act.kernel_reason
    gated = rk.LSTM(3, recurrent_activation="hard_sigmoid")
    gated(x)
    assert gated.kernel_used == "reference" and "hard_sigmoid" in gated.kernel_reason
    unrolled = rk.GRU(3, unroll=True)
    unrolled(x)
    assert unrolled.kernel_reason.startswith("unroll=True")
    model = rk.Sequential([RNN(DoubledTanhCell(3), return_sequences=True), rk.SimpleRNN(2, activation=torch.sin)])
    model(x)
    text = explain(model)
    assert "reference (custom cell DoubledTanhCell has no fused kernel)" in text
    assert "SimpleRNNCell activation <built-in method sin" in text


def test_missing_extension_is_reported(monkeypatch):
    monkeypatch.setattr(native, "IMPORT_ERROR", "native extension not built: no compiler")
    layer = rk.LSTM(3)
    out = layer(torch.randn(2, 3, 4))
    assert out.shape == (2, 3)
    assert layer.kernel_used == "reference"
    assert layer.kernel_reason == "native extension not built: no compiler"
    assert "native extension not built" in explain(layer)


@needs_native
def test_explain_and_debug_log(caplog, onednn_lstm_route):
    assert "not run yet; would use a fused kernel on CPU (LSTMCell(tanh, sigmoid))" in explain(rk.LSTM(4))
    assert "would use reference (unroll=True" in explain(rk.LSTM(4, unroll=True))
    assert explain(rk.Dense(3)) == "Dense: no recurrent layers"
    model = rk.Sequential([rk.LSTM(4, return_sequences=True, input_shape=(20, 3)), rk.GRU(2), rk.Dense(1)])
    with caplog.at_level(logging.DEBUG, logger="rnnkit.kernels"):
        model(torch.randn(2, 20, 3))
    text = explain(model)
    assert "native:GRUCell (fused native kernel: GRUCell(tanh, sigmoid, reset_after=True), torch.float32; one thread" in text
    assert "torch-onednn:LSTMCell (torch's oneDNN LSTM" in text
    assert any("native:GRUCell" in r.getMessage() for r in caplog.records)
    model(torch.randn(2, 20, 3), mask=torch.ones(2, 20, dtype=torch.bool))  # a mask: the native LSTM kernel
    assert "native:LSTMCell (fused native kernel: LSTMCell(tanh, sigmoid), torch.float32; one thread" in explain(model)


@pytest.mark.parametrize("name", ["lstm", "lstm_nobias", "gru_after", "gru_nobias", "simple_tanh", "simple_relu"])
def test_torch_route_matches_reference(name, monkeypatch):
    """CUDA's route (torch's fused RNN op, cuDNN there), checked on the CPU, where the same op runs:
    the weight and gate-order conversion gives the reference loop's outputs and every gradient."""
    monkeypatch.setattr(kernels, "select", lambda cell, x, mask, dropout, label: torch_route(cell, x, mask, dropout))
    for stacked in (False, True):
        torch.manual_seed(int(stacked))
        cell = [CELLS[name](3), CELLS[name](4)] if stacked else CELLS[name](4)
        layer = RNN(cell, return_sequences=True, return_state=True, go_backwards=stacked, input_shape=(5, 3)).double()
        x = torch.randn(4, 5, 3, dtype=torch.float64)
        init = [torch.randn(s.shape, dtype=torch.float64) for s in tree_flatten(layer.cell.get_initial_state(4))]
        assert_same(run_both(layer, x, initial_state=init), torch.float64)
        assert layer.kernel_used.startswith("torch-cudnn:"), layer.kernel_used


def test_torch_route_says_what_it_cannot_cover():
    x = torch.randn(2, 3, 2)
    for cell, expected in (
        (rk.GRUCell(3, reset_after=False), "reset_after=False) has no cuDNN form"),
        (rk.SimpleRNNCell(3, activation="sigmoid"), "SimpleRNNCell(sigmoid) has no cuDNN form"),
        (rk.LSTMCell(3, recurrent_activation="hard_sigmoid"), "the fused kernel covers tanh/sigmoid"),
    ):
        layer = RNN(cell, input_shape=(3, 2))
        kernel, reason = torch_route(layer.cell, x, None, None)
        assert kernel is None and expected in reason, reason
    layer = rk.LSTM(3, input_shape=(3, 2))
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert "no mask" in torch_route(layer.cell, x, mask, None)[1]
    drop = DropoutMasks(input=torch.ones(2, 2), recurrent=None)
    assert "dropout" in torch_route(layer.cell, x, None, drop)[1]
    kernel, reason = torch_route(layer.cell, x, None, DropoutMasks())
    assert kernel is not None and kernel.name == "torch-cudnn:LSTMCell", reason


def test_select_reports_non_cpu_devices():
    layer = rk.LSTM(3)
    layer(torch.randn(1, 2, 2))
    x = torch.empty(1, 2, 2, device="meta")
    kernel, reason = select(layer.cell, x, None, DropoutMasks())
    if BUILT:
        assert kernel is None and reason.startswith("META: reference loop")


def test_native_extension_is_built_when_required():
    if os.environ.get("RNNKIT_REQUIRE_NATIVE") != "1":
        pytest.skip("set RNNKIT_REQUIRE_NATIVE=1 to require the native extension (CI does)")
    assert BUILT, WHY_NOT


def assert_route_off_and_on_agree(name, autocast, switch):
    """Outputs, states and every gradient of one layer at odd row counts (1, 3, 17, 33), with a per-step product
    route switched off and then on (``switch(on)``), agree: float32 at its tolerance; bfloat16 at 1e-2 of each
    tensor's largest value (both round the same operands and sum in float32; a sum's order may flip a rounding)."""
    torch.manual_seed(3)
    layer = RNN(CELLS[name](24), return_sequences=True, return_state=True, input_shape=(11, 6))
    results = []
    for on in (False, True):
        switch(on)
        per_batch = []
        for batch in (1, 3, 17, 33):
            x = torch.randn(batch, 11, 6, generator=torch.Generator().manual_seed(batch), requires_grad=True)
            layer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                outs = tree_flatten(layer(x))
            sum(o.float().sum() * (k + 1) for k, o in enumerate(outs)).backward()
            per_batch.append([o.detach().float() for o in outs] + [x.grad] + [p.grad.clone() for p in layer.parameters()])
        results.append(per_batch)
    tol = dict(rtol=1e-2, atol=1e-2) if autocast else TOL[torch.float32]
    for off, on in zip(*results):
        for a, b in zip(off, on):
            scale = a.abs().max().clamp_min(1.0)
            torch.testing.assert_close(b / scale, a / scale, **tol)


@pytest.fixture
def dnnl_products():
    """``set(on)``: every per-step product through oneDNN's matmul, or none; the defaults come back afterwards."""
    previous = native.set_dnnl_products(native.DNNL_MIN_ROWS, native.DNNL_MIN_WEIGHTS)
    ukernel = native.set_ukernel_products((0, 0))  # it goes first: off, so that oneDNN or MKL runs

    def set_(on: bool):
        native.set_dnnl_products((1, 1) if on else (1 << 62, 1 << 62), 0)

    yield set_
    native.set_dnnl_products(*previous)
    native.set_ukernel_products(ukernel)


needs_dnnl = pytest.mark.skipif(not BUILT or not native.dnnl_available(), reason="torch without oneDNN")


@needs_dnnl
@pytest.mark.parametrize("name", ["lstm", "gru_after", "gru_before", "simple_tanh"])
@pytest.mark.parametrize("threads", [1, 3])
def test_dnnl_step_products_match_the_reference(name, threads, dnnl_products):
    """oneDNN's per-step matmul (forced on for every row count) against the reference loop, float32.

    75 rows on 3 threads: two row blocks of 37 and 38 rows, each with its own oneDNN
    product inside the parallel region; 5 rows: one block, each step split over the threads.
    """
    dnnl_products(True)
    assert_step_products_match_the_reference(name, threads)


def assert_step_products_match_the_reference(name, threads):
    """Batches of 75, 5 and 1 rows, with and without a mask, against the reference loop, float32, split over
    ``threads``: whichever per-step product route is switched on."""
    rng = np.random.default_rng(5)
    with split_over(threads):
        for batch in (75, 5, 1):
            layer = RNN(CELLS[name](9), return_sequences=True, return_state=True, input_shape=(7, 4))
            x = torch.randn(batch, 7, 4)
            assert_same(run_both(layer, x), torch.float32)
            assert_same(run_both(layer, x, mask=hard_mask(batch, 7, rng)), torch.float32)
            assert layer.kernel_used.startswith("native:")


@needs_dnnl
@pytest.mark.parametrize("name", ["lstm", "gru_before", "simple_tanh"])
@pytest.mark.parametrize("autocast", [False, True], ids=["f32", "bf16"])
def test_dnnl_on_and_off_give_the_same_numbers(name, autocast, dnnl_products):
    """Outputs, states and gradients with oneDNN's per-step matmul and without, odd row counts."""
    assert_route_off_and_on_agree(name, autocast, dnnl_products)


@needs_dnnl
@pytest.mark.parametrize("flush", [True, False])
def test_dnnl_products_flush_subnormals(flush, dnnl_products):
    """The oneDNN products run in the call's FP mode: 600 steps, early gradients flushed to 0, or subnormal."""
    dnnl_products(True)
    previous = kernels.flush_denormals(flush)
    try:
        torch.manual_seed(0)
        layer = rk.LSTM(32)
        x = torch.randn(4, 600, 4, requires_grad=True)
        saved, kernels.ONEDNN_MIN_STEPS = kernels.ONEDNN_MIN_STEPS, 1 << 30  # the native kernel, not torch's LSTM
        try:
            layer(x).sum().backward()
        finally:
            kernels.ONEDNN_MIN_STEPS = saved
        assert layer.kernel_used == "native:LSTMCell"
        tiny = torch.finfo(torch.float32).tiny
        subnormal = int(((x.grad != 0) & (x.grad.abs() < tiny)).sum())
        assert (subnormal == 0) == flush, (flush, subnormal)
    finally:
        kernels.flush_denormals(previous)


@needs_native
def test_dnnl_products_validate_their_thresholds():
    with pytest.raises(ValueError, match="min_rows"):
        native.set_dnnl_products(4, 0)
    with pytest.raises(ValueError, match="min_weights"):
        native.set_dnnl_products((2, 2), -1)


@needs_native
@pytest.mark.parametrize("name", ["lstm", "gru_before", "simple_tanh"])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dnnl", [False, True], ids=["mkl", "dnnl"])
def test_input_projection_in_chunks(name, threads, dnnl, dnnl_products):
    """x W runs a chunk of steps ahead (512 KB of it): 75 rows x 256 gates give chunks of 3 steps
    and a tail of 1 out of 7 in float64 (6 and 1 in float32) on one thread, per-step products per
    row block on 3. float64 against the reference loop; float32 (oneDNN's or MKL's products)
    too, relative to each tensor's largest value (sums over 525 rows of 256 units)."""
    if dnnl and not native.dnnl_available():
        pytest.skip("torch without oneDNN")
    dnnl_products(dnnl)
    with split_over(threads):
        units = {"lstm": 64, "gru_before": 86, "simple_tanh": 256}[name]  # G = 256 (258 for the GRU)
        layer = RNN(CELLS[name](units), return_sequences=True, return_state=True, input_shape=(7, 5))
        x = torch.randn(75, 7, 5)
        fused, ref = run_both(layer, x)
        for a, b in zip([*fused[0], *fused[1]], [*ref[0], *ref[1]]):
            scale = b.abs().max().clamp_min(1.0)
            torch.testing.assert_close(a / scale, b / scale, **TOL[torch.float32])
        layer = layer.double()
        assert_same(run_both(layer, x.double()), torch.float64)
        assert layer.kernel_used.startswith("native:")


@needs_dnnl
def test_dnnl_products_follow_torch_backends_mkldnn(dnnl_products):
    """torch.backends.mkldnn.enabled off: the per-step products take MKL's path, same numbers."""
    dnnl_products(True)
    layer = RNN(CELLS["lstm"](9), return_sequences=True, input_shape=(7, 4))
    x = torch.randn(5, 7, 4)
    previous = torch.backends.mkldnn.enabled  # (its flags() context manager warns about TF32 on Intel GPUs)
    torch.backends.mkldnn.enabled = False
    try:
        assert not native.dnnl_available()
        assert_same(run_both(layer, x), torch.float32)
    finally:
        torch.backends.mkldnn.enabled = previous
    assert native.dnnl_available() == previous


needs_ukernel = pytest.mark.skipif(not BUILT or not native.ukernel_available(), reason="CPU without AVX-512")


@needs_ukernel
@pytest.mark.parametrize("bf16", [False, True], ids=["f32", "bf16"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "B^T"])
def test_ukernel_product_matches_torch_mm(bf16, trans_b):
    """The AVX-512 kernel (row and column tails, odd k) against torch.mm.

    float32: against torch.mm in float32, TOL relative to the result's largest
    value. bfloat16 (B bfloat16, A rounded to bfloat16 by the kernel): against
    torch.mm of the float32 values of the same bfloat16 operands, i.e. exact
    products with float32 accumulation, the same tolerance (only the order of
    the float32 sums differs).
    """
    if bf16 and not native.ukernel_available(True):
        pytest.skip("CPU without AVX512-BF16")
    gen = torch.Generator().manual_seed(1)
    for rows in (*range(1, 10), 17, 33):
        for k in (1, 7, 16, 33, 129):
            for n in (1, 7, 16, 33, 129):
                a = torch.randn(rows, k, generator=gen)
                b = torch.randn(n, k, generator=gen) if trans_b else torch.randn(k, n, generator=gen)
                if bf16:
                    b = b.bfloat16()
                got = native._native.step_product(a, b, trans_b, "ukernel")
                ops = (a.bfloat16().float(), b.float()) if bf16 else (a, b)
                want = torch.mm(ops[0], ops[1].t() if trans_b else ops[1])
                scale = want.abs().max().clamp_min(1.0)
                torch.testing.assert_close(got / scale, want / scale, **TOL[torch.float32])


@needs_ukernel
def test_ukernel_product_routes_agree():
    """The same product by every route the per-step products can take: one contract."""
    a, b = torch.randn(5, 24), torch.randn(24, 96)
    want = torch.mm(a, b)
    routes = ["ukernel", "mkl", "plain"] + (["dnnl"] if native.dnnl_available() else [])
    for route in routes:
        torch.testing.assert_close(native._native.step_product(a, b, False, route), want, **TOL[torch.float32])
    with pytest.raises(RuntimeError, match="route"):
        native._native.step_product(a, b, False, "fast")


@needs_ukernel
@pytest.mark.parametrize("name", ["lstm", "gru_after", "gru_before", "simple_tanh"])
@pytest.mark.parametrize("threads", [1, 3])
def test_ukernel_step_products_match_the_reference(name, threads, dnnl_products):
    """The AVX-512 per-step products (forward h U, backward dz U^T) against the reference loop, float32.

    75 rows on 3 threads: row blocks of 37 and 38 rows, each with its own product;
    5 rows: one block, each step's product split by columns over the threads.
    """
    previous = native.set_ukernel_products((1 << 62, 1 << 62))
    try:
        assert_step_products_match_the_reference(name, threads)
    finally:
        native.set_ukernel_products(previous)


@needs_ukernel
@pytest.mark.parametrize("name", ["lstm", "gru_before", "simple_tanh"])
@pytest.mark.parametrize("autocast", [False, True], ids=["f32", "bf16"])
def test_ukernel_on_and_off_give_the_same_numbers(name, autocast, dnnl_products):
    """Outputs, states and gradients with the AVX-512 kernel and with MKL / at::mm, odd row counts.

    bfloat16: the kernel rounds h to bfloat16 at every row count and gives a
    float32 product; at::mm (from 16 rows) rounds its result to bfloat16 and
    below 16 rows h stays float32: the same 1e-2 as oneDNN against MKL.
    """
    if autocast and not native.ukernel_available(True):
        pytest.skip("CPU without AVX512-BF16")
    previous = native.set_ukernel_products(native.UKERNEL_MAX_ROWS)
    try:
        assert_route_off_and_on_agree(
            name, autocast, lambda on: native.set_ukernel_products((1 << 62, 1 << 62) if on else (0, 0)))
    finally:
        native.set_ukernel_products(previous)


@needs_native
def test_ukernel_products_validate_their_thresholds():
    with pytest.raises(ValueError, match="max_rows"):
        native.set_ukernel_products(4)
    with pytest.raises(ValueError, match="max_rows"):
        native.set_ukernel_products((2, -1))
