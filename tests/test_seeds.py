"""The seeds' examples (000, 001), translated name for name, as tests."""

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.tour import tour

h, e, l, o = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]  # noqa: E741
HELLO3 = np.array([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=np.float32)


def test_cell_plus_rnn_equals_simple_rnn_layer():
    x = np.array([[h]], dtype=np.float32)
    cell = rk.SimpleRNNCell(units=2)
    outputs, states = rk.RNN(cell, return_sequences=True, return_state=True)(x)
    assert outputs.shape == (1, 1, 2) and states.shape == (1, 2)
    layer = rk.SimpleRNN(units=2, return_sequences=True, return_state=True, input_shape=(None, 4))
    layer.set_weights(cell.get_weights())
    out2, st2 = layer(x)
    torch.testing.assert_close(out2, outputs)
    # one step: h = tanh(x W + b) with a zero initial state
    W, _, b = cell.get_weights()
    np.testing.assert_allclose(states.detach().numpy(), np.tanh(x[:, 0] @ W + b), rtol=1e-6)


@pytest.mark.parametrize("x,shape", [
    (np.array([[h, e, l, l, o]], dtype=np.float32), (1, 5, 2)),
    (HELLO3, (3, 5, 2)),
])
def test_unfolding_and_batching_last_output_is_state(x, shape):
    outputs, states = rk.SimpleRNN(units=2, return_sequences=True, return_state=True)(x)
    assert outputs.shape == shape and states.shape == (shape[0], 2)
    torch.testing.assert_close(outputs[:, -1], states)


def test_return_sequences_false_and_return_state_false():
    layer = rk.SimpleRNN(units=2, return_sequences=True, input_shape=(None, 4))
    seq = layer(HELLO3)
    last = rk.SimpleRNN(units=2, return_sequences=False, return_state=True, input_shape=(None, 4))
    last.set_weights(layer.get_weights())
    outputs, states = last(HELLO3)
    torch.testing.assert_close(outputs, seq[:, -1])
    torch.testing.assert_close(states, seq[:, -1])
    only = rk.SimpleRNN(units=2, return_sequences=False, return_state=False, input_shape=(None, 4))
    only.set_weights(layer.get_weights())
    out = only(HELLO3)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 2)
    torch.testing.assert_close(out, seq[:, -1])


def test_gru_returns_output_and_state():
    outputs, states = rk.GRU(units=2, return_sequences=False, return_state=True)(HELLO3)
    torch.testing.assert_close(outputs, states)


def test_lstm_returns_output_h_and_c():
    lstm = rk.LSTM(units=2, return_sequences=True, return_state=True)
    outputs, h_states, c_states = lstm(HELLO3)
    torch.testing.assert_close(outputs[:, -1], h_states)
    # h = o * tanh(c): |h| <= |tanh(c)| elementwise, and c is the carried memory
    assert torch.all(h_states.abs() <= torch.tanh(c_states).abs() + 1e-7)
    ref_h, ref_c = lstm.cell.get_initial_state(3)
    x = torch.from_numpy(HELLO3)
    state = rk.LSTMState(ref_h, ref_c)
    for t in range(5):
        _, state = lstm.cell(x[:, t], state)
    torch.testing.assert_close(c_states, state.c)


def test_stacked_summary_shows_14_10_10_and_34():
    model = rk.Sequential()
    model.add(rk.SimpleRNN(2, return_sequences=True, input_shape=(5, 4)))
    model.add(rk.SimpleRNN(2, return_sequences=True))
    model.add(rk.SimpleRNN(2, return_sequences=True))
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    rows = [r for r in text.splitlines() if "(SimpleRNN)" in r]
    assert [r.split()[-1] for r in rows] == ["14", "10", "10"]
    assert all("(None, 5, 2)" in r for r in rows)
    assert "Total params: 34" in text and "Trainable params: 34" in text and "Non-trainable params: 0" in text
    assert model.count_params() == 34


def test_tour_prints_the_seeds_shapes():
    lines = []
    tour(print_fn=lines.append)
    text = "\n".join(lines)
    for shape in ["(1, 1, 2)", "(1, 5, 2)", "(3, 5, 2)", "Total params: 34"]:
        assert shape in text


def test_summary_with_variable_time_axis_shows_none():
    model = rk.Sequential([rk.LSTM(4, return_sequences=True, input_shape=(None, 3)), rk.GRU(2), rk.Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    rows = [r.split() for r in lines[0].splitlines() if r.startswith(("lstm", "gru", "dense"))]
    assert [" ".join(r[2:-1]) for r in rows] == ["(None, None, 4)", "(None, 2)", "(None, 1)"]
    assert [int(r[-1]) for r in rows] == [4 * 4 * (3 + 4 + 1), 3 * 2 * (4 + 2 + 2), 2 + 1]


def test_keras3_input_sets_the_shape_and_is_not_a_layer():
    model = rk.Sequential([
        rk.Input(shape=(5, 4)),
        rk.SimpleRNN(2, return_sequences=True),
        rk.SimpleRNN(2, return_sequences=True),
        rk.SimpleRNN(2, return_sequences=True),
    ])
    lines = []
    model.summary(print_fn=lines.append)  # built before any data, as in Keras
    assert len(model.layers) == 3 and "Total params: 34" in lines[0]
    with pytest.raises(ValueError, match="Input\\(shape\\) must come first"):
        model.add(rk.Input(shape=(5, 4)))
    with pytest.raises(ValueError, match="shape: expected a tuple of positive ints"):
        rk.Input(shape=(0, 4))
