"""rnnkit.v1 (TF1's names) checked in numbers: static_rnn (a Python loop of
cell calls) against dynamic_rnn (the RNN layer) and RNN itself, ragged batches
against each row run alone, the TF1 cells against hand-written TF1 steps and
against the Keras cells on mapped weights, and gradcheck in float64."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import rnnkit as rk
from rnnkit import v1
from rnnkit.rnn import tree_flatten

IN = 3


def randomize(cell, scale=0.5, seed=0):
    """Every weight uniform in [-scale, scale]: no zero biases hiding a wrong term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.empty(p.shape, dtype=p.dtype).uniform_(-scale, scale, generator=g))
    return cell


def built64(cell):
    cell.maybe_build((IN,))
    return randomize(cell.double())


CELLS = {
    "BasicRNNCell": lambda: v1.BasicRNNCell(4),
    "BasicLSTMCell": lambda: v1.BasicLSTMCell(4),
    "GRUCell": lambda: v1.GRUCell(4),
    "LSTMCell-peephole-proj": lambda: v1.LSTMCell(5, use_peepholes=True, num_proj=3, cell_clip=0.8),
    "MultiRNNCell": lambda: v1.MultiRNNCell([v1.BasicLSTMCell(4), v1.GRUCell(3), v1.BasicRNNCell(2)]),
    "keras-LSTMCell": lambda: rk.LSTMCell(4),
}


@pytest.fixture(params=list(CELLS), ids=list(CELLS))
def cell(request):
    torch.manual_seed(0)
    return built64(CELLS[request.param]())


def rows(state, i, j):
    """Rows i:j of every tensor in a state structure, keeping the structure."""
    if isinstance(state, torch.Tensor):
        return state[i:j]
    parts = [rows(s, i, j) for s in state]
    return type(state)(*parts) if hasattr(state, "_fields") else type(state)(parts)


def hand_loop(cell, x, state):
    """The definition, spelled out: call the cell once per step."""
    ys = []
    for t in range(x.shape[1]):
        y, state = cell(x[:, t], state)
        ys.append(y)
    return ys, state


def assert_states_close(a, b):
    assert type(a) is type(b)
    for p, q in zip(tree_flatten(a), tree_flatten(b), strict=True):
        torch.testing.assert_close(p, q)


# --------------------------------------------------- the two loops and RNN


def test_static_dynamic_and_rnn_layer_agree(cell):
    x = torch.randn(3, 6, IN, dtype=torch.float64)
    outs_s, state_s = v1.static_rnn(cell, list(x.unbind(1)))
    outs_d, state_d = v1.dynamic_rnn(cell, x)
    out_l, *flat_l = rk.RNN(cell, return_sequences=True, return_state=True)(x)
    torch.testing.assert_close(torch.stack(outs_s, 1), outs_d)
    torch.testing.assert_close(outs_d, out_l)
    assert_states_close(state_s, state_d)
    for p, q in zip(tree_flatten(state_d), tree_flatten(flat_l), strict=True):  # stacked: nested per cell (Keras 3)
        torch.testing.assert_close(p, q)


def test_ragged_batch_equals_each_row_alone(cell):
    x = torch.randn(4, 6, IN, dtype=torch.float64)
    lengths = [6, 3, 0, 1]
    # A non-zero initial state, so "a length-0 row returns its initial state" means something.
    init = rk.rnn.tree_unflatten(
        cell.get_initial_state(4), [torch.randn_like(s) for s in tree_flatten(cell.get_initial_state(4))]
    )
    outs_s, state_s = v1.static_rnn(cell, list(x.unbind(1)), initial_state=init, sequence_length=lengths)
    outs_d, state_d = v1.dynamic_rnn(cell, x, sequence_length=torch.tensor(lengths), initial_state=init)
    torch.testing.assert_close(torch.stack(outs_s, 1), outs_d)
    assert_states_close(state_s, state_d)
    for i, n in enumerate(lengths):
        ys, alone = hand_loop(cell, x[i : i + 1, :n], rows(init, i, i + 1))
        if n:
            torch.testing.assert_close(outs_d[i : i + 1, :n], torch.stack(ys, 1))
        assert bool((outs_d[i, n:] == 0).all()), f"row {i}: outputs past length {n} must be zeros"
        assert_states_close(rows(state_d, i, i + 1), alone)


def test_nan_padding_stays_out_of_outputs_and_gradients():
    cell = built64(v1.BasicLSTMCell(4))
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    lengths = [5, 2, 0]
    x[1, 2:] = float("nan")
    x[2] = float("inf")
    for run in (
        lambda: torch.stack(v1.static_rnn(cell, list(x.unbind(1)), sequence_length=lengths)[0], 1),
        lambda: v1.dynamic_rnn(cell, x, sequence_length=lengths)[0],
    ):
        cell.zero_grad()
        out = run()
        assert bool(torch.isfinite(out).all())
        out.sum().backward()
        assert all(bool(torch.isfinite(p.grad).all()) for p in cell.parameters())


def test_full_lengths_equal_no_lengths(cell):
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    for run in (lambda **kw: v1.dynamic_rnn(cell, x, **kw), lambda **kw: v1.static_rnn(cell, list(x.unbind(1)), **kw)):
        outs_a, state_a = run()
        outs_b, state_b = run(sequence_length=np.array([5, 5, 5]))
        torch.testing.assert_close(torch.stack(list(outs_a), 1), torch.stack(list(outs_b), 1))
        assert_states_close(state_a, state_b)


def test_time_major_is_the_transpose():
    cell = built64(v1.BasicLSTMCell(4))
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    outs, state = v1.dynamic_rnn(cell, x, sequence_length=[5, 2, 4])
    outs_tm, state_tm = v1.dynamic_rnn(cell, x.transpose(0, 1), sequence_length=[5, 2, 4], time_major=True)
    torch.testing.assert_close(outs_tm, outs.transpose(0, 1))
    assert_states_close(state_tm, state)


@pytest.mark.parametrize(
    "lengths", [[6, 1, 1], [-1, 1, 1], [1.5, 1, 1], [1, 2]], ids=["longer", "negative", "non-integer", "batch"]
)
def test_bad_sequence_length_is_a_value_error(lengths):
    cell = v1.BasicRNNCell(2)
    x = torch.randn(3, 5, IN)
    with pytest.raises(ValueError, match="sequence_length"):
        v1.dynamic_rnn(cell, x, sequence_length=lengths)
    with pytest.raises(ValueError, match="sequence_length"):
        v1.static_rnn(cell, list(x.unbind(1)), sequence_length=lengths)


def test_bad_inputs():
    cell = v1.BasicRNNCell(2, input_size=IN)
    with pytest.raises(TypeError, match="dynamic_rnn"):
        v1.static_rnn(cell, torch.zeros(2, 3, IN))
    with pytest.raises(ValueError, match="at least one"):
        v1.static_rnn(cell, [])
    with pytest.raises(ValueError, match=r"inputs\[1\]"):
        v1.static_rnn(cell, [torch.zeros(2, IN), torch.zeros(3, IN)])
    with pytest.raises(TypeError, match="dtype"):
        v1.static_rnn(cell, [torch.zeros(2, IN, dtype=torch.float64)])
    with pytest.raises(TypeError, match="dtype"):
        v1.dynamic_rnn(cell, torch.zeros(2, 1, IN, dtype=torch.float64))
    with pytest.raises(ValueError, match="3-D"):
        v1.dynamic_rnn(cell, torch.zeros(2, IN))
    with pytest.raises(TypeError, match="cell"):
        v1.dynamic_rnn("not a cell", torch.zeros(2, 3, IN))


def test_state_structures_follow_the_cell():
    x = torch.randn(2, 4, IN, dtype=torch.float64)
    lstm = built64(v1.BasicLSTMCell(4))
    outs, state = v1.dynamic_rnn(lstm, x)
    assert isinstance(state, v1.LSTMStateTuple) and state._fields == ("c", "h")
    torch.testing.assert_close(state.h, outs[:, -1])  # h is the output; c the memory
    multi = built64(v1.MultiRNNCell([v1.BasicLSTMCell(4), v1.BasicRNNCell(2)]))
    outs, (s1, s2) = v1.dynamic_rnn(multi, x)
    assert isinstance(s1, v1.LSTMStateTuple) and s1.c.shape == (2, 4)
    torch.testing.assert_close(s2, outs[:, -1])


def test_dtype_argument_and_numpy_inputs():
    cell = v1.BasicRNNCell(3, input_size=IN).double()
    outs, state = v1.dynamic_rnn(cell, np.ones((2, 4, IN)), dtype=torch.float64)
    assert outs.dtype == torch.float64
    outs_s, _ = v1.static_rnn(cell, [np.ones((2, IN))] * 4, dtype=torch.float64)
    torch.testing.assert_close(torch.stack(outs_s, 1), outs)


# ------------------------------------------------------------ the seed's code


X0_BATCH = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 1]])
X1_BATCH = np.array([[9, 8, 7], [0, 0, 0], [6, 5, 4], [3, 2, 1]])


def test_seed_static_rnn_two_steps_follow_the_seed_formula():
    torch.manual_seed(42)
    basic_cell = v1.BasicRNNCell(num_units=5)
    (y0, y1), states = v1.static_rnn(basic_cell, [X0_BATCH, X1_BATCH], dtype=torch.float32)
    assert y0.shape == y1.shape == (4, 5)
    # Y_t = tanh([X_t, Y_{t-1}] [W_x; W_y] + b), with Y_{-1} = 0.
    w = torch.cat([basic_cell.kernel, basic_cell.recurrent_kernel]).detach().double()
    b = basic_cell.bias.detach().double()
    x0, x1 = torch.tensor(X0_BATCH, dtype=torch.float64), torch.tensor(X1_BATCH, dtype=torch.float64)
    e0 = torch.tanh(torch.cat([x0, torch.zeros(4, 5, dtype=torch.float64)], 1) @ w + b)
    e1 = torch.tanh(torch.cat([x1, e0], 1) @ w + b)
    torch.testing.assert_close(y0.double(), e0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y1.double(), e1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(states, y1)
    # The same through dynamic_rnn on the stacked (4, 2, 3) batch.
    outputs, states_d = v1.dynamic_rnn(basic_cell, np.stack([X0_BATCH, X1_BATCH], axis=1), dtype=torch.float32)
    assert outputs.shape == (4, 2, 5)
    torch.testing.assert_close(outputs[:, 0], y0)
    torch.testing.assert_close(outputs[:, 1], y1)
    torch.testing.assert_close(states_d, states)


def test_seed_three_layer_relu_multirnncell():
    torch.manual_seed(0)
    n_neurons, n_layers = 100, 3
    layers = [v1.BasicRNNCell(num_units=n_neurons, activation="relu") for _ in range(n_layers)]
    multi_layer_cell = v1.MultiRNNCell(layers)
    x = torch.randn(5, 20, 1)
    outputs, states = v1.dynamic_rnn(multi_layer_cell, x, dtype=torch.float32)
    assert outputs.shape == (5, 20, n_neurons) and len(states) == n_layers
    # Hand loop of the seed's formula, layer after layer within each step.
    hs = [torch.zeros(5, n_neurons) for _ in layers]
    for t in range(20):
        inp = x[:, t]
        for k, c in enumerate(layers):
            hs[k] = torch.relu(inp @ c.kernel + hs[k] @ c.recurrent_kernel + c.bias)
            inp = hs[k]
        torch.testing.assert_close(outputs[:, t], inp, rtol=1e-5, atol=1e-5)
    for s, h in zip(states, hs):
        torch.testing.assert_close(s, h, rtol=1e-5, atol=1e-5)


def test_seed_lstm_static_rnn_over_unstacked_steps():
    # X_seqs = tf.unstack(tf.transpose(X, perm=[1, 0, 2])); static_rnn(BasicLSTMCell(5), X_seqs)
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3)
    basic_cell = v1.BasicLSTMCell(num_units=5)
    output_seqs, states = v1.static_rnn(basic_cell, list(x.transpose(0, 1).unbind(0)))
    outputs = torch.stack(output_seqs).transpose(0, 1)
    assert basic_cell.kernel.shape[1] == basic_cell.recurrent_kernel.shape[1] == 20  # the seed's (8, 20) kernel, split
    torch.testing.assert_close(outputs, v1.dynamic_rnn(basic_cell, x)[0])
    assert states.c.shape == states.h.shape == (4, 5)


# ------------------------------------------------------------- the TF1 cells


def tf1_to_keras_lstm(w, u):
    """Last-axis blocks i, j, f, o (TF1) -> i, f, c(=j), o (Keras)."""
    i, j, f, o = w.split(u, dim=-1)
    return torch.cat([i, f, j, o], dim=-1)


def test_basic_lstm_forget_bias_equals_keras_unit_forget_bias():
    torch.manual_seed(0)
    u = 4
    tf1 = v1.BasicLSTMCell(u, forget_bias=1.0, input_size=IN).double()
    with torch.no_grad():
        tf1.bias.zero_()  # TF1's initial bias; the 1.0 is added at run time
    keras = rk.LSTMCell(u, input_size=IN).double()  # unit_forget_bias: the stored f bias is 1.0
    bias = keras.bias.detach()
    assert bool((bias[u : 2 * u] == 1).all()) and float(bias.abs().sum()) == u
    keras.set_weights(
        [tf1_to_keras_lstm(w.detach(), u).numpy() for w in (tf1.kernel, tf1.recurrent_kernel)] + [bias.numpy()]
    )
    x = torch.randn(3, 6, IN, dtype=torch.float64)
    outs_tf1, state_tf1 = v1.dynamic_rnn(tf1, x)
    outs_k, h, c = rk.RNN(keras, return_sequences=True, return_state=True)(x)
    torch.testing.assert_close(outs_tf1, outs_k)
    torch.testing.assert_close(state_tf1.c, c)
    torch.testing.assert_close(state_tf1.h, h)


def test_v1_lstm_moves_to_keras_lstm_with_forget_bias_folded_in():
    # docs/tf1.md: reorder i, j, f, o -> i, f, j, o and add forget_bias to the f block of the bias.
    u = 4
    tf1 = randomize(v1.BasicLSTMCell(u, forget_bias=0.7, input_size=IN).double())
    keras = rk.LSTMCell(u, input_size=IN).double()
    bias = tf1_to_keras_lstm(tf1.bias.detach(), u).clone()
    bias[u : 2 * u] += 0.7
    keras.set_weights(
        [tf1_to_keras_lstm(w.detach(), u).numpy() for w in (tf1.kernel, tf1.recurrent_kernel)] + [bias.numpy()]
    )
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    outs, state = v1.dynamic_rnn(tf1, x, sequence_length=[5, 1, 3])
    outs_k, h, c = rk.RNN(keras, return_sequences=True, return_state=True, zero_output_for_mask=True)(
        x, lengths=[5, 1, 3]
    )
    torch.testing.assert_close(outs, outs_k)
    torch.testing.assert_close(state.c, c)
    torch.testing.assert_close(state.h, h)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def tf1_lstm_step(x, c, m, K, b, u, forget_bias, peep=None, cell_clip=None, P=None, proj_clip=None):
    """TF1's LSTMCell.call in numpy: one kernel K over [x, m_prev], gates i, j, f, o."""
    i, j, f, o = np.split(np.concatenate([x, m], 1) @ K + b, 4, axis=1)
    if peep is not None:
        wf, wi, wo = peep
        c = sigmoid(f + forget_bias + wf * c) * c + sigmoid(i + wi * c) * np.tanh(j)
    else:
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
    if cell_clip is not None:
        c = np.clip(c, -cell_clip, cell_clip)
    m = (sigmoid(o + wo * c) if peep is not None else sigmoid(o)) * np.tanh(c)
    if P is not None:
        m = m @ P
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return c, m


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"use_peepholes": True},
        {"num_proj": 3},
        {"use_peepholes": True, "num_proj": 3, "cell_clip": 0.3, "proj_clip": 0.2, "forget_bias": 0.5},
    ],
    ids=["plain", "peepholes", "projection", "all"],
)
def test_lstm_cell_matches_tf1_step_on_tf1_weights(kw):
    rng = np.random.default_rng(0)
    u, h_depth = 5, kw.get("num_proj") or 5
    # TF1's variables: one kernel over [x, m], then peepholes, then the projection.
    K = rng.uniform(-1, 1, (IN + h_depth, 4 * u))
    b = rng.uniform(-1, 1, 4 * u)
    peep = [rng.uniform(-1, 1, u) for _ in range(3)] if kw.get("use_peepholes") else None
    P = rng.uniform(-1, 1, (u, h_depth)) if kw.get("num_proj") else None
    cell = v1.LSTMCell(u, input_size=IN, **kw).double()
    cell.set_weights([K[:IN], K[IN:], b] + (peep or []) + ([P] if P is not None else []))

    x = rng.uniform(-2, 2, (3, 4, IN))
    outs, state = v1.static_rnn(cell, list(torch.from_numpy(x).unbind(1)))
    c, m = np.zeros((3, u)), np.zeros((3, h_depth))
    fb = kw.get("forget_bias", 1.0)
    for t in range(4):
        c, m = tf1_lstm_step(x[:, t], c, m, K, b, u, fb, peep, kw.get("cell_clip"), P, kw.get("proj_clip"))
        np.testing.assert_allclose(outs[t].detach().numpy(), m, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.c.detach().numpy(), c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.h.detach().numpy(), m, rtol=1e-12, atol=1e-12)
    if "cell_clip" in kw:  # the clips did act
        assert np.abs(c).max() == pytest.approx(0.3) and np.abs(m).max() == pytest.approx(0.2)
    assert cell.output_size == h_depth and cell.state_size == v1.LSTMStateTuple(u, h_depth)


def test_gru_cell_equals_keras_gru_reset_before():
    torch.manual_seed(0)
    u = 4
    tf1 = randomize(v1.GRUCell(u, input_size=IN).double())
    keras = rk.GRUCell(u, reset_after=False, input_size=IN).double()

    def rup_to_zrh(w):  # TF1's r, u | c -> Keras's z(=u), r, h(=c)
        r, z, c = w.split(u, dim=-1)
        return torch.cat([z, r, c], dim=-1).detach().numpy()

    keras.set_weights([rup_to_zrh(w) for w in (tf1.kernel, tf1.recurrent_kernel, tf1.bias)])
    x = torch.randn(3, 6, IN, dtype=torch.float64)
    outs, h = v1.dynamic_rnn(tf1, x)
    outs_k, h_k = rk.RNN(keras, return_sequences=True, return_state=True)(x)
    torch.testing.assert_close(outs, outs_k)
    torch.testing.assert_close(h, h_k)


def test_tf1_defaults():
    torch.manual_seed(0)
    gru = v1.GRUCell(3, input_size=2)
    assert gru.bias.tolist() == [1.0] * 6 + [0.0] * 3  # TF1: gate bias 1, candidate bias 0
    rnn = v1.BasicRNNCell(3, input_size=2)
    assert isinstance(rnn, rk.SimpleRNNCell) and rnn.name.startswith("basic_rnn_cell")
    assert type(rnn.core_cell()) is rk.SimpleRNNCell  # so the fused kernels run it
    x, h = torch.randn(4, 2), torch.randn(4, 3)
    torch.testing.assert_close(rnn(x, h)[0], torch.tanh(x @ rnn.kernel + h @ rnn.recurrent_kernel))  # None -> tanh
    lstm = v1.LSTMCell(3, use_peepholes=True, num_proj=2, input_size=2)
    assert [tuple(w.shape) for w in lstm.weights] == [(2, 12), (2, 12), (12,), (3,), (3,), (3,), (3, 2)]
    assert lstm.bias.abs().sum() == 0
    with pytest.raises(TypeError, match="state_is_tuple"):
        v1.BasicLSTMCell(3, state_is_tuple="no")
    with pytest.raises(TypeError, match="forget_bias"):
        v1.LSTMCell(3, forget_bias="1")


# ---------------------------------------------------------------- gradients


def test_gradcheck_through_dynamic_rnn_with_lengths():
    torch.manual_seed(0)
    cell = randomize(v1.LSTMCell(3, use_peepholes=True, num_proj=2, input_size=2).double())

    class Run(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def forward(self, x, c0, h0):
            outputs, state = v1.dynamic_rnn(
                self.cell, x, sequence_length=[4, 2, 0], initial_state=v1.LSTMStateTuple(c0, h0)
            )
            return outputs, state.c, state.h

    run = Run(cell)
    names = [f"cell.{n}" for n, _ in cell.named_parameters()]

    def f(x, c0, h0, *params):
        return functional_call(run, dict(zip(names, params)), (x, c0, h0))

    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(f, (x, c0, h0, *params))


# ------------------------------------------------------------ end to end


@pytest.mark.slow
def test_seed_time_series_model_trains_and_generates():
    # Seed 003's forecaster: OutputProjectionWrapper(BasicRNNCell(100, relu), 1) through dynamic_rnn, Adam, MSE.
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t_min, t_max, resolution, n_steps = 0, 30, 0.1, 20

    def time_series(t):
        return t * np.sin(t) / 3 + 2 * np.sin(t * 5)

    def next_batch(batch_size):
        t0 = rng.random((batch_size, 1)) * (t_max - t_min - n_steps * resolution)
        ys = time_series(t0 + np.arange(0.0, n_steps + 1) * resolution)
        return ys[:, :-1].reshape(-1, n_steps, 1), ys[:, 1:].reshape(-1, n_steps, 1)

    cell = v1.OutputProjectionWrapper(v1.BasicRNNCell(num_units=100, activation="relu"), output_size=1)
    optimizer = torch.optim.Adam(cell.parameters(), lr=1e-3)
    losses = []
    for _ in range(100):
        x_batch, y_batch = next_batch(50)
        outputs, _ = v1.dynamic_rnn(cell, x_batch)
        loss = ((outputs - torch.as_tensor(y_batch, dtype=torch.float32)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10]), (losses[:10], losses[-10:])

    # The "creative RNN": start from zeros and feed each prediction back in.
    sequence = [0.0] * n_steps
    with torch.no_grad():
        for _ in range(30):
            y_pred, _ = v1.dynamic_rnn(cell, np.array(sequence[-n_steps:]).reshape(1, n_steps, 1))
            sequence.append(float(y_pred[0, -1, 0]))
    assert len(sequence) == n_steps + 30 and np.isfinite(sequence).all()


# ------------------------------------------------- the fused kernels run v1 cells


FUSED = {
    "GRUCell": lambda: v1.GRUCell(4),
    "BasicLSTMCell": lambda: v1.BasicLSTMCell(4, forget_bias=0.7),
    "LSTMCell": lambda: v1.LSTMCell(4, forget_bias=1.3),
    "MultiRNNCell": lambda: v1.MultiRNNCell([v1.BasicLSTMCell(4), v1.GRUCell(3), v1.BasicRNNCell(2)]),
}


def reference(cell, x, init=None, lengths=None):
    """The readable loop: RNN with unroll=True calls the v1 cell's own TF1 step at each time step."""
    layer = rk.RNN(cell, return_sequences=True, return_state=True, zero_output_for_mask=True, unroll=True)
    out, *flat = layer(x, initial_state=init, lengths=lengths)
    return out, rk.rnn.tree_unflatten(cell.get_initial_state(x.shape[0], dtype=x.dtype), rk.rnn.tree_flatten(flat))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(FUSED))
def test_v1_gru_and_lstm_run_fused_and_match_their_own_step(name, dtype):
    torch.manual_seed(0)
    cell = FUSED[name]()
    cell.maybe_build((IN,))
    cell = randomize(cell.to(dtype))
    x = torch.randn(4, 20, IN, dtype=dtype)
    lengths = [20, 7, 0, 13]
    init = rk.rnn.tree_unflatten(
        cell.get_initial_state(4), [torch.randn_like(s) for s in tree_flatten(cell.get_initial_state(4))]
    )
    tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    for kw in ({}, {"sequence_length": lengths, "initial_state": init}):
        outs, state = v1.dynamic_rnn(cell, x, **kw)
        assert cell.kernel_used.split(":")[0] in ("native", "torch-onednn"), (cell.kernel_used, cell.kernel_reason)
        assert "fused" in cell.kernel_reason or "oneDNN" in cell.kernel_reason
        outs_s, state_s = v1.static_rnn(cell, list(x.unbind(1)), **kw)
        assert cell.kernel_used.split(":")[0] in ("native", "torch-onednn"), (cell.kernel_used, cell.kernel_reason)
        ref_outs, ref_state = reference(cell, x, kw.get("initial_state"), kw.get("sequence_length"))
        torch.testing.assert_close(outs, ref_outs, **tol)
        torch.testing.assert_close(torch.stack(outs_s, 1), ref_outs, **tol)
        assert_states_close(state, state_s)
        assert type(state) is type(ref_state)
        for p, q in zip(tree_flatten(state), tree_flatten(ref_state), strict=True):
            torch.testing.assert_close(p, q, **tol)


@pytest.mark.parametrize("name", list(FUSED))
def test_v1_fused_gradients_equal_the_reference_loop(name):
    torch.manual_seed(0)
    cell = built64(FUSED[name]())
    x = torch.randn(3, 6, IN, dtype=torch.float64, requires_grad=True)
    lengths = [6, 2, 4]
    grads = []
    for run in (
        lambda: v1.dynamic_rnn(cell, x, sequence_length=lengths),
        lambda: reference(cell, x, lengths=lengths),
    ):
        cell.zero_grad()
        x.grad = None
        outs, state = run()
        (outs.square().sum() + sum(s.sum() for s in tree_flatten(state))).backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in cell.parameters()])
    assert cell.kernel_used != "reference"
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "make", [lambda: v1.GRUCell(2), lambda: v1.BasicLSTMCell(2, forget_bias=0.6)], ids=["GRU", "LSTM"]
)
def test_gradcheck_through_the_fused_v1_path(make):
    torch.manual_seed(0)
    cell = make()
    cell.maybe_build((2,))
    cell = randomize(cell.double())
    names = [n for n, _ in cell.named_parameters()]

    class Run(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            outputs, state = v1.dynamic_rnn(self.cell, x, sequence_length=[3, 1])
            return (outputs, *tree_flatten(state))

    run = Run(cell)

    def g(x, *params):
        return functional_call(run, {f"cell.{n}": p for n, p in zip(names, params)}, (x,))

    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(g, (x, *params))
    assert cell.kernel_used.startswith("native:")


@pytest.mark.parametrize(
    "kw, feature",
    [({"use_peepholes": True}, "use_peepholes"), ({"cell_clip": 0.5}, "cell_clip"), ({"num_proj": 2}, "num_proj")],
    ids=["peepholes", "cell_clip", "num_proj"],
)
def test_tf1_only_lstm_features_say_why_they_run_the_reference_loop(kw, feature, caplog):
    cell = v1.LSTMCell(4, **kw)
    x = torch.randn(2, 5, IN)
    with caplog.at_level("DEBUG", logger="rnnkit.kernels"):
        v1.dynamic_rnn(cell, x)
    assert cell.core_cell() is None and cell.tf1_features() == [feature]
    assert cell.kernel_used == "reference" and feature in cell.kernel_reason and "own step" in cell.kernel_reason
    assert any(feature in r.getMessage() for r in caplog.records)
    multi = v1.MultiRNNCell([v1.GRUCell(3), v1.LSTMCell(4, **kw)])
    v1.static_rnn(multi, list(x.unbind(1)))
    assert multi.kernel_used == "reference" and multi.kernel_reason.startswith("cells[1]: ")


def test_a_flat_initial_state_is_in_tf1_order_on_the_fused_path():
    cell = built64(v1.BasicLSTMCell(4))
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    c0, h0 = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    outs, state = v1.dynamic_rnn(cell, x, initial_state=[c0, h0])  # TF1's flat order: c, then h
    ref, ref_state = reference(cell, x, v1.LSTMStateTuple(c0, h0))
    assert cell.kernel_used.startswith("native:")
    torch.testing.assert_close(outs, ref)
    assert_states_close(state, ref_state)


def test_core_cell_is_the_same_math_on_reordered_weights():
    u = 4
    lstm = randomize(v1.BasicLSTMCell(u, forget_bias=0.7, input_size=IN).double())
    core = lstm.core_cell()
    assert type(core) is rk.LSTMCell and list(core.parameters()) == []  # views of lstm's parameters, no copy kept
    torch.testing.assert_close(core.kernel, tf1_to_keras_lstm(lstm.kernel, u))
    bias = tf1_to_keras_lstm(lstm.bias, u).clone()
    bias[u : 2 * u] += 0.7
    torch.testing.assert_close(core.bias, bias)
    x, c, h = (torch.randn(3, n, dtype=torch.float64) for n in (IN, u, u))
    y, (c1, h1) = lstm(x, v1.LSTMStateTuple(c, h))
    y_core, (h_core, c_core) = core(x, rk.LSTMState(h, c))
    torch.testing.assert_close(y, y_core)
    torch.testing.assert_close(c1, c_core)
    gru = randomize(v1.GRUCell(u, input_size=IN).double())
    core = gru.core_cell()
    assert type(core) is rk.GRUCell and not core.reset_after
    torch.testing.assert_close(core(x, h)[0], gru(x, h)[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda: v1.GRUCell(4, input_size=IN),
        lambda: v1.BasicLSTMCell(4, forget_bias=0.3, input_size=IN),
        lambda: v1.LSTMCell(4, use_peepholes=True, num_proj=2, input_size=IN),
    ],
    ids=["GRU", "BasicLSTM", "LSTM-peephole-proj"],
)
def test_weights_round_trip_in_tf1_layout(make):
    cell = make()
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, w.shape).astype(np.float32) for w in cell.get_weights()]
    cell.set_weights(arrays)
    for a, b in zip(cell.get_weights(), arrays, strict=True):
        np.testing.assert_array_equal(a, b)  # the stored parameters are TF1's, untouched by the core form
    v1.dynamic_rnn(cell, torch.randn(2, 3, IN))
    for a, b in zip(cell.get_weights(), arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    assert list(cell.state_dict()) == [n for n, _ in cell.named_parameters()][: len(arrays)]


def test_a_plain_callable_cell_runs_in_both_functions():
    class Accumulate:  # not a module: state_size and cell(x, state) are all a cell needs
        state_size = IN

        def __call__(self, x, state):
            return x + state, x + state

    x = torch.randn(2, 4, IN, dtype=torch.float64)
    outs, state = v1.dynamic_rnn(Accumulate(), x, sequence_length=[4, 2])
    outs_s, state_s = v1.static_rnn(Accumulate(), list(x.unbind(1)), sequence_length=[4, 2])
    torch.testing.assert_close(
        outs, x.cumsum(1) * (torch.arange(4)[None, :, None] < torch.tensor([4, 2])[:, None, None])
    )
    torch.testing.assert_close(torch.stack(outs_s, 1), outs)
    torch.testing.assert_close(state, state_s)
    torch.testing.assert_close(state, torch.stack([x[0].sum(0), x[1, :2].sum(0)]))


# ------------------------------------------------------- TF1's other forms (issue 13)


def test_concatenated_lstm_state_runs_fused_and_equals_the_tuple_state():
    torch.manual_seed(0)
    x = torch.randn(3, 6, IN, dtype=torch.float64)
    lengths = [6, 2, 0]
    tup = built64(v1.BasicLSTMCell(4, forget_bias=0.7))
    cat = v1.BasicLSTMCell(4, forget_bias=0.7, state_is_tuple=False, input_size=IN).double()
    cat.set_weights(tup.get_weights())
    assert cat.state_size == 8 and cat.zero_state(3, torch.float64).shape == (3, 8)
    outs, state = v1.dynamic_rnn(tup, x, sequence_length=lengths)
    outs_c, state_c = v1.dynamic_rnn(cat, x, sequence_length=lengths)
    assert cat.kernel_used.startswith("native:")
    torch.testing.assert_close(outs_c, outs)
    torch.testing.assert_close(state_c, torch.cat([state.c, state.h], 1))  # TF1's [c, h]
    stack = v1.MultiRNNCell([cat, randomize(v1.GRUCell(2, input_size=4).double())], state_is_tuple=False)
    outs_s, state_s = v1.dynamic_rnn(stack, x, sequence_length=lengths)
    assert stack.kernel_used == "native:LSTMCell+native:GRUCell" and state_s.shape == (3, 8 + 2)
    ref, ref_state = reference(stack, x, stack.zero_state(3, torch.float64))
    torch.testing.assert_close(outs_s[0], ref[0])
    torch.testing.assert_close(state_s[0], ref_state[0])


def test_basic_rnn_cell_is_a_class_that_runs_fused_and_a_subclass_runs_its_own_step():
    x = torch.randn(2, 4, IN)
    cell = v1.BasicRNNCell(3)
    outs, _ = v1.dynamic_rnn(cell, x)
    assert cell.kernel_used == "native:SimpleRNNCell"

    class Doubled(v1.BasicRNNCell):  # TF1 code subclasses cells
        def step(self, xw_t, h, dropout=None):
            y, h = super().step(xw_t, h, dropout)
            return 2 * y, h

    twin = Doubled(3, input_size=IN)
    twin.set_weights(cell.get_weights())
    outs_2, _ = v1.dynamic_rnn(twin, x)
    assert twin.kernel_used == "reference"
    torch.testing.assert_close(outs_2[:, 0], 2 * outs[:, 0])


def test_bidirectional_functions_are_a_forward_and_a_row_reversed_run():
    torch.manual_seed(0)
    x = torch.randn(3, 5, IN, dtype=torch.float64)
    lengths = [5, 3, 1]
    fw, bw = built64(v1.GRUCell(4)), built64(v1.BasicLSTMCell(2))
    (y_fw, y_bw), (s_fw, s_bw) = v1.bidirectional_dynamic_rnn(fw, bw, x, lengths)
    assert fw.kernel_used.startswith("native:") and bw.kernel_used.startswith("native:")
    torch.testing.assert_close((y_fw, s_fw), v1.dynamic_rnn(fw, x, lengths))
    for row, n in enumerate(lengths):  # the backward cell reads row's valid steps last to first
        y_row, s_row = v1.dynamic_rnn(bw, x[row : row + 1, :n].flip(1))
        torch.testing.assert_close(y_bw[row, :n], y_row[0].flip(0))
        assert bool((y_bw[row, n:] == 0).all())
        assert_states_close(v1.LSTMStateTuple(s_bw.c[row : row + 1], s_bw.h[row : row + 1]), s_row)
    outs, s_fw2, s_bw2 = v1.static_bidirectional_rnn(fw, bw, list(x.unbind(1)), sequence_length=lengths)
    torch.testing.assert_close(torch.stack(outs, 1), torch.cat([y_fw, y_bw], 2))
    torch.testing.assert_close(s_fw2, s_fw)
    (y_fw_t, y_bw_t), _ = v1.bidirectional_dynamic_rnn(fw, bw, x.transpose(0, 1), lengths, time_major=True)
    torch.testing.assert_close(y_bw_t, y_bw.transpose(0, 1))


def test_static_state_saving_rnn_starts_from_and_saves_named_states():
    class Saver:
        def __init__(self, start):
            self.start, self.saved = start, {}

        def state(self, name):
            return self.start[name]

        def save_state(self, name, value):
            self.saved[name] = value

    cell = built64(v1.LSTMCell(4))
    x = torch.randn(2, 3, IN, dtype=torch.float64)
    c0, h0 = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    saver = Saver({"c": c0, "h": h0})
    outs, state = v1.static_state_saving_rnn(cell, list(x.unbind(1)), saver, ("c", "h"))
    ref, ref_state = v1.static_rnn(cell, list(x.unbind(1)), initial_state=v1.LSTMStateTuple(c0, h0))
    torch.testing.assert_close(outs, ref)
    assert saver.saved["c"] is state.c and saver.saved["h"] is state.h
    assert_states_close(state, ref_state)
    with pytest.raises(ValueError, match="state_name"):
        v1.static_state_saving_rnn(cell, list(x.unbind(1)), Saver({"c": c0}), "c")
    with pytest.raises(TypeError, match="state_saver"):
        v1.static_state_saving_rnn(cell, list(x.unbind(1)), object(), "c")


def test_other_step_forms_run_the_readable_loop_and_say_why():
    class PairCell(nn.Module):  # tuple inputs and outputs
        state_size, output_size = 2, (2, 2)

        def forward(self, x_t, state):
            a, b = x_t
            return (a + state, b * 2), state + a

    cell = PairCell()
    a, b = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    (ya, yb), state = v1.dynamic_rnn(cell, (a, b), sequence_length=[4, 2, 0])
    assert cell.kernel_used == "reference" and "nested" in cell.kernel_reason
    torch.testing.assert_close(yb[0], b[0] * 2)
    assert bool((yb[1, 2:] == 0).all()) and bool((state[2] == 0).all())
    torch.testing.assert_close(state[0], a[0].sum(0))
    empty, state0 = v1.dynamic_rnn(v1.GRUCell(3), torch.zeros(2, 0, IN))
    assert empty.shape == (2, 0, 3) and bool((state0 == 0).all())


def test_cell_dtype_and_tf1_initial_state():
    cell = v1.LSTMCell(4, num_proj=2, dtype=torch.float64, state_is_tuple=False)
    x = torch.zeros(3, 5, IN, dtype=torch.float64)
    outs, state = v1.dynamic_rnn(cell, x)
    assert cell.kernel.dtype == torch.float64 and state.shape == (3, 6)
    assert cell.get_initial_state(inputs=x).shape == (3, 6)
    assert cell.get_initial_state(None, 2, torch.float64).dtype == torch.float64
    assert cell.get_config()["dtype"] == "float64" and cell.get_config()["num_unit_shards"] is None
    with pytest.raises(ValueError, match="only supports floating"):
        v1.GRUCell(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="batch_size and dtype cannot be None"):
        cell.get_initial_state()
    with pytest.raises(ValueError, match="num_unit_shards"):
        v1.LSTMCell(3, num_unit_shards=0)
    with pytest.raises(TypeError):  # TF1's order: a fourth positional argument is the initializer, not the name
        v1.GRUCell(3, None, None, "kernel_init")


def test_a_custom_rnn_cell_subclass():
    class MinimalRNNCell(v1.RNNCell):
        def __init__(self, units):
            super().__init__()
            self.units = units

        state_size = property(lambda self: self.units)
        output_size = property(lambda self: self.units)

        def build(self, inputs_shape):
            self.kernel = self.add_weight("kernel", [inputs_shape[-1] + self.units, self.units])
            self.built = True

        def call(self, inputs, state):
            out = torch.tanh(torch.cat([inputs, state], 1) @ self.kernel)
            return out, out

    cell = MinimalRNNCell(3)
    x = torch.randn(2, 4, IN)
    outs, state = v1.dynamic_rnn(cell, x)
    assert [n for n, _ in cell.named_parameters()] == ["kernel"] and cell.kernel.shape == (IN + 3, 3)
    h = cell.zero_state(2, torch.float32)
    for t in range(4):
        h, _ = cell(x[:, t], h)
    torch.testing.assert_close(outs[:, -1], h)
    torch.testing.assert_close(state, h)


def test_layer_norm_lstm_cell():
    torch.manual_seed(0)
    plain = built64(v1.LSTMCell(4, use_peepholes=True))
    same = v1.LayerNormLSTMCell(4, use_peepholes=True, input_size=IN).double()
    same.set_weights(plain.get_weights())
    x, c, h = (torch.randn(3, n, dtype=torch.float64) for n in (IN, 4, 4))
    torch.testing.assert_close(same(x, (c, h))[0], plain(x, (c, h))[0])  # layer_norm=False: LSTMCell
    ln = v1.LayerNormLSTMCell(4, layer_norm=True, norm_gain=1.5, norm_shift=0.1, input_size=IN).double()
    assert [tuple(w.shape) for w in ln.weights][-2:] == [(5, 4), (5, 4)]
    y, (c1, _) = ln(x, (c, h))

    def norm(z):
        return 1.5 * torch.nn.functional.layer_norm(z, (4,), eps=1e-12) + 0.1

    i, j, f, o = (x @ ln.kernel + h @ ln.recurrent_kernel).split(4, dim=-1)  # no bias under layer norm, as TF1
    c_ref = norm(torch.sigmoid(norm(f) + 1.0) * c + torch.sigmoid(norm(i)) * torch.tanh(norm(j)))
    torch.testing.assert_close(c1, c_ref)
    torch.testing.assert_close(y, torch.sigmoid(norm(o)) * torch.tanh(c_ref))
    outs, _ = v1.dynamic_rnn(ln, torch.randn(3, 5, IN, dtype=torch.float64))
    assert ln.kernel_used == "reference"


def test_clips_biases_and_loop_dtypes_are_checked():
    for arg in ("cell_clip", "proj_clip", "forget_bias"):
        with pytest.raises(ValueError, match=f"{arg}: expected a finite"):
            v1.LSTMCell(3, num_proj=2, **{arg: float("inf")})
    cell = v1.BasicRNNCell(2)
    with pytest.raises(ValueError, match="dtype: RNN cell only supports floating"):
        v1.static_rnn(cell, [torch.zeros(2, IN)], dtype=torch.int32)
    with pytest.raises(TypeError, match="dtype"):
        v1.dynamic_rnn(cell, torch.zeros(2, 3, IN), dtype="not a dtype")


def test_a_cell_dtype_is_kept_when_data_of_another_dtype_arrives():
    cell = v1.GRUCell(3, dtype=torch.float64)
    with pytest.raises(TypeError, match="dtype"):
        v1.dynamic_rnn(cell, torch.zeros(2, 4, IN))  # float32 data: TF1 refuses too
    assert cell.kernel.dtype == torch.float64
    outs, _ = v1.dynamic_rnn(cell, torch.zeros(2, 4, IN), dtype=torch.float64)
    assert outs.dtype == torch.float64


def test_concatenated_stack_in_rk_rnn_runs_the_reference_loop_and_says_why():
    """A MultiRNNCell(state_is_tuple=False) handed straight to rk.RNN: one concatenated state, no fused kernel."""
    torch.manual_seed(0)
    cells = [v1.BasicLSTMCell(4, state_is_tuple=False), v1.BasicLSTMCell(4, state_is_tuple=False)]
    stack = v1.MultiRNNCell(cells, state_is_tuple=False)
    x = torch.randn(2, 5, 3)
    layer = rk.RNN(stack, return_sequences=True)
    y = layer(x)
    assert layer.kernel_used == "reference" and "state_is_tuple=False" in layer.kernel_reason
    outputs, _ = v1.dynamic_rnn(stack, x)  # v1 cuts the state per cell and runs fused
    assert stack.kernel_used.startswith("native:")
    torch.testing.assert_close(outputs, y, rtol=1e-5, atol=1e-6)


def test_dtype_by_name_as_tf1_accepts_it():
    """TF1 takes dtype names ("float32") as well as dtypes; the numbers are the same."""
    cell = v1.GRUCell(3)
    x = torch.randn(2, 4, 2)
    by_name, _ = v1.dynamic_rnn(cell, x, dtype="float32")
    by_dtype, _ = v1.dynamic_rnn(cell, x, dtype=torch.float32)
    torch.testing.assert_close(by_name, by_dtype, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(12))
def test_raw_rnn_equals_dynamic_rnn_over_many_weight_draws(seed):
    """raw_rnn (the readable loop, driven by loop_fn) and dynamic_rnn (the fused kernel) agree to float32 precision,
    outputs, final state and every gradient, whatever the weights (the upstream port checks one draw at 1e-6)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    max_time, batch, depth = 10, 16, 4
    inputs = torch.tensor(rng.standard_normal((max_time, batch, depth)), dtype=torch.float32, requires_grad=True)
    lengths = torch.as_tensor(rng.integers(0, max_time, size=batch))
    lengths[0] = max_time
    cell = v1.LSTMCell(3)
    cell.maybe_build((depth,))

    def loop_fn(time_, cell_output, cell_state, loop_state):
        state = cell.zero_state(batch, torch.float32) if cell_output is None else cell_state
        finished = time_ >= lengths
        x = torch.zeros(batch, depth) if bool(finished.all()) else inputs[time_]
        return finished, x, state, cell_output, None

    outputs, state, _ = v1.raw_rnn(cell, loop_fn)
    outputs_d, state_d = v1.dynamic_rnn(cell, inputs, time_major=True, dtype=torch.float32, sequence_length=lengths)
    wrt = [inputs, *cell.parameters()]
    grads = torch.autograd.grad(outputs.sum() + sum(s.sum() for s in state), wrt)
    grads_d = torch.autograd.grad(outputs_d.sum() + sum(s.sum() for s in state_d), wrt)
    for a, b in [(outputs, outputs_d), *zip(state, state_d), *zip(grads, grads_d)]:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
