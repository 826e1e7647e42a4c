"""The shared helpers of the core: one place for each mechanism, and what relies on it."""

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit import ops
from rnnkit.cells import LSTMState, swap_gru_gates
from rnnkit.graph import topological_order
from rnnkit.rnn import sample_dropout_masks

# ------------------------------------------------------------ dropout masks


def test_dropout_mask_draws_bernoulli_on_the_cpu_then_scales():
    keep = 0.7
    m = ops.dropout_mask((64, 32), keep, torch.zeros(0, dtype=torch.float64), torch.Generator().manual_seed(3))
    # The same draws as torch's Bernoulli from the same seed, scaled by exactly 1/keep.
    raw = torch.empty(64, 32, dtype=torch.float64).bernoulli_(keep, generator=torch.Generator().manual_seed(3))
    assert m.dtype == torch.float64
    assert torch.equal(m, raw / keep)
    assert set(m.unique().tolist()) == {0.0, 1 / keep}


def test_dropout_mask_is_none_when_nothing_is_dropped():
    assert ops.dropout_mask((2, 3), 1.0, torch.zeros(0)) is None


def test_bernoulli_mask_is_zeros_and_ones_of_the_like_dtype():
    m = ops.bernoulli_mask([5, 4], 0.5, torch.zeros(0, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert m.shape == (5, 4) and m.dtype == torch.float64
    assert set(m.unique().tolist()) <= {0.0, 1.0}


def test_layer_and_cell_dropout_use_the_shared_draws():
    # Keras's cell dropout: input mask, then recurrent mask, from the cell's seeded generator.
    cell = rk.LSTMCell(3, dropout=0.25, recurrent_dropout=0.5, input_size=2)
    gen = torch.Generator().manual_seed(7)
    masks = sample_dropout_masks(cell, 4, torch.zeros(0), gen)
    gen = torch.Generator().manual_seed(7)
    assert torch.equal(masks.input, ops.dropout_mask((4, 2), 0.75, torch.zeros(0), gen))
    assert torch.equal(masks.recurrent, ops.dropout_mask((4, 3), 0.5, torch.zeros(0), gen))
    # The Dropout layer: x * mask / keep, from its seed.
    x = torch.randn(3, 5)
    y = rk.Dropout(0.4, seed=1)(x, training=True)
    expected = x * ops.bernoulli_mask(x.shape, 0.6, x, torch.Generator().manual_seed(1)) / 0.6
    assert torch.equal(y, expected)


# ---------------------------------------------------------- tuple rebuild


def test_rebuild_tuple_keeps_the_type():
    rebuilt = ops.rebuild_tuple(LSTMState(1, 2), [3, 4])
    assert isinstance(rebuilt, LSTMState) and rebuilt == LSTMState(3, 4)
    assert ops.rebuild_tuple((1, 2), iter([5, 6])) == (5, 6)
    assert ops.rebuild_tuple([1], [2]) == [2]


# -------------------------------------------------------------- config spec


def test_config_spec_names_registry_functions_and_constants():
    assert ops.config_spec("tanh", "layer", "activation") == "tanh"
    assert ops.config_spec(None, "layer", "activation") is None
    assert ops.config_spec(0.5, "layer", "bias_initializer") == 0.5
    assert ops.config_spec(torch.tanh, "layer", "activation") == "tanh"
    assert ops.config_spec(ops.orthogonal, "layer", "recurrent_initializer") == "orthogonal"
    assert ops.config_spec(rk.Constant(2), "layer", "bias_initializer") == 2.0


def test_config_spec_refuses_custom_callables_naming_layer_and_argument():
    with pytest.raises(ValueError, match=r"my_dense: activation=.* custom callable"):
        ops.config_spec(lambda x: x, "my_dense", "activation")


def custom_init(shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("make, arg", [
    (lambda f: rk.GRUCell(2, bias_initializer=f), "bias_initializer"),
    (lambda f: rk.Dense(2, kernel_initializer=f), "kernel_initializer"),
    (lambda f: rk.Embedding(5, 2, embeddings_initializer=f), "embeddings_initializer"),
])
def test_layers_write_their_configs_through_config_spec(make, arg):
    with pytest.raises(ValueError, match=f"{arg}=.* cannot be stored in a JSON config"):
        make(custom_init).get_config()
    assert make(rk.Constant(0.0)).get_config()[arg] == 0.0
    assert make(ops.zeros).get_config()[arg] == "zeros"


# --------------------------------------------------------- weights' dtype


def test_first_parameter_and_like_weights():
    assert ops.first_parameter(rk.Masking()) is None
    assert ops.first_parameter(object()) is None
    dense = rk.Dense(2, input_size=3).double()
    assert ops.first_parameter(dense) is dense.kernel
    assert ops.like_weights(dense).dtype == torch.float64
    assert ops.like_weights(dense, dtype=torch.float32).dtype == torch.float32
    assert ops.like_weights(rk.Masking()).dtype == torch.get_default_dtype()


# ---------------------------------------------------------- GRU gate swap


def test_swap_gru_gates_is_its_own_inverse_for_tensors_and_arrays():
    w = torch.arange(12.0).reshape(2, 6)  # 3 blocks of 2 along the last axis: z, r, h
    swapped = swap_gru_gates(w)
    assert swapped.tolist() == [[2, 3, 0, 1, 4, 5], [8, 9, 6, 7, 10, 11]]
    assert torch.equal(swap_gru_gates(swapped), w)
    assert np.array_equal(swap_gru_gates(w.numpy()), swapped.numpy())
    assert np.array_equal(swap_gru_gates(np.arange(6)), [2, 3, 0, 1, 4, 5])


# ------------------------------------------------------------------ built


def test_layers_made_of_layers_are_built_when_their_parts_are():
    cells = [rk.GRUCell(2), rk.GRUCell(3)]
    layer = rk.RNN(cells)
    assert not layer.built and not layer.cell.built
    cells[0].build((4,))
    assert not layer.built
    cells[1].build((2,))
    assert layer.built and layer.cell.built
    layer.built = False  # the parts decide, not an assignment
    assert layer.built
    bi = rk.Bidirectional(rk.LSTM(2))
    assert not bi.built
    bi(torch.zeros(1, 3, 4))
    assert bi.built


# ------------------------------------------------------------- Sequential


def test_sequential_add_traces_only_the_new_layer():
    calls = []
    model = rk.Sequential([rk.Input((None, 3)), rk.LSTM(4, return_sequences=True)])
    model.layers[0].register_forward_hook(lambda *_: calls.append("lstm"))
    model.add(rk.GRU(2, return_sequences=True))
    model.add(rk.TimeDistributed(rk.Dense(1)))
    assert calls == []  # the LSTM is not run again for each added layer
    incremental = list(model._output_shapes)
    assert incremental == [(None, None, 4), (None, None, 2), (None, None, 1)]
    model.build((None, 3))  # a full trace gives the same shapes
    assert model._output_shapes == incremental


def test_sequential_passes_masks_to_layers_that_take_them():
    seen = []

    class Probe(rk.Layer):
        takes_mask = True

        def forward(self, x, mask=None):
            seen.append(mask)
            return x

    model = rk.Sequential([rk.Masking(input_shape=(3, 2)), Probe()])
    x = torch.ones(1, 3, 2)
    x[0, 1] = 0.0
    seen.clear()
    model(x)
    assert seen[-1].tolist() == [[True, False, True]]


# ---- graph.topological_order: the planner the functional Model and TF1 graph mode share


def test_topological_order_puts_parents_first_once():
    edges = {"out": ["b", "c"], "b": ["a"], "c": ["a", "b"], "a": []}
    order = topological_order(["out", "c"], edges.__getitem__)
    assert order == ["a", "b", "c", "out"]


def test_topological_order_names_a_cycle():
    edges = {"x": ["y"], "y": ["z"], "z": ["x"]}
    with pytest.raises(ValueError, match=r"graph: node y depends on itself \(a cycle\)"):
        topological_order(["y"], edges.__getitem__, describe=lambda n: f"node {n}")


@pytest.mark.parametrize("cls_name, keras_name", [
    ("SimpleRNN", "simple_rnn"), ("GRUCell", "gru_cell"), ("LSTMCell", "lstm_cell"), ("StackedRNNCells", "stacked_rnn_cells"),
    ("Conv2D", "conv2d"), ("GlobalAveragePooling1D", "global_average_pooling1d"), ("SpatialDropout1D", "spatial_dropout1d"),
])
def test_default_layer_names_are_keras_names(cls_name, keras_name):
    """A layer made without name= is called what Keras calls it (a digit does not start a word)."""
    assert rk.base._snake(cls_name) == keras_name


def test_a_new_layer_takes_its_keras_name():
    assert rk.GlobalAveragePooling1D().name.startswith("global_average_pooling1d")
    assert rk.Conv2D(2, 3).name.startswith("conv2d")
