"""Long sequences: 10,000 steps forward and backward, and memory linear in steps.

The time loop is a Python ``for`` over steps and autograd's backward is
iterative, so nothing recurses per step: no recursion limit, whatever the
length. The numbers are checked against ``torch.nn``'s own RNN/GRU/LSTM on
copied weights (float64, so 10,000 steps of rounding stay far below the
tolerance), and memory is measured as the bytes autograd saves for backward
(``torch.autograd.graph.saved_tensors_hooks``), which must grow 4x when the
sequence does.
"""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import rnnkit as rk

F, U = 3, 8


def torch_twin(layer):
    """torch.nn's module with ``layer``'s weights (Keras layout -> torch layout, GRU gates z,r,h -> r,z,n)."""
    kernel, recurrent, bias = (w.detach() for w in layer.cell.weights)
    if isinstance(layer, rk.GRU):
        mod = nn.GRU(F, U, batch_first=True, dtype=torch.float64)

        def order(w):
            z, r, h = w.split(U, dim=-1)
            return torch.cat([r, z, h], dim=-1)

        b_ih, b_hh = order(bias[0]), order(bias[1])
        kernel, recurrent = order(kernel), order(recurrent)
    else:
        cls = nn.LSTM if isinstance(layer, rk.LSTM) else nn.RNN
        mod = cls(F, U, batch_first=True, dtype=torch.float64)
        b_ih, b_hh = bias, torch.zeros_like(bias)  # Keras has one bias; i, f, c(g), o is torch's order too
    with torch.no_grad():
        mod.weight_ih_l0.copy_(kernel.T)
        mod.weight_hh_l0.copy_(recurrent.T)
        mod.bias_ih_l0.copy_(b_ih)
        mod.bias_hh_l0.copy_(b_hh)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("unroll", [False, True], ids=["default", "reference"])
@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM], ids=lambda c: c.__name__)
def test_ten_thousand_steps_forward_and_backward(cls, unroll):
    steps = 10_000
    limit = sys.getrecursionlimit()
    torch.manual_seed(0)
    layer = cls(U, return_sequences=True, bias_initializer="random_normal", unroll=unroll, input_shape=(steps, F))
    layer = layer.double()
    mod = torch_twin(layer)
    x = torch.randn(2, steps, F, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)

    out = layer(x)
    ref = mod(x_ref)[0]
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)

    # A loss on the last step only reaches back through the whole chain.
    out[:, -1].sum().backward()
    ref[:, -1].sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(layer.cell.kernel.grad.T.sum(), mod.weight_ih_l0.grad.sum(), rtol=1e-7, atol=1e-10)
    assert sys.getrecursionlimit() == limit  # nothing raised it to get here


def saved_bytes(layer, steps: int) -> int:
    """Bytes of the tensors autograd keeps for backward over ``steps`` steps."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x = torch.randn(2, steps, F, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x, lengths=torch.tensor([steps, steps // 2]))
    return total


@pytest.mark.parametrize("unroll", [False, True], ids=["default", "reference"])
@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM], ids=lambda c: c.__name__)
def test_memory_is_linear_in_steps(cls, unroll):
    # Bytes, not tensor counts: a fused kernel saves a few whole-sequence tensors
    # where the readable loop saves a few per step; both must grow as the steps do.
    layer = cls(U, return_sequences=True, unroll=unroll, input_shape=(1, F))
    small = saved_bytes(layer, 1000)
    large = saved_bytes(layer, 4000)
    assert 3.9 < large / small < 4.1, (small, large)
    per_step = (large - small) / 3000
    assert per_step < 100 * 2 * U * 4, f"{per_step:.0f} bytes saved per step is more than 100 (batch, units) tensors"


def test_long_sequence_without_grad_saves_nothing():
    layer = rk.LSTM(U, input_shape=(1, F))
    with torch.no_grad():
        assert saved_bytes(layer, 2000) == 0
