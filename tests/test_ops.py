"""Activations and initializers against their definitions."""

import math

import pytest
import torch

import rnnkit as rk
from rnnkit import ops


def test_hard_sigmoid_is_keras3_relu6_over_6():
    x = torch.tensor([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0])
    # Keras 3: relu6(x + 3) / 6, i.e. slope 1/6 between -3 and 3 (Keras 2 used slope 0.2)
    expected = torch.tensor([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    torch.testing.assert_close(ops.get_activation("hard_sigmoid")(x), expected)


@pytest.mark.parametrize("name,fn", [
    ("softsign", lambda x: x / (1 + x.abs())),
    ("swish", lambda x: x * torch.sigmoid(x)),
    ("elu", lambda x: torch.where(x > 0, x, torch.exp(x) - 1)),
    ("selu", lambda x: 1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1))),
    ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
    ("linear", lambda x: x),
    ("softmax", lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)),
])
def test_activations_match_their_formulas(name, fn):
    x = torch.linspace(-4, 4, 17, dtype=torch.float64).reshape(1, -1)
    torch.testing.assert_close(ops.get_activation(name)(x), fn(x))


def test_initializers_follow_keras():
    torch.manual_seed(0)
    w = ops.get_initializer("glorot_uniform")((300, 200))
    limit = math.sqrt(6 / (300 + 200))
    assert float(w.abs().max()) <= limit and float(w.abs().max()) > 0.95 * limit
    assert abs(float(w.var()) - limit**2 / 3) < 0.05 * limit**2 / 3  # U(-a, a) has variance a^2 / 3
    q = ops.get_initializer("orthogonal")((64, 64))
    torch.testing.assert_close(q @ q.T, torch.eye(64), atol=1e-5, rtol=0)
    # a recurrent kernel (units, 4 units): orthonormal rows, as Keras's Orthogonal gives
    r = rk.LSTMCell(16, input_size=3).recurrent_kernel.detach()
    torch.testing.assert_close(r @ r.T, torch.eye(16), atol=1e-5, rtol=0)
    assert ops.get_initializer(0.03)((2,)).tolist() == pytest.approx([0.03, 0.03])


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match=r"activation: unknown activation 'tanhh'; expected one of \["):
        rk.SimpleRNN(2, activation="tanhh")
    with pytest.raises(ValueError, match=r"kernel_initializer: unknown initializer 'glorot'"):
        rk.LSTM(2, kernel_initializer="glorot")
