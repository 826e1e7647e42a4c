"""bfloat16 autocast on the CPU: bfloat16 products, float32 state, bfloat16 outputs.

Tolerance: bfloat16 keeps 8 significant bits (relative rounding 2^-9); over
a few steps of unit-scale inputs the fused layer under autocast stays within
BF16_TOL of the same layer in float32 and of the reference loop under
autocast (which rounds differently: its state passes through bfloat16).
"""

from __future__ import annotations

import pytest
import torch

import rnnkit as rk
from rnnkit.kernels import native_available
from rnnkit.kernels.autocast import bf16_autocast, bf16_status
from rnnkit.rnn import explain

BUILT, WHY_NOT = native_available()
needs_native = pytest.mark.skipif(not BUILT, reason=f"{WHY_NOT} (the reference loop runs instead)")

BF16_TOL = dict(rtol=3e-2, atol=3e-2)
LAYERS = {
    "simple_tanh": lambda: rk.SimpleRNN(16, return_sequences=True, return_state=True),
    "gru_after": lambda: rk.GRU(16, return_sequences=True, return_state=True),
    "gru_before": lambda: rk.GRU(16, reset_after=False, return_sequences=True, return_state=True),
    "lstm": lambda: rk.LSTM(16, return_sequences=True, return_state=True),
    "lstm_stack": lambda: rk.RNN([rk.LSTMCell(12), rk.GRUCell(16)], return_sequences=True, return_state=True),
    "lstm_last_only": lambda: rk.LSTM(16),
}


def run(layer, x, autocast: bool, unroll: bool = False):
    """Outputs (each as float32, with its dtype) and the parameters' gradients."""
    for sub in layer.modules():
        if isinstance(sub, rk.RNN):
            sub.unroll = unroll
    layer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = layer(x)
    outs = out if isinstance(out, list) else [out]
    flat = [t for o in outs for t in (o if isinstance(o, (list, tuple)) else [o])]
    sum(t.float().sum() * (k + 1) for k, t in enumerate(flat)).backward()
    return [(t.dtype, t.detach().float()) for t in flat], [p.grad.clone() for p in layer.parameters()]


def close_grads(a, b):
    for ga, gb in zip(a, b):
        scale = gb.abs().max().clamp_min(1.0)
        torch.testing.assert_close(ga / scale, gb / scale, **BF16_TOL)


@needs_native
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_autocast_matches_float32_and_the_reference_loop(name):
    torch.manual_seed(0)
    layer = LAYERS[name]()
    x = torch.randn(6, 20, 5)
    f32_outs, f32_grads = run(layer, x, autocast=False)
    bf_outs, bf_grads = run(layer, x, autocast=True)
    assert layer.kernel_used.startswith("native:"), layer.kernel_used  # not oneDNN: the state stays float32
    assert "bfloat16 autocast" in layer.kernel_reason
    ref_outs, ref_grads = run(layer, x, autocast=True, unroll=True)
    for k, ((dt_f, f), (dt_b, b), (_, r)) in enumerate(zip(f32_outs, bf_outs, ref_outs)):
        # the output in bfloat16, the returned states float32 (they can be fed back as initial_state)
        assert dt_f == torch.float32 and dt_b == (torch.bfloat16 if k == 0 else torch.float32)
        torch.testing.assert_close(b, f, **BF16_TOL)
        torch.testing.assert_close(b, r, **BF16_TOL)
    assert all(g.dtype == torch.float32 for g in bf_grads)  # the parameters stay float32
    close_grads(bf_grads, f32_grads)
    close_grads(bf_grads, ref_grads)


@needs_native
def test_autocast_really_rounds_the_products():
    """Not float32 in disguise: the results differ from float32 by bfloat16-sized amounts."""
    torch.manual_seed(0)
    layer = rk.SimpleRNN(32, return_sequences=True)
    x = torch.randn(4, 10, 8)
    f32 = run(layer, x, autocast=False)[0][0][1]
    bf = run(layer, x, autocast=True)[0][0][1]
    assert 1e-4 < (bf - f32).abs().max() < 3e-2


@needs_native
def test_returned_state_feeds_back_under_autocast():
    torch.manual_seed(0)
    layer = rk.LSTM(8, return_state=True)
    x = torch.randn(2, 20, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h, c = layer(x)
        again, _, _ = layer(x, initial_state=[h, c])
    assert out.dtype == again.dtype == torch.bfloat16 and h.dtype == c.dtype == torch.float32
    torch.testing.assert_close(again.float(), layer(x, initial_state=[h, c])[0], **BF16_TOL)


def test_float64_and_disabled_autocast_are_untouched():
    torch.manual_seed(0)
    layer = rk.GRU(4, return_sequences=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    expected = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not bf16_autocast(x)
        got = layer(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_status_names_the_cpu_support():
    text = bf16_status()
    assert text.startswith("bfloat16 autocast: ")
    layer = rk.LSTM(4, input_shape=(20, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(torch.randn(2, 20, 3))
    if BUILT:
        assert text in explain(layer)


@needs_native
def test_explain_says_the_faster_onednn_lstm_is_not_taken():
    """Unmasked LSTM inference under autocast: the native kernel runs, and the reason says oneDNN's is faster."""
    layer = rk.LSTM(8)
    x = torch.randn(2, 20, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            layer(x)
        assert layer.kernel_used == "native:LSTMCell"
        assert "oneDNN bfloat16 LSTM can be faster for unmasked inference" in layer.kernel_reason
        layer(x)  # training: no such note
        assert "oneDNN bfloat16 LSTM" not in layer.kernel_reason
        with torch.no_grad():
            layer(x, mask=torch.ones(2, 20, dtype=torch.bool))
        assert "oneDNN bfloat16 LSTM" not in layer.kernel_reason
