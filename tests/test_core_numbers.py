"""Core layers checked in numbers: Keras's golden vectors, torch.nn on copied
weights, gradcheck in float64, and the layer against a hand loop of its cell."""

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit as rk


def constant_layer(cls, units, **kw):
    # The constant initializers of Keras 3's own RNN tests.
    return cls(units, kernel_initializer=0.01, recurrent_initializer=0.02, bias_initializer=0.03, **kw)


# Keras 3 tests: output[:, 0] of each configuration.
GOLDEN = [
    (rk.SimpleRNN, 4, {}, (2, 3, 4), [0.405432, 0.73605347]),
    (rk.GRU, 3, {}, (3, 6, 4), [0.5217289, 0.6371659, 0.39384964]),
    (rk.GRU, 3, {"go_backwards": True}, (3, 6, 4), [0.24406259, 0.611516, 0.3928808]),
    (rk.GRU, 3, {"reset_after": False}, (3, 6, 4), [0.51447755, 0.6426879, 0.40208298]),
    (rk.LSTM, 3, {}, (3, 6, 4), [0.6288687, 0.86899155, 0.9460773]),
    (rk.LSTM, 3, {"unit_forget_bias": False}, (3, 6, 4), [0.57019705, 0.8661914, 0.9459622]),
]


@pytest.mark.parametrize("cls,units,kw,shape,expected", GOLDEN, ids=lambda v: str(v))
def test_keras_golden_vectors(cls, units, kw, shape, expected):
    x = np.arange(np.prod(shape)).reshape(shape).astype(np.float32)
    out = constant_layer(cls, units, **kw)(x)
    np.testing.assert_allclose(out[:, 0].detach().numpy(), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- torch.nn parity


def copy_to_torch_rnn(layer, mod):
    k, rk_, b = (w.detach() for w in layer.cell.weights)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(k.T)
        mod.weight_hh_l0.copy_(rk_.T)
        mod.bias_ih_l0.copy_(b)
        mod.bias_hh_l0.zero_()


def keras_gru_to_torch(layer, mod):
    u = layer.units
    k, r, b = (w.detach() for w in layer.cell.weights)

    def zrh_to_rzn(w):  # last axis blocks z, r, h -> torch's r, z, n
        z, r_, h = w.split(u, dim=-1)
        return torch.cat([r_, z, h], dim=-1)

    with torch.no_grad():
        mod.weight_ih_l0.copy_(zrh_to_rzn(k).T)
        mod.weight_hh_l0.copy_(zrh_to_rzn(r).T)
        mod.bias_ih_l0.copy_(zrh_to_rzn(b[0]))
        mod.bias_hh_l0.copy_(zrh_to_rzn(b[1]))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_matches_torch(activation):
    torch.manual_seed(0)
    layer = rk.SimpleRNN(5, activation=activation, return_sequences=True, return_state=True, bias_initializer="random_normal")
    x = torch.randn(3, 7, 4)
    out, h = layer(x)
    mod = nn.RNN(4, 5, nonlinearity=activation, batch_first=True)
    copy_to_torch_rnn(layer, mod)
    ref, h_ref = mod(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)


def test_lstm_matches_torch():
    torch.manual_seed(1)
    layer = rk.LSTM(6, return_sequences=True, return_state=True, bias_initializer="random_normal")
    x = torch.randn(4, 9, 3)
    h0, c0 = torch.randn(4, 6), torch.randn(4, 6)
    out, h, c = layer(x, initial_state=[h0, c0])
    mod = nn.LSTM(3, 6, batch_first=True)
    copy_to_torch_rnn(layer, mod)  # same gate order i, f, g(c), o; Keras bias = b_ih + b_hh
    ref, (h_ref, c_ref) = mod(x, (h0[None], c0[None]))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, c_ref[0], atol=1e-6, rtol=1e-5)


def test_gru_reset_after_matches_torch():
    torch.manual_seed(2)
    layer = rk.GRU(5, return_sequences=True, return_state=True, bias_initializer="random_normal")
    x = torch.randn(3, 8, 4)
    out, h = layer(x)
    mod = nn.GRU(4, 5, batch_first=True)
    keras_gru_to_torch(layer, mod)
    ref, h_ref = mod(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)


def test_gru_reset_before_matches_hand_step():
    # reset_after=False has no torch.nn twin; check it against the equations.
    torch.manual_seed(3)
    cell = rk.GRUCell(4, reset_after=False, input_size=3, bias_initializer="random_normal")
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    W, U, b = (w.detach() for w in cell.weights)
    z = torch.sigmoid(x @ W[:, :4] + h @ U[:, :4] + b[:4])
    r = torch.sigmoid(x @ W[:, 4:8] + h @ U[:, 4:8] + b[4:8])
    hh = torch.tanh(x @ W[:, 8:] + (r * h) @ U[:, 8:] + b[8:])
    y, h_new = cell(x, h)
    torch.testing.assert_close(y, z * h + (1 - z) * hh)
    assert y is h_new


# ------------------------------------------------------------ gradcheck


@pytest.mark.parametrize("make", [
    lambda: rk.SimpleRNNCell(3, input_size=2),
    lambda: rk.GRUCell(3, input_size=2),
    lambda: rk.GRUCell(3, input_size=2, reset_after=False),
    lambda: rk.LSTMCell(3, input_size=2),
])
def test_cell_gradcheck_float64(make):
    torch.manual_seed(0)
    cell = make().double()
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    state = rk.rnn.tree_flatten(cell.get_initial_state(2))
    state = [torch.randn_like(s, requires_grad=True) for s in state]
    params = list(cell.weights)

    def f(x, *args):
        st = rk.rnn.tree_unflatten(cell.get_initial_state(2), list(args))
        y, new = cell(x, st)
        return (y, *rk.rnn.tree_flatten(new))

    assert torch.autograd.gradcheck(f, (x, *state))
    # and with respect to every weight (functional_call keeps autograd through them)
    ws = [p.detach().clone().requires_grad_(True) for p in params]

    def h(*ws):
        names = [n for n, _ in cell.named_parameters()]
        y, _ = torch.func.functional_call(cell, dict(zip(names, ws)), (x.detach(), rk.rnn.tree_unflatten(
            cell.get_initial_state(2), [s.detach() for s in state])))
        return y

    assert torch.autograd.gradcheck(h, tuple(ws))


@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM])
def test_rnn_gradcheck_with_mask_and_go_backwards(cls):
    torch.manual_seed(0)
    # Built first: its weights are parameters from the start (lazy ones are uninitialized until then).
    layer = cls(3, return_sequences=True, go_backwards=True, input_shape=(5, 2)).double()
    x = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    names = [n for n, _ in layer.named_parameters()]
    ws = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())

    def f(x, *ws):
        return torch.func.functional_call(layer, dict(zip(names, ws)), (x,), {"mask": mask})

    assert torch.autograd.gradcheck(f, (x, *ws))


# ---------------------------------------------- the layer is its cell's loop


def hand_loop(cell, x, state, mask=None, zero_output=False):
    """An independent loop with Keras's masking rule, written out in full."""
    ys, y_prev = [], None
    for t in range(x.shape[1]):
        y, new = cell(x[:, t], state)
        if mask is not None:
            keep = mask[:, t].unsqueeze(-1)
            y_prev = torch.zeros_like(y) if y_prev is None else y_prev
            y = torch.where(keep, y, torch.zeros_like(y) if zero_output else y_prev)
            if isinstance(new, tuple):
                new = type(new)(*[torch.where(keep, n, o) for n, o in zip(new, state)])
            else:
                new = torch.where(keep, new, state)
        ys.append(y)
        y_prev, state = y, new
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM])
@pytest.mark.parametrize("zero_output", [False, True])
def test_layer_equals_hand_loop_with_mask(cls, zero_output):
    torch.manual_seed(4)
    layer = cls(4, return_sequences=True, return_state=True, zero_output_for_mask=zero_output)
    x = torch.randn(4, 6, 3)
    # right padding, left padding, holes, an empty row
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0], [0] * 6], dtype=torch.bool)
    out, *states = layer(x, mask=mask)
    ref, ref_state = hand_loop(layer.cell, x, layer.cell.get_initial_state(4), mask, zero_output)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(states, rk.rnn.tree_flatten(ref_state))
    assert torch.all(states[0][3] == 0)  # the empty row keeps its (zero) initial state
    if not zero_output:
        torch.testing.assert_close(out[0, 5], out[0, 3])  # padding repeats the last valid output
    else:
        assert torch.all(out[0, 4:] == 0)


def test_lengths_is_right_padded_mask_and_last_output():
    torch.manual_seed(5)
    layer = rk.LSTM(3, return_state=True)
    x = torch.randn(3, 5, 2)
    lengths = torch.tensor([5, 2, 0])
    mask = torch.arange(5)[None] < lengths[:, None]
    a = layer(x, lengths=lengths)
    b = layer(x, mask=mask)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)
    # the last output of a right-padded row is its output at its last valid step
    short = layer(x[1:2, :2])
    torch.testing.assert_close(a[0][1], short[0][0])


def test_unroll_equals_loop_and_go_backwards_reverses():
    torch.manual_seed(6)
    a = rk.GRU(4, return_sequences=True, go_backwards=True, input_shape=(None, 3))
    b = rk.GRU(4, return_sequences=True, go_backwards=True, unroll=True, input_shape=(None, 3))
    b.set_weights(a.get_weights())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(a(x), b(x))
    assert b.kernel_used == "reference" and "unroll" in b.kernel_reason
    # go_backwards == the forward layer on the reversed input (outputs in processing order)
    fwd = rk.GRU(4, return_sequences=True, input_shape=(None, 3))
    fwd.set_weights(a.get_weights())
    torch.testing.assert_close(a(x), fwd(x.flip(1)))


def test_stacked_cells_equal_chained_layers():
    torch.manual_seed(7)
    cells = [rk.LSTMCell(4), rk.GRUCell(3), rk.SimpleRNNCell(2)]
    stacked = rk.RNN(cells, return_sequences=True, return_state=True)
    x = torch.randn(3, 6, 5)
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 0]], dtype=torch.bool)
    out, lstm_state, gru_state, rnn_state = stacked(x, mask=mask)  # one entry per cell, as Keras 3
    assert isinstance(lstm_state, list) and [tuple(s.shape) for s in lstm_state] == [(3, 4), (3, 4)]
    assert tuple(gru_state.shape) == (3, 3) and tuple(rnn_state.shape) == (3, 2)
    y, flat = x, []
    for cell in cells:
        y, *s = rk.RNN(cell, return_sequences=True, return_state=True)(y, mask=mask)
        flat += s
    torch.testing.assert_close(out, y)
    torch.testing.assert_close([*lstm_state, gru_state, rnn_state], flat)


def test_stateful_equals_one_long_call():
    torch.manual_seed(8)
    layer = rk.LSTM(3, return_sequences=True, stateful=True, input_shape=(None, 2))
    whole = rk.LSTM(3, return_sequences=True, input_shape=(None, 2))
    whole.set_weights(layer.get_weights())
    x = torch.randn(2, 8, 2)
    parts = torch.cat([layer(x[:, :3]), layer(x[:, 3:])], dim=1)
    torch.testing.assert_close(parts, whole(x))
    layer.reset_state()
    torch.testing.assert_close(layer(x[:, :3]), whole(x[:, :3]))


def test_initial_state_flat_or_structured():
    torch.manual_seed(9)
    layer = rk.LSTM(3, return_state=True)
    x = torch.randn(2, 4, 2)
    h0, c0 = torch.randn(2, 3), torch.randn(2, 3)
    a = layer(x, initial_state=[h0, c0])
    b = layer(x, initial_state=rk.LSTMState(h0, c0))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)
    ref, st = hand_loop(layer.cell, x, rk.LSTMState(h0, c0))
    torch.testing.assert_close(a[0], ref[:, -1])
    torch.testing.assert_close(a[2], st.c)


# -------------------------------------------------------------- dropout


def test_dropout_masks_once_per_sequence_and_off_in_eval():
    torch.manual_seed(10)
    layer = rk.SimpleRNN(4, dropout=0.5, recurrent_dropout=0.3, seed=123, return_sequences=True, input_shape=(None, 6))
    x = torch.randn(3, 5, 6)
    layer.eval()
    plain = rk.SimpleRNN(4, return_sequences=True, input_shape=(None, 6))
    plain.set_weights(layer.get_weights())
    torch.testing.assert_close(layer(x), plain(x))  # eval: no dropout
    # training: the layer's masks are those of sample_dropout_masks with the same seed,
    # one per sequence, applied at every step of the loop
    layer.train()
    out = layer(x)
    masks = rk.rnn.sample_dropout_masks(layer.cell, 3, x, torch.Generator().manual_seed(123))
    assert set(masks.input.unique().tolist()) <= {0.0, 2.0}
    W, U, b = (w.detach() for w in layer.cell.weights)
    h, ys = torch.zeros(3, 4), []
    for t in range(5):
        h = torch.tanh((x[:, t] * masks.input) @ W + (h * masks.recurrent) @ U + b)
        ys.append(h)
    torch.testing.assert_close(out, torch.stack(ys, 1))


# ------------------------------------------------------ Bidirectional


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_equals_two_layers(merge_mode):
    torch.manual_seed(11)
    bi = rk.Bidirectional(rk.LSTM(3, return_sequences=True, return_state=True), merge_mode=merge_mode)
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    res = bi(x, mask=mask)
    opts = {"return_sequences": True, "return_state": True, "zero_output_for_mask": True, "input_shape": (None, 4)}
    f = rk.LSTM(3, **opts)
    b = rk.LSTM(3, go_backwards=True, **opts)
    ws = bi.get_weights()
    f.set_weights(ws[:3])
    b.set_weights(ws[3:])
    yf, *sf = f(x, mask=mask)
    yb, *sb = b(x, mask=mask)
    yb = yb.flip(1)
    expected = {"concat": lambda: torch.cat([yf, yb], -1), "sum": lambda: yf + yb, "mul": lambda: yf * yb,
                "ave": lambda: (yf + yb) / 2, None: lambda: [yf, yb]}[merge_mode]()
    if merge_mode is None:
        torch.testing.assert_close(res[:2], expected)
        torch.testing.assert_close(res[2:], sf + sb)
    else:
        torch.testing.assert_close(res[0], expected)
        torch.testing.assert_close(res[1:], sf + sb)
    assert len(ws) == 6 and bi.count_params() == 2 * 4 * 3 * (4 + 3 + 1)


# ------------------------------------------------------ weights and counts


@pytest.mark.parametrize("cls,count,shapes", [
    (rk.SimpleRNN, lambda i, u: u * (i + u + 1), lambda i, u: [(i, u), (u, u), (u,)]),
    (rk.GRU, lambda i, u: 3 * u * (i + u + 2), lambda i, u: [(i, 3 * u), (u, 3 * u), (2, 3 * u)]),
    (rk.LSTM, lambda i, u: 4 * u * (i + u + 1), lambda i, u: [(i, 4 * u), (u, 4 * u), (4 * u,)]),
])
def test_keras_weight_shapes_and_counts(cls, count, shapes):
    layer = cls(7, input_shape=(None, 5))
    assert [w.shape for w in layer.get_weights()] == shapes(5, 7)
    assert layer.count_params() == count(5, 7)
    other = cls(7, input_shape=(None, 5))
    other.set_weights(layer.get_weights())
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(other(x), layer(x))


def test_gru_reset_before_count():
    assert rk.GRU(7, reset_after=False, input_shape=(None, 5)).count_params() == 3 * 7 * (5 + 7 + 1)


def test_lstm_forget_bias_is_set_to_one():
    b = rk.LSTM(3, input_shape=(None, 2)).get_weights()[2]
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


# ----------------------------------------------------- companions in numbers


def test_dense_timedistributed_embedding_masking_numbers():
    torch.manual_seed(12)
    d = rk.Dense(3, activation="relu", input_size=4)
    x = torch.randn(2, 5, 4)
    W, b = (w.detach() for w in d.weights)
    torch.testing.assert_close(d(x), torch.relu(x @ W + b))
    td = rk.TimeDistributed(d)
    torch.testing.assert_close(td(x), d(x))
    emb = rk.Embedding(10, 4, mask_zero=True)
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    torch.testing.assert_close(emb(ids), emb.embeddings.detach()[ids])
    assert emb.compute_mask(ids).tolist() == [[True, True, False], [True, False, False]]
    # Masking in a Sequential == the RNN with the explicit mask
    xm = torch.randn(2, 4, 3)
    xm[0, 2:] = 0.0
    rnn = rk.GRU(2, return_sequences=True)
    model = rk.Sequential([rk.Masking(0.0), rnn])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    torch.testing.assert_close(model(xm), rnn(xm, mask=mask))
    # Embedding(mask_zero) in a Sequential masks the padded ids
    lstm = rk.LSTM(3)
    model = rk.Sequential([emb, lstm])
    torch.testing.assert_close(model(ids), lstm(emb(ids), mask=ids != 0))


def test_scratch_cell_from_seed_004_works():
    # Any module with state_size and forward(x, state) -> (y, state) is a cell.
    class ScratchCell(nn.Module):
        state_size = 4

        def __init__(self):
            super().__init__()
            self.Wx = nn.Parameter(torch.randn(3, 4) * 0.1)
            self.Wh = nn.Parameter(torch.randn(4, 4) * 0.1)
            self.b = nn.Parameter(torch.zeros(4))

        def forward(self, x, h):
            h = torch.tanh(h @ self.Wh + x @ self.Wx + self.b)
            return h, h

    cell = ScratchCell()
    layer = rk.RNN(cell, return_sequences=True)
    x = torch.randn(2, 5, 3)
    ref, _ = hand_loop(cell, x, torch.zeros(2, 4))
    torch.testing.assert_close(layer(x), ref)
    assert layer.kernel_used == "reference"


def test_config_round_trip_rebuilds_same_model():
    torch.manual_seed(13)
    model = rk.Sequential([
        rk.Masking(input_shape=(6, 3)),
        rk.Bidirectional(rk.GRU(4, return_sequences=True, reset_after=False)),
        rk.LSTM(5, dropout=0.1),
        rk.Dense(2, activation="softmax"),
    ])
    clone = rk.Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    model.eval()
    clone.eval()
    x = torch.randn(3, 6, 3)
    torch.testing.assert_close(clone(x), model(x))
    assert clone.count_params() == model.count_params()
