"""Cell wrappers checked in numbers: MultiRNNCell against separate stacked
layers, the projection against a matmul of the plain cell's outputs, dropout
masks seen through an identity cell, DeviceWrapper and ResidualWrapper
against the plain cell."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import v1
from rnnkit.rnn import sample_dropout_masks, tree_flatten
from rnnkit.wrappers import DropoutWrapperMasks


def copy_of(cell):
    twin = type(cell)(cell.units, input_size=cell.input_size)
    twin.set_weights(cell.get_weights())
    return twin


def identity_cell(n):
    """A linear cell with y_t = x_t: what the wrapper does to x_t shows in y_t."""
    cell = v1.BasicRNNCell(n, activation="linear", input_size=n)
    with torch.no_grad():
        cell.kernel.copy_(torch.eye(n))
        cell.recurrent_kernel.zero_()
        cell.bias.zero_()
    return cell


# --------------------------------------------------------------- MultiRNNCell


def test_multirnncell_equals_stacked_layers():
    torch.manual_seed(0)
    c1, c2 = rk.LSTMCell(4, input_size=3), rk.GRUCell(5, input_size=4)
    multi = v1.MultiRNNCell([c1, c2])
    x = torch.randn(2, 6, 3)
    outs, ((h1, c1_), h2) = v1.dynamic_rnn(multi, x)
    # Independent: two separate layers, one after the other over the whole sequence.
    seq1, lh1, lc1 = rk.RNN(copy_of(c1), return_sequences=True, return_state=True)(x)
    seq2, lh2 = rk.RNN(copy_of(c2), return_sequences=True, return_state=True)(seq1)
    torch.testing.assert_close(outs, seq2)
    for a, b in ((h1, lh1), (c1_, lc1), (h2, lh2)):
        torch.testing.assert_close(a, b)
    # And the Keras spelling RNN([cells]) on the same cells.
    out_l, *flat = rk.RNN([c1, c2], return_sequences=True, return_state=True)(x)
    torch.testing.assert_close(out_l, outs)
    assert multi.count_params() == c1.count_params() + c2.count_params()


def test_multirnncell_rejects_one_cell_twice():
    cell = v1.BasicRNNCell(4)
    with pytest.raises(ValueError, match=r"share one set of weights.*not \[cell\] \* k"):
        v1.MultiRNNCell([cell] * 3)
    with pytest.raises(ValueError, match="state_is_tuple"):  # a concatenated stack needs one tensor per cell
        v1.MultiRNNCell([v1.BasicLSTMCell(4)], state_is_tuple=False)


def test_zero_state_has_the_cell_structure():
    multi = v1.MultiRNNCell([v1.BasicLSTMCell(4), v1.BasicRNNCell(2)])
    s1, s2 = multi.zero_state(3, torch.float64)
    assert isinstance(s1, v1.LSTMStateTuple) and s1.c.shape == (3, 4) and s2.shape == (3, 2)
    assert s2.dtype == torch.float64 and float(s2.abs().sum()) == 0
    wrapped = v1.DropoutWrapper(v1.BasicLSTMCell(4))
    assert isinstance(wrapped.zero_state(2), v1.LSTMStateTuple)


# ---------------------------------------------------- OutputProjectionWrapper


def test_output_projection_is_the_seed_model():
    torch.manual_seed(0)
    n_steps, n_inputs, n_neurons, n_outputs = 20, 1, 100, 1
    inner = v1.BasicRNNCell(num_units=n_neurons, activation="relu")
    cell = v1.OutputProjectionWrapper(inner, output_size=n_outputs)
    x = torch.randn(50, n_steps, n_inputs)
    outputs, states = v1.dynamic_rnn(cell, x)
    assert outputs.shape == (50, n_steps, n_outputs) and states.shape == (50, n_neurons)
    # 1*100 + 100*100 + 100 for the cell, 100*1 + 1 for the projection.
    assert cell.count_params() == 10_301
    assert [tuple(w.shape) for w in cell.weights] == [(1, 100), (100, 100), (100,), (100, 1), (1,)]
    # The projection is a matmul of the plain cell's outputs; the state (what recurs) is the cell's.
    with torch.no_grad():
        cell.bias.fill_(0.25)
    outputs, states = v1.dynamic_rnn(cell, x)
    plain, plain_state = v1.dynamic_rnn(inner, x)
    torch.testing.assert_close(outputs, plain @ cell.kernel + 0.25)
    torch.testing.assert_close(states, plain_state)


def test_output_projection_activation_and_keras_layer():
    torch.manual_seed(0)
    inner = rk.GRUCell(4, input_size=3)
    cell = v1.OutputProjectionWrapper(inner, 2, activation="sigmoid")
    x = torch.randn(2, 5, 3)
    out = rk.RNN(cell, return_sequences=True)(x)  # a wrapper is a cell for the Keras layer too
    plain = rk.RNN(inner, return_sequences=True)(x)
    torch.testing.assert_close(out, torch.sigmoid(plain @ cell.kernel + cell.bias))
    with pytest.raises(ValueError, match="output_size"):
        v1.OutputProjectionWrapper(inner, 0)


# ------------------------------------------------------------- DropoutWrapper


def test_dropout_is_identity_in_eval_and_with_keep_prob_one():
    torch.manual_seed(0)
    inner = v1.BasicLSTMCell(4)
    x = torch.randn(3, 5, 2)
    drop = v1.DropoutWrapper(inner, 0.5, 0.5, 0.5)
    plain, plain_state = v1.dynamic_rnn(inner.eval(), x)
    out, state = v1.dynamic_rnn(drop.eval(), x)
    torch.testing.assert_close(out, plain)
    torch.testing.assert_close(state.h, plain_state.h)
    keep_all = v1.DropoutWrapper(inner).train()
    assert keep_all.dropout_masks(3, x) is None
    out, state = v1.dynamic_rnn(keep_all, x)
    torch.testing.assert_close(out, plain)
    # RNN(training=False) overrides the module mode.
    torch.testing.assert_close(rk.RNN(drop.train(), return_sequences=True)(x, training=False), plain)


@pytest.mark.parametrize("where", ["input", "output", "state"])
@pytest.mark.parametrize("variational", [False, True], ids=["per-step", "variational"])
def test_dropout_fraction_and_scaling(where, variational):
    # variational: one mask for the whole batch (TF1), so the fraction is counted over many units
    (n, batch), keep = ((2000, 8) if variational else (8, 400)), 0.7
    drop = v1.DropoutWrapper(
        identity_cell(n), variational_recurrent=variational, seed=3, **{f"{where}_keep_prob": keep}
    )
    x = torch.rand(batch, 6, n) + 0.5  # no zeros of its own
    out, state = v1.dynamic_rnn(drop, x)
    # Input and output masks show in y = mask * x; the state mask in the final state vs the last x.
    ratio = (out / x) if where != "state" else (state / x[:, -1])
    if where == "state":
        torch.testing.assert_close(out, x)  # output dropout is off and the state does not reach y here
    assert bool(((ratio == 0) | torch.isclose(ratio, torch.tensor(1 / keep))).all()), "kept values scale by 1/keep"
    dropped = float((ratio == 0).float().mean())
    assert abs(dropped - (1 - keep)) < 0.02, dropped
    if where != "state":
        same_mask_every_step = bool(((out == 0) == (out[:, :1] == 0)).all())
        assert same_mask_every_step is variational
    dropped_where = (ratio == 0) if where == "state" else (out == 0)
    same_mask_every_row = bool((dropped_where == dropped_where[:1]).all())
    assert same_mask_every_row is variational  # TF1: one variational mask for the whole batch


def test_dropout_never_touches_an_lstm_memory_c():
    torch.manual_seed(0)
    for inner in (v1.BasicLSTMCell(6, input_size=3), rk.LSTMCell(6, input_size=3)):
        for variational in (False, True):
            drop = v1.DropoutWrapper(inner, state_keep_prob=0.5, variational_recurrent=variational)
            x, s0 = torch.randn(50, 3), inner.get_initial_state(50)
            y, s = drop(x, s0, drop.dropout_masks(50, x))
            y_plain, s_plain = inner(x, s0)
            torch.testing.assert_close(s.c, s_plain.c)  # never dropped
            torch.testing.assert_close(y, y_plain)  # output_keep_prob is 1
            assert 0.3 < float((s.h == 0).float().mean()) < 0.7  # the h half is dropped
            torch.testing.assert_close(s.h[s.h != 0], 2 * s_plain.h[s.h != 0])


@pytest.mark.parametrize("variational", [False, True], ids=["per-step", "variational"])
def test_dropout_seed_reproduces_and_static_equals_dynamic(variational):
    torch.manual_seed(0)
    inner = v1.BasicLSTMCell(5, input_size=3)
    x = torch.randn(4, 6, 3)
    lengths = [6, 2, 0, 5]

    def make(seed):
        return v1.DropoutWrapper(copy_of_lstm(inner), 0.6, 0.7, 0.8, variational_recurrent=variational, seed=seed)

    a, _ = v1.dynamic_rnn(make(7), x, sequence_length=lengths)
    b, _ = v1.dynamic_rnn(make(7), x, sequence_length=lengths)
    c, _ = v1.static_rnn(make(7), list(x.unbind(1)), sequence_length=lengths)
    other, _ = v1.dynamic_rnn(make(8), x, sequence_length=lengths)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(torch.stack(c, 1), a)  # the two loops draw the same masks in the same order
    assert not torch.equal(a, other)
    # A second call draws new masks: the generator goes on, it does not restart.
    drop = make(7)
    first, _ = v1.dynamic_rnn(drop, x)
    second, _ = v1.dynamic_rnn(drop, x)
    assert not torch.equal(first, second)


def copy_of_lstm(cell):
    twin = v1.BasicLSTMCell(cell.units, input_size=cell.input_size)
    twin.set_weights(cell.get_weights())
    return twin


def test_dropout_keep_prob_checks():
    cell = v1.BasicRNNCell(3)
    for bad in (0, 0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"input_keep_prob: .*\(0, 1\]"):
            v1.DropoutWrapper(cell, input_keep_prob=bad)
    with pytest.raises(ValueError, match="state_keep_prob"):
        v1.DropoutWrapper(cell, state_keep_prob=2)
    with pytest.raises(TypeError, match="output_keep_prob"):
        v1.DropoutWrapper(cell, output_keep_prob="0.5")


def test_dropout_passes_the_wrapped_cells_own_masks():
    torch.manual_seed(0)
    inner = rk.LSTMCell(4, dropout=0.5, recurrent_dropout=0.5, input_size=3)
    drop = v1.DropoutWrapper(inner, variational_recurrent=True)
    x, s0 = torch.randn(6, 3), inner.get_initial_state(6)
    masks = sample_dropout_masks(drop, 6, x)
    assert isinstance(masks, DropoutWrapperMasks) and isinstance(masks.inner, rk.DropoutMasks)
    y, s = drop(x, s0, masks)
    y_inner, s_inner = inner(x, s0, masks.inner)
    torch.testing.assert_close(y, y_inner)
    torch.testing.assert_close(s.c, s_inner.c)


def test_seed_dropout_in_multirnncell():
    # cells_drop = [DropoutWrapper(cell, input_keep_prob=0.5) for cell in cells]; MultiRNNCell(cells_drop)
    torch.manual_seed(0)
    cells = [v1.BasicRNNCell(num_units=100) for _ in range(3)]
    cells_drop = [v1.DropoutWrapper(cell, input_keep_prob=0.5) for cell in cells]
    multi = v1.MultiRNNCell(cells_drop)
    x = torch.randn(8, 20, 1)
    train_out, states = v1.dynamic_rnn(multi, x)
    assert train_out.shape == (8, 20, 100) and len(states) == 3
    eval_out, _ = v1.dynamic_rnn(multi.eval(), x)
    plain_out, _ = v1.dynamic_rnn(v1.MultiRNNCell(cells), x)
    torch.testing.assert_close(eval_out, plain_out)
    assert not torch.allclose(train_out, plain_out)


# ------------------------------------------------------ device and residual


def test_device_wrapper_cpu_equals_the_plain_cell():
    torch.manual_seed(0)
    inner = v1.BasicLSTMCell(4)
    cell = v1.DeviceWrapper(inner, "cpu")
    x = torch.randn(3, 5, 2)
    out, state = v1.dynamic_rnn(cell, x, sequence_length=[5, 3, 0])
    plain, plain_state = v1.dynamic_rnn(inner, x, sequence_length=[5, 3, 0])
    torch.testing.assert_close(out, plain)
    torch.testing.assert_close(state.c, plain_state.c)
    assert cell.device == torch.device("cpu") and out.device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        v1.DeviceWrapper(inner, "no-such-device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_device_wrapper_cuda_runs_each_layer_on_the_gpu():
    torch.manual_seed(0)
    cells = [v1.BasicRNNCell(16), v1.BasicLSTMCell(8)]
    x = torch.randn(3, 5, 2)
    plain, plain_states = v1.dynamic_rnn(v1.MultiRNNCell(cells), x, sequence_length=[5, 2, 0])
    placed = v1.MultiRNNCell([v1.DeviceWrapper(c, "cuda") for c in cells])
    out, states = v1.dynamic_rnn(placed, x, sequence_length=[5, 2, 0])
    assert all(p.device.type == "cuda" for p in placed.parameters())
    assert out.device.type == "cpu"  # back on the input's device
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(tree_flatten(states), tree_flatten(plain_states)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_residual_wrapper_adds_the_input():
    torch.manual_seed(0)
    inner = v1.GRUCell(3)
    cell = v1.ResidualWrapper(inner)
    x = torch.randn(2, 4, 3)
    out, state = v1.dynamic_rnn(cell, x)
    plain, plain_state = v1.dynamic_rnn(inner, x)
    torch.testing.assert_close(out, plain + x)
    torch.testing.assert_close(state, plain_state)  # the state does not see the residual
    with pytest.raises(ValueError, match="sizes must match"):
        v1.dynamic_rnn(v1.ResidualWrapper(v1.GRUCell(4)), x)
    with pytest.raises(TypeError, match="cell"):
        v1.ResidualWrapper(np.zeros(3))


# ------------------------------------------------------ TF1's arguments and configs


def test_input_projection_and_embedding_wrappers():
    torch.manual_seed(0)
    inner = v1.GRUCell(3, input_size=4)
    cell = v1.InputProjectionWrapper(inner, num_proj=4, activation="tanh", input_size=2)
    x = torch.randn(5, 6, 2)
    outs, state = v1.dynamic_rnn(cell, x)
    plain, plain_state = v1.dynamic_rnn(inner, torch.tanh(x @ cell.kernel + cell.bias))
    torch.testing.assert_close(outs, plain)
    torch.testing.assert_close(state, plain_state)
    assert cell.input_size == 2 and len(cell.weights) == 3 + 2
    emb = v1.EmbeddingWrapper(v1.BasicLSTMCell(3), embedding_classes=7, embedding_size=4)
    ids = torch.randint(0, 7, (5, 6, 1))
    outs, state = v1.dynamic_rnn(emb, ids)
    plain, _ = v1.dynamic_rnn(emb.cell, emb.embedding[ids[..., 0]])
    torch.testing.assert_close(outs, plain)
    assert "ids" in emb.kernel_reason
    with pytest.raises(TypeError, match="integer ids"):
        emb(torch.zeros(2, 1), emb.zero_state(2))
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        emb(torch.tensor([[7]]), emb.zero_state(1))


def test_residual_fn_by_position_and_name_is_keyword_only():
    inner = v1.GRUCell(3, input_size=5)
    cell = v1.ResidualWrapper(inner, lambda i, o: i[:, :3] + o)
    x, h = torch.randn(2, 5), torch.randn(2, 3)
    y, s = cell(x, h)
    y_plain, s_plain = inner(x, h)
    torch.testing.assert_close(y, y_plain + x[:, :3])
    torch.testing.assert_close(s, s_plain)
    with pytest.raises(TypeError, match="residual_fn"):
        v1.ResidualWrapper(inner, "a name")
    with pytest.raises(TypeError):
        v1.DeviceWrapper(inner, "cpu", "a name")


def test_wrapper_configs_round_trip_through_json_for_core_cells():
    import json

    inner = rk.LSTMCell(4)
    for wrapper in (
        v1.DropoutWrapper(inner, 0.5, 0.8, variational_recurrent=True, seed=3),
        v1.OutputProjectionWrapper(inner, 2, activation="relu"),
        v1.InputProjectionWrapper(inner, 3),
        v1.EmbeddingWrapper(inner, 10, 3),
        v1.DeviceWrapper(inner, "cpu"),
        v1.ResidualWrapper(inner),
    ):
        config = json.loads(json.dumps(wrapper.get_config()))
        assert config["cell"]["class_name"] == "LSTMCell"
        rebuilt = type(wrapper).from_config(config)
        assert rebuilt.get_config() == wrapper.get_config() and type(rebuilt.cell) is rk.LSTMCell
    with pytest.raises(ValueError, match="custom_objects"):
        v1.ResidualWrapper.from_config({"name": "r", "cell": {"class_name": "Mystery", "config": {}}, "residual_fn": None})
    tf1 = v1.DeviceWrapper(v1.LSTMCell(3, num_proj=2), "cpu")
    rebuilt = v1.DeviceWrapper.from_config(tf1.get_config(), custom_objects={"LSTMCell": v1.LSTMCell})
    assert rebuilt.cell.num_proj == 2 and rebuilt.get_config() == tf1.get_config()


def test_dropout_tensor_keep_probs_state_filter_and_one_mask_for_the_batch():
    n = 400
    keep = nn.Parameter(torch.tensor(1.0))
    drop = v1.DropoutWrapper(identity_cell(n), input_keep_prob=keep, seed=0)
    x = torch.rand(3, 2, n) + 0.5
    out, _ = v1.dynamic_rnn(drop, x)
    torch.testing.assert_close(out, x)  # keep 1: nothing dropped
    with torch.no_grad():
        keep.fill_(0.5)  # read again at the next draw, as TF1's variable
    out, _ = v1.dynamic_rnn(drop, x)
    assert 0.3 < float((out == 0).float().mean()) < 0.7
    assert drop.get_config()["input_keep_prob"] == 0.5
    with pytest.raises(ValueError, match="input_keep_prob"):
        v1.DropoutWrapper(identity_cell(2), input_keep_prob=torch.tensor(0.0))
    # The filter: keep the whole state (TF1's dropout_state_filter_visitor returning False).
    inner = v1.BasicLSTMCell(n, input_size=3)
    kept = v1.DropoutWrapper(inner, state_keep_prob=0.5, dropout_state_filter_visitor=lambda s: False)
    x3, s0 = torch.randn(4, 3), inner.zero_state(4)
    _, s = kept(x3, s0, kept.dropout_masks(4, x3))
    assert_states_equal(s, inner(x3, s0)[1])
    variational = v1.DropoutWrapper(inner, 0.5, 0.5, 0.5, variational_recurrent=True)
    masks = variational.dropout_masks(4, x3)
    assert masks.input.shape == (1, 3) and masks.output.shape == (1, n) and masks.state.h.shape == (1, n)
    assert masks.state.c is None  # TF1 never drops an LSTM's memory c
    assert variational.wrapped_cell is inner


def assert_states_equal(a, b):
    for p, q in zip(tree_flatten(a), tree_flatten(b), strict=True):
        torch.testing.assert_close(p, q)


def test_multirnncell_concatenated_state_and_tf1_error():
    cells = [v1.GRUCell(2, input_size=3), v1.BasicRNNCell(4, input_size=2)]
    tup = v1.MultiRNNCell(cells)
    cat = v1.MultiRNNCell(cells, state_is_tuple=False)
    x, s = torch.randn(5, 3), torch.randn(5, 6)
    y, new = cat(x, s)
    y_t, new_t = tup(x, (s[:, :2], s[:, 2:]))
    torch.testing.assert_close(y, y_t)
    torch.testing.assert_close(new, torch.cat(new_t, 1))
    assert cat.state_size == 6 and cat.zero_state(5).shape == (5, 6)
    with pytest.raises(ValueError, match="Expected state to be a tuple of length 2"):
        tup(x, s)
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        cat(x, torch.randn(5, 7))


def test_wrappers_and_stacks_take_tf1_initial_state_arguments():
    x = torch.zeros(3, 4, dtype=torch.float64)
    drop = v1.DropoutWrapper(v1.BasicLSTMCell(2, input_size=4).double())
    state = drop.get_initial_state(inputs=x)
    assert isinstance(state, v1.LSTMStateTuple) and state.c.shape == (3, 2) and state.c.dtype == torch.float64
    multi = v1.MultiRNNCell([v1.GRUCell(2, input_size=4), v1.GRUCell(3, input_size=2)], state_is_tuple=False)
    assert multi.get_initial_state(None, 5, torch.float32).shape == (5, 5)
    with pytest.raises(ValueError, match="batch size from input tensor is different"):
        drop.get_initial_state(inputs=x, batch_size=2)
    with pytest.raises(ValueError, match="cannot be None"):
        multi.get_initial_state()


def test_multi_rnn_cell_config_round_trip_keeps_tf1_and_keras_cells_apart():
    """MultiRNNCell.from_config rebuilds TF1's GRUCell as TF1's (num_units, TF1 weight layout), not Keras's GRUCell
    of the same name, and the rebuilt stack computes the same numbers once given the same weights."""
    torch.manual_seed(0)
    stack = v1.MultiRNNCell([v1.GRUCell(4), rk.GRUCell(4), v1.LSTMCell(3)])
    x = torch.randn(5, 6, 2)
    expected, _ = v1.dynamic_rnn(stack, x, dtype=torch.float32)
    again = v1.MultiRNNCell.from_config(json.loads(json.dumps(stack.get_config())))
    assert [type(c) for c in again.cells] == [v1.GRUCell, rk.GRUCell, v1.LSTMCell]
    v1.dynamic_rnn(again, x, dtype=torch.float32)  # builds the weights
    again.load_state_dict(stack.state_dict())
    got, _ = v1.dynamic_rnn(again, x, dtype=torch.float32)
    torch.testing.assert_close(got, expected)
