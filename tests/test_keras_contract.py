"""Issue 12, the Keras contract: cells' states, stacked states, numpy, configs, shapes,
masking flags, arguments, regularizers and constraints, lazy weights.

Numbers are checked against Keras 3's definitions (written out here), not shapes alone.
"""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import constraints, layers, ops, regularizers, v1
from rnnkit.rnn import tree_flatten


class KerasStyleCell(rk.Layer):
    """A cell as Keras users write it: ``prev = states[0]``; ones weights."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):  # does not set self.built, as in Keras
        self.kernel = nn.Parameter(torch.ones(input_shape[-1], self.units))
        self.recurrent_kernel = nn.Parameter(torch.ones(self.units, self.units))

    def forward(self, inputs, states):
        prev = states[0]
        output = inputs @ self.kernel + prev @ self.recurrent_kernel
        return output, [output]


# ------------------------------------------------------------ 1. cell states


def test_keras_style_cell_gets_its_states_as_a_list_issue_example():
    # Keras 3 (checked once with keras 3.15.1): [[3, 3], [13, 13]]; rnnkit gave [[3, 3], [3, 3]] before.
    layer = rk.RNN(KerasStyleCell(2))
    out = layer(np.ones((2, 1, 3), np.float32), initial_state=[np.array([[0, 0], [5, 5]], np.float32)])
    np.testing.assert_array_equal(out.detach().numpy(), [[3, 3], [13, 13]])
    assert layer.built  # build() did not set it: the layer is marked built when build returns


def test_torch_style_cell_keeps_its_tensor_state():
    class TorchCell(nn.Module):  # the README's ScratchCell habit: forward(x, h) with a tensor
        state_size = 2

        def forward(self, x, h):
            assert isinstance(h, torch.Tensor)
            return h + x.sum(-1, keepdim=True), h + x.sum(-1, keepdim=True)

    out = rk.RNN(TorchCell())(torch.ones(2, 3, 4), initial_state=torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
    np.testing.assert_array_equal(out.numpy(), [[12, 12], [17, 17]])


def test_plain_module_with_keras_habits_is_refused_not_run_wrongly():
    class KerasHabitModule(nn.Module):  # returns a list of states, but is no rk.Layer
        state_size = 2

        def forward(self, x, states):
            return x[:, :2], [x[:, :2]]

    with pytest.raises(TypeError, match="states_as_list = True"):
        rk.RNN(KerasHabitModule())(torch.ones(2, 3, 4))

    KerasHabitModule.states_as_list = True  # declared: it gets Keras's list
    out = rk.RNN(KerasHabitModule())(torch.ones(2, 3, 4))
    assert tuple(out.shape) == (2, 2)


def test_cell_returning_a_state_that_does_not_match_state_size_is_an_error():
    class Wrong(rk.Layer):
        state_size = 3

        def forward(self, x, states):
            return x, [x]  # 4 features, not 3

    with pytest.raises(ValueError, match=r"returned new states .*\(2, 4\).*state_size 3"):
        rk.RNN(Wrong())(torch.ones(2, 3, 4))


# ---------------------------------------------------------- 2. stacked states


def test_stacked_return_state_nests_per_cell_as_keras_3():
    cells = [rk.LSTMCell(3), rk.SimpleRNNCell(2)]
    out, lstm_state, rnn_state = rk.RNN(cells, return_state=True)(torch.randn(4, 5, 6))
    assert isinstance(lstm_state, list) and len(lstm_state) == 2
    assert isinstance(rnn_state, torch.Tensor)
    torch.testing.assert_close(out, rnn_state)
    # Bidirectional passes the nested states on (forward's, then backward's), and takes them back
    bi = rk.Bidirectional(rk.RNN([rk.LSTMCell(3), rk.GRUCell(2)], return_state=True))
    x = torch.randn(4, 5, 6)
    y, *states = bi(x)
    assert [type(s).__name__ for s in states] == ["list", "Tensor", "list", "Tensor"]
    torch.testing.assert_close(bi(x, initial_state=states)[0], bi(x, initial_state=tree_flatten(states))[0])


# ------------------------------------------------------------------- 3. numpy


def test_numpy_initial_state_mask_and_lengths_equal_tensors():
    torch.manual_seed(0)
    layer = rk.LSTM(3, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(np.float32)
    h, c = np.ones((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool)
    want = layer(torch.from_numpy(x), initial_state=[torch.from_numpy(h), torch.from_numpy(c)], mask=torch.from_numpy(mask))
    torch.testing.assert_close(layer(x, initial_state=[h, c], mask=mask), want)
    by_lengths = layer(torch.from_numpy(x), lengths=torch.tensor([3, 1]))
    torch.testing.assert_close(layer(x, lengths=np.array([3, 1])), by_lengths)
    torch.testing.assert_close(layer(x, lengths=[3, 1]), by_lengths)
    # one numpy array for a one-state layer
    g = rk.GRU(3)
    torch.testing.assert_close(g(x, initial_state=h), g(x, initial_state=torch.from_numpy(h)))


# ----------------------------------------------------------- 4. configs, shapes


CONFIG_CASES = {
    "SimpleRNN": lambda: rk.SimpleRNN(3, return_sequences=True, kernel_regularizer="l2",
                                      activity_regularizer=regularizers.L1(0.5)),
    "GRU": lambda: rk.GRU(3, reset_after=False, implementation=1, kernel_initializer=ops.GlorotUniform(seed=3),
                          recurrent_constraint="unit_norm", bias_regularizer=regularizers.L1L2(0.1, 0.2)),
    "LSTM": lambda: rk.LSTM(3, use_cudnn=False, stateful=True, kernel_constraint=constraints.MaxNorm(1.5, axis=1)),
    "Bidirectional": lambda: rk.Bidirectional(rk.LSTM(2, return_sequences=True), merge_mode="sum"),
    "TimeDistributed": lambda: rk.TimeDistributed(rk.Dense(4, kernel_regularizer="l1", bias_constraint="non_neg")),
    "Dense": lambda: rk.Dense(4, activation="relu", input_size=3),
    "RNN(stack)": lambda: rk.RNN([rk.LSTMCell(3), rk.GRUCell(2, recurrent_dropout=0.1)], return_state=True),
    "RNN(custom cell)": lambda: rk.RNN(KerasStyleCell(2)),
    "Embedding": lambda: rk.Embedding(10, 4, mask_zero=True),
    "Masking": lambda: rk.Masking(-1.0),
    "Dropout": lambda: rk.Dropout(0.3, seed=2),
    "LSTMCell": lambda: rk.LSTMCell(3, kernel_regularizer="l2", seed=1),
    "DropoutWrapper": lambda: v1.DropoutWrapper(rk.GRUCell(3), input_keep_prob=0.5, seed=1),
    "MultiRNNCell": lambda: v1.MultiRNNCell([rk.SimpleRNNCell(2), rk.LSTMCell(3)]),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_from_config_round_trip_is_exact(case):
    layer = CONFIG_CASES[case]()
    config = layer.get_config()
    revived = type(layer).from_config(copy.deepcopy(config))
    assert type(revived) is type(layer)
    assert revived.get_config() == config
    if case not in ("RNN(custom cell)",):
        json.dumps(config)  # plain JSON


def test_sequential_round_trip_and_same_numbers():
    torch.manual_seed(0)
    model = rk.Sequential([rk.Input(shape=(5, 3)), rk.LSTM(4, return_sequences=True, kernel_regularizer="l2"),
                           rk.TimeDistributed(rk.Dense(2))])
    config = model.get_config()
    twin = rk.Sequential.from_config(config)
    assert twin.get_config() == config
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(twin(x), model(x))


@pytest.mark.parametrize("make, input_shape", [
    (lambda: rk.LSTM(4, return_sequences=True, return_state=True), (2, 5, 3)),
    (lambda: rk.GRU(4), (2, 5, 3)),
    (lambda: rk.RNN([rk.LSTMCell(3), rk.SimpleRNNCell(2)], return_state=True), (2, 5, 3)),
    (lambda: rk.Bidirectional(rk.LSTM(4, return_state=True)), (2, 5, 3)),
    (lambda: rk.Bidirectional(rk.GRU(4, return_sequences=True), merge_mode=None), (2, 5, 3)),
    (lambda: rk.TimeDistributed(rk.Dense(6)), (2, 5, 3)),
    (lambda: rk.Dense(6), (2, 5, 3)),
    (lambda: rk.Embedding(10, 4), (2, 5)),
    (lambda: rk.Masking(), (2, 5, 3)),
    (lambda: rk.Dropout(0.5), (2, 5, 3)),
])
def test_compute_output_shape_matches_the_call(make, input_shape):
    layer = make()
    shapes = layer.compute_output_shape(input_shape)
    x = torch.zeros(input_shape, dtype=torch.long) if isinstance(layer, rk.Embedding) else torch.randn(input_shape)
    out = layer(x)

    def shape_tree(o):
        return [shape_tree(i) for i in o] if isinstance(o, (list, tuple)) and not isinstance(o, torch.Size) else tuple(o.shape)

    def norm(s):
        return [norm(i) for i in s] if isinstance(s, list) else tuple(s)

    assert norm(shapes) == shape_tree(out)


def test_supports_masking_means_passes_the_mask_on_unchanged():
    # Keras 3: layers that compute their own mask (recurrent, TimeDistributed) say False.
    assert not rk.LSTM(2).supports_masking and rk.LSTM(2).takes_mask
    assert not rk.Bidirectional(rk.LSTM(2)).supports_masking
    assert not rk.TimeDistributed(rk.Dense(2)).supports_masking
    assert rk.Dense(2).supports_masking and rk.Dropout(0.1).supports_masking and rk.Masking().supports_masking
    # and a Sequential still carries the mask: Embedding -> LSTM(seq) -> TimeDistributed -> Dropout -> LSTM
    torch.manual_seed(0)
    emb, lstm, td, last = rk.Embedding(9, 3, mask_zero=True), rk.LSTM(4, return_sequences=True), \
        rk.TimeDistributed(rk.Dense(4)), rk.LSTM(2)
    model = rk.Sequential([emb, lstm, td, rk.Dropout(0.5), last]).eval()
    ids = torch.tensor([[1, 2, 3, 0, 0], [4, 0, 5, 6, 0]])
    mask = ids != 0
    want = last(td(lstm(emb(ids), mask=mask)), mask=mask)
    torch.testing.assert_close(model(ids), want)


# ------------------------------------------------------------- 5. arguments


def test_implementation_is_accepted_with_the_same_numbers():
    x = torch.randn(2, 4, 3)
    for cls in (rk.GRU, rk.LSTM):
        outs = []
        for implementation in (0, 1, 2):
            torch.manual_seed(0)
            outs.append(cls(3, implementation=implementation)(x))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
        torch.testing.assert_close(outs[0], outs[2], rtol=0, atol=0)
    with pytest.raises(ValueError, match="implementation: expected 0, 1 or 2"):
        rk.LSTM(3, implementation=3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_use_cudnn_true_on_cpu_is_a_clear_error():
    x = torch.randn(2, 4, 3)
    for cls in (rk.GRU, rk.LSTM):
        with pytest.raises(ValueError, match="cuDNN needs CUDA"):
            cls(3, use_cudnn=True)(x)
        cls(3, use_cudnn="auto")(x)
        cls(3, use_cudnn=False)(x)
    assert rk.LSTM(3, activation="relu", unroll=True).cudnn_blockers() == ["activation is not 'tanh'", "unroll=True"]
    with pytest.raises(ValueError, match="use_cudnn: expected 'auto', True or False"):
        rk.GRU(3, use_cudnn="yes")
    assert not hasattr(rk.SimpleRNN(3), "use_cudnn")


def test_seeded_initializers_are_reproducible_and_json_configurable():
    a, b = ops.GlorotUniform(seed=1)((4, 6)), ops.GlorotUniform(seed=1)((4, 6))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert float(a.abs().max()) <= (6 / (4 + 6)) ** 0.5  # Keras's glorot limit
    q = ops.Orthogonal(seed=2)((5, 5))
    torch.testing.assert_close(q @ q.T, torch.eye(5), atol=1e-5, rtol=0)
    layer = rk.LSTM(3, kernel_initializer=ops.GlorotUniform(seed=1), recurrent_initializer=ops.Orthogonal(seed=2))
    spec = layer.get_config()["kernel_initializer"]
    assert spec == {"class_name": "GlorotUniform", "config": {"seed": 1}}
    twin = rk.LSTM.from_config(json.loads(json.dumps(layer.get_config())))
    layer.build((5, 4))
    twin.build((5, 4))
    for w, v in zip(layer.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(w, v)
    with pytest.raises(ValueError, match="unknown initializer config"):
        ops.get_initializer({"class_name": "os.system", "config": {}})


def test_embedding_casts_integral_float_ids():
    emb = rk.Embedding(10, 3)
    torch.testing.assert_close(emb(np.array([[1.0, 2.0]])), emb(np.array([[1, 2]])))
    torch.testing.assert_close(emb(torch.tensor([[1.0, 2.0]])), emb(np.array([[1, 2]])))
    with pytest.raises(TypeError, match="non-finite"):  # NaN and inf name no row
        emb(np.array([[np.nan, 2.0]]))


def test_stateful_batch_mismatch_names_the_batch_size():
    layer = rk.GRU(2, stateful=True)
    layer(torch.randn(3, 4, 2))
    with pytest.raises(ValueError, match="batch size 3, got batch size 1"):
        layer(torch.randn(1, 4, 2))


def test_time_distributed_mask_reaches_a_layer_that_takes_one():
    class MaskedSum(rk.Layer):
        takes_mask = True

        def forward(self, x, mask=None):
            return x.sum(-1, keepdim=True) * (1.0 if mask is None else mask[:, None].float())

    x = torch.ones(2, 3, 4)
    mask = np.array([[True, False, True], [False, True, True]])
    out = rk.TimeDistributed(MaskedSum())(x, mask=mask)
    np.testing.assert_array_equal(out[..., 0].numpy(), 4 * mask)
    with pytest.raises(ValueError, match="mask"):
        rk.TimeDistributed(MaskedSum())(x, mask=np.ones((2, 4), bool))


def test_torch_habit_cell_arguments_get_a_hint():
    with pytest.raises(TypeError, match=r"write LSTMCell\(51, input_size=1\)"):
        rk.LSTMCell(1, 51)
    with pytest.raises(TypeError, match=r"write GRUCell\(8, input_size=4\)"):
        rk.GRUCell(4, 8)
    with pytest.raises(TypeError, match=r"write LSTM\(8, input_size=4\)"):
        rk.LSTM(4, 8)
    # Keras's positional order: the second argument is the activation
    assert rk.SimpleRNN(3, "relu").cell.activation is torch.relu


# ------------------------------------------------- 6. regularizers, constraints


def test_regularizer_numbers_are_keras_definitions():
    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert float(regularizers.get_regularizer("l2")(w)) == pytest.approx(0.01 * (1 + 4 + 9 + 0.25))
    assert float(regularizers.get_regularizer("l1")(w)) == pytest.approx(0.01 * 6.5)
    assert float(regularizers.L1L2(0.1, 0.2)(w)) == pytest.approx(0.1 * 6.5 + 0.2 * 14.25)
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}


def test_layer_losses_are_the_weight_and_activity_penalties():
    torch.manual_seed(0)
    layer = rk.LSTM(3, kernel_regularizer="l2", recurrent_regularizer=regularizers.L2(0.5), bias_regularizer="l1",
                    activity_regularizer="l2")
    x = torch.randn(4, 5, 2)
    out = layer(x)
    k, r, b = layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias
    # Keras's order: the layer's own (activity: l2(output) / batch), then its cell's weight penalties
    expected = [0.01 * out.square().sum() / 4, 0.01 * k.square().sum(), 0.5 * r.square().sum(), 0.01 * b.abs().sum()]
    assert len(layer.losses) == 4
    for got, want in zip(layer.losses, expected):
        torch.testing.assert_close(got, want)
    model = rk.Sequential([layer, rk.Dense(2, kernel_regularizer="l1")])
    model(x)
    assert len(model.losses) == 5
    torch.testing.assert_close(sum(model.losses), sum(layer.losses) + 0.01 * model.layers[1].kernel.abs().sum())


def test_fit_trains_on_loss_plus_regularization():
    torch.manual_seed(0)
    x, y = torch.randn(8, 5, 2), torch.randn(8, 2)
    model = rk.Sequential([rk.Input(shape=(5, 2)), rk.SimpleRNN(2, kernel_regularizer=regularizers.L2(0.3))])
    model.compile(optimizer="sgd", loss="mse")
    with torch.no_grad():
        want = float(((model(x) - y) ** 2).mean() + 0.3 * model.layers[0].cell.kernel.square().sum())
    assert model.evaluate(x, y, batch_size=8) == pytest.approx(want, rel=1e-6)
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-6)


def test_constraint_numbers_are_keras_definitions():
    w = torch.tensor([[3.0, 0.1], [4.0, -0.2]])
    n = np.sqrt((w.numpy() ** 2).sum(0, keepdims=True))
    eps = 1e-7
    np.testing.assert_allclose(constraints.MaxNorm(2.0)(w).numpy(), w.numpy() * np.clip(n, 0, 2) / (eps + n), rtol=1e-6)
    np.testing.assert_allclose(constraints.UnitNorm()(w).numpy(), w.numpy() / (eps + n), rtol=1e-6)
    np.testing.assert_allclose(constraints.NonNeg()(w).numpy(), [[3.0, 0.1], [4.0, 0.0]], rtol=1e-6)
    mm = constraints.MinMaxNorm(0.5, 1.0, rate=0.5)(w).numpy()
    np.testing.assert_allclose(mm, w.numpy() * (0.5 * np.clip(n, 0.5, 1.0) + 0.5 * n) / (eps + n), rtol=1e-6)
    assert constraints.get_constraint("max_norm").get_config() == {"max_value": 2, "axis": 0}


def test_fit_applies_constraints_after_each_step():
    torch.manual_seed(0)
    model = rk.Sequential([rk.Input(shape=(5, 2)),
                           rk.LSTM(4, kernel_constraint="non_neg", recurrent_constraint=constraints.MaxNorm(0.5)),
                           rk.Dense(2, kernel_constraint="unit_norm")])
    model.compile(optimizer="adam", loss="mse", learning_rate=0.1)
    model.fit(torch.randn(16, 5, 2), torch.randn(16, 2), batch_size=4, epochs=1, verbose=0)
    cell = model.layers[0].cell
    assert bool((cell.kernel >= 0).all())
    assert float(cell.recurrent_kernel.detach().norm(dim=0).max()) <= 0.5 + 1e-6
    torch.testing.assert_close(model.layers[1].kernel.norm(dim=0), torch.ones(2), atol=1e-5, rtol=0)


# ------------------------------------------------------------- 7. lazy weights


def test_an_optimizer_made_before_the_first_call_trains_every_layer():
    torch.manual_seed(0)
    m = nn.Sequential(rk.LSTM(8), nn.Linear(8, 2))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    assert isinstance(m[0].cell.kernel, nn.parameter.UninitializedParameter)
    assert m[0].get_weights() == []
    x, y = torch.randn(4, 5, 3), torch.randn(4, 2)
    opt.zero_grad()
    nn.functional.mse_loss(m(x), y).backward()
    before = [w.detach().clone() for w in m[0].weights]
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, m[0].weights))
    assert "native" in rk.explain(m)  # the fused kernel still runs


def test_load_state_dict_into_a_fresh_model_and_deepcopy():
    torch.manual_seed(0)
    m = nn.Sequential(rk.GRU(4, return_sequences=True), rk.TimeDistributed(rk.Dense(2)))
    x = torch.randn(2, 5, 3)
    y = m(x)
    fresh = nn.Sequential(rk.GRU(4, return_sequences=True), rk.TimeDistributed(rk.Dense(2)))
    fresh.load_state_dict(m.state_dict())
    assert fresh[0].built and fresh[0].cell.input_size == 3
    torch.testing.assert_close(fresh(x), y)
    torch.testing.assert_close(copy.deepcopy(m)(x), y)
    unbuilt = copy.deepcopy(rk.LSTM(3))
    assert unbuilt(x).shape == (2, 3)


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")  # the native kernel is a graph break
def test_torch_compile_after_the_first_call():
    torch.manual_seed(0)
    model = rk.Sequential([rk.LSTM(4), rk.Dense(2)])
    x = torch.randn(2, 5, 3)
    y = model(x)
    torch.testing.assert_close(torch.compile(model, backend="eager")(x), y)


def test_keras_lazy_compile_then_fit():
    torch.manual_seed(0)
    model = rk.Sequential([rk.LSTM(16), rk.Dense(2)])
    model.compile(optimizer="adam", loss="mse")  # before any input shape, as Keras allows
    x, y = np.random.default_rng(0).random((32, 5, 3), np.float32), np.random.default_rng(1).random((32, 2), np.float32)
    history = model.fit(x, y, epochs=3, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < loss[0]
    assert all(not isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


def test_embedding_casts_float_ids_as_keras():
    """Keras casts float token ids to int (toward zero): 2.7 reads row 2, 1.0 row 1."""
    emb = rk.Embedding(10, 3)
    out = emb(torch.tensor([[2.7, 1.0, 9.99]]))
    torch.testing.assert_close(out[0], emb.embeddings[[2, 1, 9]], rtol=0, atol=0)


def test_sequential_compute_output_shape_chains_the_layers():
    model = rk.Sequential([rk.Input(shape=(5, 3)), rk.LSTM(4), rk.RepeatVector(6),
                           rk.GRU(2, return_sequences=True), rk.TimeDistributed(rk.Dense(7))])
    assert model.compute_output_shape((8, 5, 3)) == (8, 6, 7)
    assert tuple(model(torch.zeros(8, 5, 3)).shape) == (8, 6, 7)
    assert rk.InputLayer((5, 3)).compute_output_shape((None, 5, 3)) == (None, 5, 3)


# ---- `from keras import layers` -> `from rnnkit import layers`: one namespace of every layer


KERAS_LAYER_NAMES = [
    "Input", "InputLayer", "SimpleRNN", "GRU", "LSTM", "SimpleRNNCell", "GRUCell", "LSTMCell", "RNN", "StackedRNNCells",
    "Bidirectional", "TimeDistributed", "Dense", "Dropout", "Embedding", "Masking", "RepeatVector", "Flatten",
    "Rescaling", "Conv2D", "Concatenate", "Add", "Subtract", "Multiply", "Average", "Dot", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "LayerNormalization", "Activation", "SpatialDropout1D",
    "concatenate", "add", "subtract", "multiply", "average", "dot",
]


@pytest.mark.parametrize("name", KERAS_LAYER_NAMES)
def test_rnnkit_layers_is_the_keras_layers_namespace(name):
    """Keras programs write `from keras import layers; layers.X`: each such name is in rnnkit.layers,
    the same object as rnnkit.X where rnnkit has it at the top."""
    assert hasattr(layers, name)
    if hasattr(rk, name):
        assert getattr(layers, name) is getattr(rk, name)


def test_a_keras_program_with_layers_functions_runs_as_written():
    """keras-io style: `import keras; from keras import layers` with only the imports changed; the merge functions
    give the merge layers' numbers."""
    import rnnkit as keras  # the program's `import keras`; `from keras import layers` is this module's import

    torch.manual_seed(0)
    a, b = keras.Input(shape=(None, 3)), layers.Input(shape=(None, 3))
    lstm, gru = layers.LSTM(4), layers.GRU(4)
    ha, hb = lstm(a), gru(b)
    merged = [layers.concatenate([ha, hb]), layers.add([ha, hb]), layers.subtract([ha, hb]),
              layers.multiply([ha, hb]), layers.average([ha, hb]), layers.dot([ha, hb], axes=1)]
    model = keras.Model([a, b], merged)
    x, y = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    outs = model([x, y])
    h1, h2 = lstm(x), gru(y)
    expected = [torch.cat([h1, h2], -1), h1 + h2, h1 - h2, h1 * h2, (h1 + h2) / 2, (h1 * h2).sum(-1, keepdim=True)]
    for got, want in zip(outs, expected):
        torch.testing.assert_close(got, want)
