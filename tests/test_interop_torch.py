"""from_torch / to_torch: torch.nn.RNN/GRU/LSTM and rnnkit compute the same numbers.

The reference is torch.nn itself, run on the copied weights: outputs and
final states must agree within 1e-6 (float32) on random batches.
"""

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit.interop import from_torch, to_torch

TOL = 1e-6


def rnnkit_run(model, x):
    """Output and final states of an rnnkit stack, in torch's h_n/c_n order.

    torch's h_n is (num_layers * num_directions, batch, units): layer 0
    forward, layer 0 backward, layer 1 forward, ... Each recurrent layer is
    run once more with return_state=True to read its final state.
    """
    hs, cs = [], []
    for layer in model.layers:
        if isinstance(layer, rk.Dropout):
            x = layer(x)
            continue
        subs = [layer.forward_layer, layer.backward_layer] if isinstance(layer, rk.Bidirectional) else [layer]
        for sub in subs:
            sub.return_state = True
            try:
                _, *states = sub(x)
            finally:
                sub.return_state = False
            hs.append(states[0])
            if len(states) == 2:
                cs.append(states[1])
        x = layer(x)
    return x, torch.stack(hs), (torch.stack(cs) if cs else None)


def torch_run(module, x):
    """Output (batch-first) and h_n, c_n of a torch module for batch-first x."""
    out, state = module(x if module.batch_first else x.transpose(0, 1))
    out = out if module.batch_first else out.transpose(0, 1)
    h, c = state if isinstance(state, tuple) else (state, None)
    return out, h, c


def assert_close(a, b, what):
    err = (a - b).abs().max().item()
    assert err <= TOL, f"{what}: max abs error {err:.3g} > {TOL}"


KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "gru": nn.GRU,
    "lstm": nn.LSTM,
}
CONFIGS = [  # num_layers, bidirectional, batch_first, bias, dropout
    (1, False, True, True, 0.0),
    (1, True, False, True, 0.0),
    (2, False, False, False, 0.0),
    (3, True, True, True, 0.25),
    (2, True, False, False, 0.5),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-bi{:d}-bf{:d}-bias{:d}-p{}".format(*c))
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_matches_torch(kind, config):
    num_layers, bidirectional, batch_first, bias, dropout = config
    torch.manual_seed(0)
    module = KINDS[kind](
        input_size=5, hidden_size=7, num_layers=num_layers, bidirectional=bidirectional,
        batch_first=batch_first, bias=bias, dropout=dropout,
    ).eval()
    model = from_torch(module)
    assert not model.training
    for batch, time in [(3, 6), (1, 11)]:
        x = torch.randn(batch, time, 5)
        with torch.no_grad():
            out, h, c = rnnkit_run(model, x)
            ref_out, ref_h, ref_c = torch_run(module, x)
        assert_close(out, ref_out, "output")
        assert_close(h, ref_h, "h_n")
        if kind == "lstm":
            assert_close(c, ref_c, "c_n")


def test_from_torch_structure():
    module = nn.GRU(4, 6, num_layers=3, bidirectional=True, dropout=0.3)
    model = from_torch(module)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Bidirectional", "Dropout", "Bidirectional", "Dropout", "Bidirectional"]
    assert all(d.rate == 0.3 for d in model.layers if isinstance(d, rk.Dropout))
    bi = model.layers[2]
    assert bi.merge_mode == "concat" and bi.return_sequences
    assert bi.forward_layer.input_size == 12 and bi.backward_layer.go_backwards
    # The weights are copied, not shared.
    with torch.no_grad():
        module.weight_ih_l0.zero_()
    assert bi.forward_layer.cell.kernel.abs().sum() > 0


def test_from_torch_float64_and_training_mode():
    module = nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    model = from_torch(module)
    assert model.training and model.layers[0].cell.kernel.dtype == torch.float64
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        assert (model(x) - module(x)[0]).abs().max().item() < 1e-12


def test_from_torch_rejects():
    with pytest.raises(ValueError, match="proj_size=2"):
        from_torch(nn.LSTM(4, 6, proj_size=2))
    with pytest.raises(TypeError, match="torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM, got Linear"):
        from_torch(nn.Linear(3, 3))
    with pytest.raises(TypeError, match="got LSTMCell"):
        from_torch(nn.LSTMCell(3, 3))


# ---------------------------------------------------------------- rnnkit -> torch


def _seq(*layers):
    return rk.Sequential(list(layers))


LAYER_CASES = {
    "simple_rnn_tanh": lambda: rk.SimpleRNN(6, return_sequences=True, input_size=4),
    "simple_rnn_relu": lambda: rk.SimpleRNN(6, activation="relu", return_sequences=True, input_size=4),
    "gru": lambda: rk.GRU(6, return_sequences=True, input_size=4),
    "gru_no_bias": lambda: rk.GRU(6, use_bias=False, return_sequences=True, input_size=4),
    "lstm": lambda: rk.LSTM(6, return_sequences=True, input_size=4),
    "bi_lstm": lambda: rk.Bidirectional(rk.LSTM(6, return_sequences=True, input_size=4)),
    "bi_gru_last": lambda: rk.Bidirectional(rk.GRU(6, input_size=4)),
    "lstm_last": lambda: rk.LSTM(6, input_size=4),
    "stack_lstm": lambda: _seq(
        rk.LSTM(6, return_sequences=True, input_size=4), rk.Dropout(0.2), rk.LSTM(6, return_sequences=True, input_size=6)
    ),
    "stack_bi_rnn": lambda: _seq(
        rk.Bidirectional(rk.SimpleRNN(6, return_sequences=True, input_size=4)),
        rk.Bidirectional(rk.SimpleRNN(6, return_sequences=True, input_size=12)),
    ),
}


def _randomise(layer):
    # Random biases too (the initialisers give zeros), so every array is tested.
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.4)
    return layer


@pytest.mark.parametrize("case", LAYER_CASES)
def test_to_torch_matches_rnnkit(case):
    torch.manual_seed(len(case))
    layer = _randomise(LAYER_CASES[case]()).eval()
    module = to_torch(layer)
    assert module.batch_first and not module.training
    model = layer if isinstance(layer, rk.Sequential) else _seq(layer)
    x = torch.randn(3, 7, 4)
    with torch.no_grad():
        out_t, h_t, c_t = torch_run(module, x)
        last = model.layers[-1]
        if last.return_sequences:
            out, h, c = rnnkit_run(model, x)
            assert_close(out, out_t, "output")
            assert_close(h, h_t, "h_n")
            if c is not None:
                assert_close(c, c_t, "c_n")
        else:  # the documented way to read a last-step output off torch's results
            want = torch.cat([h_t[-2], h_t[-1]], -1) if isinstance(last, rk.Bidirectional) else out_t[:, -1]
            assert_close(model(x), want, "last output")


@pytest.mark.parametrize("case", LAYER_CASES)
def test_round_trip_rnnkit_torch_rnnkit_is_exact(case):
    torch.manual_seed(1)
    layer = _randomise(LAYER_CASES[case]())
    back = from_torch(to_torch(layer))
    before, after = layer.get_weights(), back.get_weights()
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_torch_rnnkit_torch(kind):
    torch.manual_seed(2)
    module = KINDS[kind](input_size=3, hidden_size=5, num_layers=2, bidirectional=True, batch_first=True)
    again = to_torch(from_torch(module))
    for name, p in module.named_parameters():
        q = dict(again.named_parameters())[name]
        if kind == "gru" or name.startswith("weight"):
            assert torch.equal(p, q), name  # the same arrays, moved twice
        elif name.startswith("bias_ih"):  # Keras has one bias: b_ih + b_hh lands in bias_ih
            assert torch.equal(q, p + dict(module.named_parameters())[name.replace("_ih", "_hh")]), name
        else:
            assert not q.any(), name
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        assert_close(again(x)[0], module(x)[0], "output")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rk.GRU(4, reset_after=False, input_size=3), "reset_after=False"),
        (lambda: rk.SimpleRNN(4, activation="sigmoid", input_size=3), "activation='sigmoid'"),
        (lambda: rk.LSTM(4, recurrent_activation="hard_sigmoid", input_size=3), "recurrent_activation='hard_sigmoid'"),
        (lambda: rk.GRU(4, activation="relu", input_size=3), "activation='relu'"),
        (lambda: rk.LSTM(4, go_backwards=True, input_size=3), "go_backwards=True"),
        (lambda: rk.LSTM(4, dropout=0.1, input_size=3), "dropout=0.1"),
        (lambda: rk.LSTM(4, return_state=True, input_size=3), "return_state=True"),
        (lambda: rk.LSTM(4), "not built"),
        (lambda: rk.Bidirectional(rk.LSTM(4, input_size=3), merge_mode="sum"), "merge_mode='sum'"),
        (lambda: rk.Dense(3, input_size=3), "Dense"),
        (lambda: _seq(rk.LSTM(4, return_sequences=True, input_size=3), rk.Dense(2)), "Dense"),
        (lambda: _seq(rk.LSTM(4, input_size=3), rk.LSTM(4, input_size=4)), "return_sequences=False"),
        (lambda: _seq(rk.LSTM(4, return_sequences=True, input_size=3), rk.GRU(4, input_size=4)), "differs"),
        (lambda: _seq(rk.LSTM(4, return_sequences=True, input_size=3), rk.LSTM(5, input_size=4)), "units=5"),
        (lambda: _seq(rk.Dropout(0.1), rk.LSTM(4, input_size=3)), "Dropout before"),
        (
            lambda: _seq(
                rk.LSTM(4, return_sequences=True, input_size=3), rk.Dropout(0.1), rk.Dense(4), rk.LSTM(4, input_size=4)
            ),
            r"layer.layers\[2\]: Dense",
        ),
        (
            lambda: _seq(rk.LSTM(4, return_sequences=True, input_size=3), rk.LSTM(4, input_size=5)),
            "built for 5 input features, but the layer below outputs 4",
        ),
        (lambda: _seq(rk.LSTM(4, input_size=3), rk.Dropout(0.1)), "ends with Dropout"),
        (
            lambda: _seq(
                rk.LSTM(4, return_sequences=True, input_size=3), rk.Dropout(0.1),
                rk.LSTM(4, return_sequences=True, input_size=4), rk.LSTM(4, input_size=4),
            ),
            "dropout between layers differs",
        ),
        (
            lambda: _seq(
                rk.SimpleRNN(4, return_sequences=True, input_size=3),
                rk.SimpleRNN(4, activation="relu", input_size=4),
            ),
            "one nonlinearity",
        ),
        (
            lambda: _seq(rk.Bidirectional(rk.LSTM(4, return_sequences=True, input_size=3)), rk.LSTM(4, input_size=8)),
            "mixes bidirectional",
        ),
    ],
)
def test_to_torch_rejects_what_torch_cannot_compute(make, match):
    with pytest.raises(ValueError, match=match):
        to_torch(make())
