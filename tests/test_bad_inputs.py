"""What every public layer does with bad input: a clear error, or a defined result.

The first half is a table: each row builds something, calls it with one bad
argument, and asserts the exception's exact type (ValueError or TypeError,
never an IndexError/RuntimeError from deep in torch) and, by regex, that the
message names the argument, the expected and the actual value.

The second half checks the inputs that are *not* errors against numbers:
empty batches, NaN/Inf, non-contiguous tensors, float64, numpy and 0/1 masks.
docs/guarantees.md lists the same contract in prose.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import rnnkit as rk

B, T, F, U = 2, 3, 4, 5  # batch, time, features, units used by every row
NAME = r"'[a-z_0-9]+'"  # a layer's name inside a message


def x_ok(dtype=torch.float32):
    return torch.randn(B, T, F, dtype=dtype)


# ------------------------------------------------------------ the factories
# Each makes a built recurrent layer for (B, T, F) inputs, and says how many
# state tensors its initial_state takes.

RECURRENT = {
    "SimpleRNN": (lambda **kw: rk.SimpleRNN(U, input_shape=(T, F), **kw), 1),
    "GRU": (lambda **kw: rk.GRU(U, input_shape=(T, F), **kw), 1),
    "GRU_v1": (lambda **kw: rk.GRU(U, reset_after=False, input_shape=(T, F), **kw), 1),
    "LSTM": (lambda **kw: rk.LSTM(U, input_shape=(T, F), **kw), 2),
    "RNN(cell)": (lambda **kw: rk.RNN(rk.GRUCell(U), input_shape=(T, F), **kw), 1),
    "RNN(stack)": (lambda **kw: rk.RNN([rk.SimpleRNNCell(U), rk.LSTMCell(U)], input_shape=(T, F), **kw), 3),
    "Bidirectional": (lambda **kw: rk.Bidirectional(rk.LSTM(U, **kw), input_shape=(T, F)), 4),
}


def expect(call, exc, pattern):
    """Run ``call``; the exception must be exactly ``exc`` and match ``pattern``."""
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert re.search(pattern, str(info.value)), f"message {str(info.value)!r} does not match {pattern!r}"


# ----------------------------------------------------- recurrent call table
# (id, call(layer, n_states), exception, regex)

F64 = torch.float64
CALL_ROWS = [
    ("rank2", lambda m, n: m(torch.randn(B, F)), ValueError,
     r"inputs: expected a 3-D tensor \(batch, time, features\), got shape \(2, 4\)"),
    ("rank4", lambda m, n: m(torch.randn(B, T, F, 1)), ValueError,
     r"inputs: expected a 3-D tensor \(batch, time, features\), got shape \(2, 3, 4, 1\)"),
    ("features", lambda m, n: m(torch.randn(B, T, F + 1)), ValueError,
     rf"inputs: layer {NAME} was built for 4 features, got 5 \(shape \(2, 3, 5\)\)"),
    ("zero_time_steps", lambda m, n: m(torch.randn(B, 0, F)), ValueError,
     r"inputs: expected at least one time step, got shape \(2, 0, 4\)"),
    ("int_tensor", lambda m, n: m(torch.ones(B, T, F, dtype=torch.int64)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.int64"),
    ("bool_tensor", lambda m, n: m(torch.ones(B, T, F, dtype=torch.bool)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.bool"),
    ("complex_tensor", lambda m, n: m(torch.ones(B, T, F, dtype=torch.complex64)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.complex64"),
    ("complex_numpy", lambda m, n: m(np.ones((B, T, F), np.complex128)), TypeError,
     r"inputs: expected a real numeric array, got dtype complex128"),
    ("string_numpy", lambda m, n: m(np.full((B, T, F), "a")), TypeError,
     r"inputs: expected a real numeric array, got dtype <U1"),
    ("not_an_array", lambda m, n: m("abc"), TypeError,
     r"inputs: expected a torch\.Tensor or a numpy array, got str"),
    ("float64_on_float32", lambda m, n: m(x_ok(F64)), TypeError,
     r"inputs: dtype torch\.float64 does not match the layer's weights \(torch\.float32\)"),
    ("float16_on_float32", lambda m, n: m(x_ok(torch.float16)), TypeError,
     r"inputs: dtype torch\.float16 does not match the layer's weights \(torch\.float32\)"),
    # masks
    ("mask_shape", lambda m, n: m(x_ok(), mask=torch.ones(B, T + 1, dtype=torch.bool)), ValueError,
     r"mask: expected shape \(batch, time\) = \(2, 3\), got \(2, 4\)"),
    ("mask_values", lambda m, n: m(x_ok(), mask=torch.full((B, T), 2)), ValueError,
     r"mask: expected a bool tensor \(or only 0 and 1\), got torch\.int64 with value 2"),
    ("mask_nan", lambda m, n: m(x_ok(), mask=torch.full((B, T), float("nan"))), ValueError,
     r"mask: expected a bool tensor \(or only 0 and 1\), got torch\.float32 with value nan"),
    ("mask_list", lambda m, n: m(x_ok(), mask=[[1, 1, 1]] * B), TypeError,
     r"mask: expected a bool tensor of shape \(batch, time\), got list"),
    ("mask_string_numpy", lambda m, n: m(x_ok(), mask=np.full((B, T), "y")), TypeError,
     r"mask: expected a bool array of shape \(batch, time\), got dtype <U1"),
    # lengths
    ("lengths_too_long", lambda m, n: m(x_ok(), lengths=[1, T + 1]), ValueError,
     r"lengths: expected values in \[0, 3\] \(the time axis\), got min 1, max 4"),
    ("lengths_negative", lambda m, n: m(x_ok(), lengths=[-1, 2]), ValueError,
     r"lengths: expected values in \[0, 3\] \(the time axis\), got min -1, max 2"),
    ("lengths_non_integer", lambda m, n: m(x_ok(), lengths=[1.5, 2.0]), ValueError,
     r"lengths: expected integer lengths, got non-integer values \[1\.5, 2\.0\]"),
    ("lengths_inf", lambda m, n: m(x_ok(), lengths=[float("inf"), 1.0]), ValueError,
     r"lengths: expected integer lengths, got non-integer values \[inf, 1\.0\]"),
    ("lengths_bool", lambda m, n: m(x_ok(), lengths=[True, False]), ValueError,
     r"lengths: expected integer lengths, got dtype torch\.bool"),
    ("lengths_strings", lambda m, n: m(x_ok(), lengths=["1", "2"]), TypeError,
     r"lengths: expected integer lengths of shape \(batch,\) = \(2,\), got dtype <U1"),
    ("lengths_shape", lambda m, n: m(x_ok(), lengths=[1, 2, 3]), ValueError,
     r"lengths: expected shape \(batch,\) = \(2,\), got \(3,\)"),
    ("lengths_2d", lambda m, n: m(x_ok(), lengths=[[1, 2]]), ValueError,
     r"lengths: expected shape \(batch,\) = \(2,\), got \(1, 2\)"),
    ("lengths_scalar", lambda m, n: m(x_ok(), lengths=3), ValueError,
     r"lengths: expected shape \(batch,\) = \(2,\), got \(\)"),
    ("mask_and_lengths", lambda m, n: m(x_ok(), mask=torch.ones(B, T, dtype=torch.bool), lengths=[1, 2]), ValueError,
     r"mask, lengths: pass one of them, not both"),
    # initial states: count, shape, dtype, type
    ("state_count", lambda m, n: m(x_ok(), initial_state=[torch.zeros(B, U)] * (n + 2)), ValueError,
     r"initial_state: expected .*\d state tensor.*got \d"),
    ("state_shape", lambda m, n: m(x_ok(), initial_state=[torch.zeros(B + 1, U)] * n), ValueError,
     r"initial_state\[0\]: expected shape \(2, 5\), got \(3, 5\)"),
    ("state_float64", lambda m, n: m(x_ok(), initial_state=[torch.zeros(B, U, dtype=F64)] * n), TypeError,
     r"initial_state\[0\]: dtype torch\.float64 does not match the inputs and weights \(torch\.float32\)"),
    ("state_int", lambda m, n: m(x_ok(), initial_state=[torch.zeros(B, U, dtype=torch.int64)] * n), TypeError,
     r"initial_state\[0\]: expected a floating-point tensor \(float32 or float64\), got torch\.int64"),
    ("state_string", lambda m, n: m(x_ok(), initial_state="zeros"), TypeError,
     r"initial_state: expected a (tensor or a )?list of tensors, got str"),
]


@pytest.mark.parametrize("kind", list(RECURRENT))
@pytest.mark.parametrize(("call", "exc", "pattern"), [r[1:] for r in CALL_ROWS], ids=[r[0] for r in CALL_ROWS])
def test_recurrent_layer_bad_call(kind, call, exc, pattern):
    make, n_states = RECURRENT[kind]
    expect(lambda: call(make(), n_states), exc, pattern)


# ------------------------------------------------------ constructor table

CTOR_ROWS = [
    ("units_zero", lambda cls: cls(0), ValueError, r"units: expected a positive int, got 0"),
    ("units_negative", lambda cls: cls(-3), ValueError, r"units: expected a positive int, got -3"),
    ("units_float", lambda cls: cls(2.0), TypeError, r"units: expected a positive int, got float 2\.0"),
    ("units_string", lambda cls: cls("2"), TypeError, r"units: expected a positive int, got str '2'"),
    ("units_bool", lambda cls: cls(True), TypeError, r"units: expected a positive int, got bool True"),
    ("activation", lambda cls: cls(2, activation="tanhh"), ValueError,
     r"activation: unknown activation 'tanhh'; expected one of \[.*'tanh'.*\] or a callable"),
    ("activation_type", lambda cls: cls(2, activation=3), TypeError,
     r"activation: expected an activation name or a callable, got int"),
    ("kernel_initializer", lambda cls: cls(2, kernel_initializer="glorot"), ValueError,
     r"kernel_initializer: unknown initializer 'glorot'; expected one of \[.*'glorot_uniform'.*\]"),
    ("recurrent_initializer", lambda cls: cls(2, recurrent_initializer="orth"), ValueError,
     r"recurrent_initializer: unknown initializer 'orth'; expected one of \[.*'orthogonal'.*\]"),
    ("bias_initializer", lambda cls: cls(2, bias_initializer=[0.0]), TypeError,
     r"bias_initializer: expected an initializer name, a number or a callable, got list"),
    ("dropout_one", lambda cls: cls(2, dropout=1.0), ValueError, r"dropout: expected a float in \[0, 1\), got 1\.0"),
    ("dropout_negative", lambda cls: cls(2, dropout=-0.1), ValueError, r"dropout: expected a float in \[0, 1\), got -0\.1"),
    ("dropout_nan", lambda cls: cls(2, dropout=float("nan")), ValueError, r"dropout: expected a float in \[0, 1\), got nan"),
    ("dropout_string", lambda cls: cls(2, dropout="0.5"), TypeError, r"dropout: expected a float in \[0, 1\), got str"),
    ("recurrent_dropout", lambda cls: cls(2, recurrent_dropout=1.5), ValueError,
     r"recurrent_dropout: expected a float in \[0, 1\), got 1\.5"),
    ("seed", lambda cls: cls(2, seed="7"), TypeError, r"seed: expected an int or None, got str"),
    ("input_size", lambda cls: cls(2, input_size=0), ValueError, r"input_size: expected a positive int, got 0"),
    ("unknown_keyword", lambda cls: cls(2, unitz=3), TypeError, r"unexpected keyword argument 'unitz'"),
]
CELL_CLASSES = [rk.SimpleRNN, rk.GRU, rk.LSTM, rk.SimpleRNNCell, rk.GRUCell, rk.LSTMCell]


@pytest.mark.parametrize("cls", CELL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("make", "exc", "pattern"), [r[1:] for r in CTOR_ROWS], ids=[r[0] for r in CTOR_ROWS])
def test_recurrent_constructor(cls, make, exc, pattern):
    expect(lambda: make(cls), exc, pattern)


@pytest.mark.parametrize("cls", [rk.GRU, rk.LSTM, rk.GRUCell, rk.LSTMCell], ids=lambda c: c.__name__)
def test_recurrent_activation_name(cls):
    expect(lambda: cls(2, recurrent_activation="sigmoidd"), ValueError,
           r"recurrent_activation: unknown activation 'sigmoidd'; expected one of \[.*'sigmoid'.*\]")


# ---------------------------------------------------------- other layers

OTHER_ROWS = [
    # Dense
    ("Dense_units", lambda: rk.Dense(0), ValueError, r"units: expected a positive int, got 0"),
    ("Dense_activation", lambda: rk.Dense(2, activation="soft_max"), ValueError,
     r"activation: unknown activation 'soft_max'; expected one of \[.*\]"),
    ("Dense_initializer", lambda: rk.Dense(2, kernel_initializer="he"), ValueError,
     r"kernel_initializer: unknown initializer 'he'; expected one of \[.*\]"),
    ("Dense_features", lambda: rk.Dense(3, input_size=F)(torch.ones(B, F + 1)), ValueError,
     rf"inputs: layer {NAME} expects 4 features, got shape \(2, 5\)"),
    ("Dense_scalar", lambda: rk.Dense(3)(torch.tensor(1.0)), ValueError,
     rf"inputs: layer {NAME} expects \(\.\.\., features\), got a 0-D tensor"),
    ("Dense_int", lambda: rk.Dense(3)(torch.ones(B, F, dtype=torch.int32)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.int32"),
    ("Dense_float64_on_float32", lambda: rk.Dense(3, input_size=F)(torch.ones(B, F, dtype=F64)), TypeError,
     rf"inputs: dtype torch\.float64 does not match layer {NAME}'s weights \(torch\.float32\)"),
    # Embedding
    ("Embedding_input_dim", lambda: rk.Embedding(0, 3), ValueError, r"input_dim: expected a positive int, got 0"),
    ("Embedding_output_dim", lambda: rk.Embedding(10, -1), ValueError, r"output_dim: expected a positive int, got -1"),
    ("Embedding_initializer", lambda: rk.Embedding(10, 3, embeddings_initializer="uniform"), ValueError,
     r"embeddings_initializer: unknown initializer 'uniform'; expected one of \[.*\]"),
    ("Embedding_id_too_large", lambda: rk.Embedding(10, 3)(torch.tensor([[1, 10]])), ValueError,
     r"inputs: token ids must lie in \[0, 10\) \(input_dim\), got min 1, max 10"),
    ("Embedding_id_negative", lambda: rk.Embedding(10, 3)(np.array([[-1, 4]])), ValueError,
     r"inputs: token ids must lie in \[0, 10\) \(input_dim\), got min -1, max 4"),
    ("Embedding_inf", lambda: rk.Embedding(10, 3)(torch.tensor([[float("inf")]])), TypeError,
     r"inputs: expected integer token ids, got non-finite torch\.float32 values"),
    ("Embedding_bool", lambda: rk.Embedding(10, 3)(torch.ones(B, T, dtype=torch.bool)), TypeError,
     r"inputs: expected integer token ids, got torch\.bool"),
    ("Embedding_complex", lambda: rk.Embedding(10, 3)(torch.ones(B, T, dtype=torch.complex64)), TypeError,
     r"inputs: expected integer token ids, got torch\.complex64"),
    ("Embedding_strings", lambda: rk.Embedding(10, 3)(np.array([["a", "b"]])), TypeError,
     r"inputs: expected integer token ids, got dtype <U1"),
    # Masking
    ("Masking_value", lambda: rk.Masking("pad"), TypeError, r"mask_value: expected a number, got str 'pad'"),
    ("Masking_rank2", lambda: rk.Masking()(torch.ones(B, F)), ValueError,
     rf"inputs: layer {NAME} expects \(batch, time, features\), got shape \(2, 4\)"),
    ("Masking_int", lambda: rk.Masking()(torch.ones(B, T, F, dtype=torch.int64)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.int64"),
    # Dropout
    ("Dropout_rate", lambda: rk.Dropout(1.0), ValueError, r"rate: expected a float in \[0, 1\), got 1\.0"),
    # TimeDistributed
    ("TimeDistributed_layer", lambda: rk.TimeDistributed("dense"), TypeError,
     r"layer: expected a torch\.nn\.Module, got str"),
    ("TimeDistributed_rank2", lambda: rk.TimeDistributed(rk.Dense(3))(torch.ones(B, F)), ValueError,
     r"inputs: expected \(batch, time, \.\.\.\) with at least 3 axes, got shape \(2, 4\)"),
    ("TimeDistributed_features", lambda: rk.TimeDistributed(rk.Dense(3, input_size=F))(torch.ones(B, T, F + 1)),
     ValueError, rf"inputs: layer {NAME} expects 4 features, got shape \(6, 5\)"),
    ("TimeDistributed_complex", lambda: rk.TimeDistributed(rk.Dense(3))(torch.ones(B, T, F, dtype=torch.complex64)),
     TypeError, r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.complex64"),
    # Bidirectional settings
    ("Bidirectional_layer", lambda: rk.Bidirectional(rk.Dense(2)), TypeError,
     r"layer: expected an rnnkit RNN layer, got Dense"),
    ("Bidirectional_merge_mode", lambda: rk.Bidirectional(rk.GRU(2), merge_mode="max"), ValueError,
     r"merge_mode: expected one of \['ave', 'concat', 'mul', 'sum'\] or None, got 'max'"),
    ("Bidirectional_backward_type", lambda: rk.Bidirectional(rk.GRU(2), backward_layer=rk.Dense(2)), TypeError,
     r"backward_layer: expected an rnnkit RNN layer, got Dense"),
    ("Bidirectional_same_direction", lambda: rk.Bidirectional(rk.GRU(2), backward_layer=rk.GRU(2)), ValueError,
     r"backward_layer: go_backwards=False equals the forward layer's"),
    ("Bidirectional_return_sequences",
     lambda: rk.Bidirectional(rk.GRU(2), backward_layer=rk.GRU(2, go_backwards=True, return_sequences=True)),
     ValueError, r"backward_layer: return_sequences=True differs from the forward layer's return_sequences=False"),
    ("Bidirectional_return_state",
     lambda: rk.Bidirectional(rk.GRU(2, return_state=True), backward_layer=rk.GRU(2, go_backwards=True)),
     ValueError, r"backward_layer: return_state=False differs from the forward layer's return_state=True"),
    ("Bidirectional_stateful",
     lambda: rk.Bidirectional(rk.GRU(2), backward_layer=rk.GRU(2, go_backwards=True, stateful=True)),
     ValueError, r"backward_layer: stateful=True differs from the forward layer's stateful=False"),
    # RNN(cell)
    ("RNN_not_a_cell", lambda: rk.RNN(rk.Dense(3)), TypeError,
     r"cell: expected a cell with `state_size` and forward\(x, state\) -> \(y, state\), got Dense"),
    ("RNN_empty_stack", lambda: rk.RNN([]), ValueError, r"cells: expected at least one cell, got an empty list"),
    ("RNN_shared_cell_in_stack", lambda: rk.RNN([rk.GRUCell(2)] * 2), ValueError,
     r"cells\[1\]: the same cell object appears twice"),
    # Sequential
    ("Sequential_summary_unbuilt", lambda: rk.Sequential([rk.GRU(2)]).summary(), ValueError,
     r"summary: the model is not built yet; give the first layer input_shape=\(time, features\)"),
    ("Sequential_no_layers", lambda: rk.Sequential()(x_ok()), ValueError,
     r"Sequential: the model has no layers; add\(\) some first"),
    ("Sequential_add_non_module", lambda: rk.Sequential().add("LSTM"), TypeError,
     r"layer: expected an rnnkit layer or a torch\.nn\.Module, got str"),
    ("Sequential_add_return_state", lambda: rk.Sequential().add(rk.LSTM(2, return_state=True)), ValueError,
     r"layer: .* has return_state=True and returns a list"),
    ("Sequential_features", lambda: rk.Sequential([rk.GRU(2, input_shape=(T, F))])(torch.ones(B, T, F + 1)),
     ValueError, rf"inputs: layer {NAME} was built for 4 features, got 5"),
    ("Sequential_int", lambda: rk.Sequential([rk.GRU(2)])(torch.ones(B, T, F, dtype=torch.int64)), TypeError,
     r"inputs: expected a floating-point tensor \(float32 or float64\), got torch\.int64"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [r[1:] for r in OTHER_ROWS], ids=[r[0] for r in OTHER_ROWS])
def test_other_layers(call, exc, pattern):
    expect(call, exc, pattern)


# ------------------------------------------------------- cells called directly

def _cell(kind):
    return {"SimpleRNNCell": rk.SimpleRNNCell, "GRUCell": rk.GRUCell, "LSTMCell": rk.LSTMCell}[kind](U, input_size=F)


def _state(kind, *shape, dtype=torch.float32):
    s = torch.zeros(*shape, dtype=dtype)
    return rk.LSTMState(s, s) if kind == "LSTMCell" else s


CELL_ROWS = [
    ("rank3", lambda c, k: c(torch.ones(B, T, F), _state(k, B, U)), ValueError,
     rf"x_t: cell {NAME} expects one time step \(batch, features\), got shape \(2, 3, 4\)"),
    ("rank1", lambda c, k: c(torch.ones(F), _state(k, B, U)), ValueError,
     rf"x_t: cell {NAME} expects one time step \(batch, features\), got shape \(4,\)"),
    ("features", lambda c, k: c(torch.ones(B, F - 1), _state(k, B, U)), ValueError,
     rf"x_t: cell {NAME} was built for 4 input features, got 3 \(shape \(2, 3\)\)"),
    ("int", lambda c, k: c(torch.ones(B, F, dtype=torch.int64), _state(k, B, U)), TypeError,
     r"x_t: expected a floating-point tensor \(float32 or float64\), got torch\.int64"),
    ("complex_numpy", lambda c, k: c(np.ones((B, F), np.complex64), _state(k, B, U)), TypeError,
     r"x_t: expected a real numeric array, got dtype complex64"),
    ("float64_on_float32", lambda c, k: c(torch.ones(B, F, dtype=F64), _state(k, B, U, dtype=F64)), TypeError,
     rf"x_t: dtype torch\.float64 does not match cell {NAME}'s weights \(torch\.float32\)"),
    ("state_units", lambda c, k: c(torch.ones(B, F), _state(k, B, U + 1)), ValueError,
     rf"state(\[0\])?: cell {NAME} expects shape \(batch, 5\) = \(2, 5\), got \(2, 6\)"),
    ("state_batch", lambda c, k: c(torch.ones(B, F), _state(k, B + 1, U)), ValueError,
     rf"state(\[0\])?: cell {NAME} expects shape \(batch, 5\) = \(2, 5\), got \(3, 5\)"),
    ("state_float64", lambda c, k: c(torch.ones(B, F), _state(k, B, U, dtype=F64)), TypeError,
     r"state(\[0\])?: dtype torch\.float64 does not match the input's \(torch\.float32\)"),
    ("state_none", lambda c, k: c(torch.ones(B, F), None), TypeError,
     rf"state: cell {NAME} expects a (tensor of shape \(2, 5\)|tuple of 2 tensors), got NoneType"),
]


@pytest.mark.parametrize("kind", ["SimpleRNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize(("call", "exc", "pattern"), [r[1:] for r in CELL_ROWS], ids=[r[0] for r in CELL_ROWS])
def test_cell_called_directly(kind, call, exc, pattern):
    expect(lambda: call(_cell(kind), kind), exc, pattern)


def test_lstm_cell_state_structure():
    # A bare tensor used to unpack along the batch axis and broadcast: a silent wrong result.
    cell = rk.LSTMCell(U, input_size=F)
    expect(lambda: cell(torch.ones(B, F), torch.zeros(B, U)), TypeError,
           rf"state: cell {NAME} expects a tuple of 2 tensors, got a tensor of shape \(2, 5\)")
    expect(lambda: cell(torch.ones(B, F), (torch.zeros(B, U),) * 3), TypeError,
           rf"state: cell {NAME} expects a tuple of 2 tensors, got tuple")


def test_stacked_cells_state_count():
    stack = rk.StackedRNNCells([rk.SimpleRNNCell(U), rk.GRUCell(U)])
    expect(lambda: stack(torch.ones(B, F), (torch.zeros(B, U),)), ValueError,
           rf"states: {NAME} expects a tuple of 2 per-cell states, got 1")


# ---------------------------------------------------------------- set_weights

SET_WEIGHTS_ROWS = [
    ("count", lambda m: m.set_weights(m.get_weights()[:-1]), ValueError,
     rf"weights: layer {NAME} expects 3 arrays \[\(4, 5\), \(5, 5\), \(5,\)\], got 2"),
    ("shape", lambda m: m.set_weights([np.zeros((F, U)), np.zeros((U, U)), np.zeros(U + 1)]), ValueError,
     rf"weights\[2\]: layer {NAME} expects shape \(5,\), got \(6,\)"),
    ("transposed", lambda m: m.set_weights([np.zeros((U, F)), np.zeros((U, U)), np.zeros(U)]), ValueError,
     rf"weights\[0\]: layer {NAME} expects shape \(4, 5\), got \(5, 4\)"),
    ("complex", lambda m: m.set_weights([np.zeros((F, U)), np.zeros((U, U)), np.zeros(U, complex)]), TypeError,
     rf"weights\[2\]: layer {NAME} expects a real numeric array, got dtype complex128"),
    ("strings", lambda m: m.set_weights([np.zeros((F, U)), np.full((U, U), "w"), np.zeros(U)]), TypeError,
     rf"weights\[1\]: layer {NAME} expects a real numeric array, got dtype <U1"),
    ("not_a_list", lambda m: m.set_weights(np.zeros((F, U))), TypeError,
     rf"weights: layer {NAME} expects a list of arrays, got ndarray"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [r[1:] for r in SET_WEIGHTS_ROWS], ids=[r[0] for r in SET_WEIGHTS_ROWS])
def test_set_weights(call, exc, pattern):
    layer = rk.SimpleRNN(U, input_shape=(T, F))
    before = layer.get_weights()
    expect(lambda: call(layer), exc, pattern)
    # A rejected list changes nothing: every array is checked before any is copied.
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_before_build():
    expect(lambda: rk.LSTM(3).set_weights([]), ValueError,
           rf"weights: layer {NAME} is not built yet; give it input_shape=\.\.\. or call it on data first")


def test_set_weights_accepts_parameters_of_a_twin():
    a, b = rk.GRU(U, input_shape=(T, F)), rk.GRU(U, input_shape=(T, F))
    b.set_weights(a.weights)  # tensors that require grad are fine
    x = x_ok()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


# ===================================================== defined results

def _clone_layer(kind):
    """Two layers of ``kind`` with the same weights (for clean vs. dirty runs)."""
    make, _ = RECURRENT[kind]
    a = make(return_sequences=True)
    b = make(return_sequences=True)
    b.set_weights(a.get_weights())
    return a, b


@pytest.mark.parametrize("kind", list(RECURRENT))
@pytest.mark.parametrize("with_mask", [False, True])
def test_empty_batch_gives_empty_output(kind, with_mask):
    make, _ = RECURRENT[kind]
    layer = make(return_sequences=True, return_state=True)
    x = torch.zeros(0, T, F, requires_grad=True)
    kw = {"lengths": torch.zeros(0, dtype=torch.long)} if with_mask else {}
    out, *states = layer(x, **kw)
    states = rk.rnn.tree_flatten(states)  # stacked cells nest their states per cell (Keras 3)
    width = 2 * U if kind == "Bidirectional" else U
    assert out.shape == (0, T, width) and out.dtype == torch.float32
    assert all(s.shape == (0, U) for s in states)
    out.sum().backward()  # the graph is valid too
    assert x.grad.shape == (0, T, F)


@pytest.mark.parametrize(
    "layer",
    [rk.Dense(3, input_size=F), rk.TimeDistributed(rk.Dense(3, input_size=F)), rk.Masking(),
     rk.Sequential([rk.Masking(input_shape=(T, F)), rk.LSTM(U, return_sequences=True), rk.Dense(1)])],
    ids=["Dense", "TimeDistributed", "Masking", "Sequential"],
)
def test_empty_batch_other_layers(layer):
    y = layer(torch.zeros(0, T, F))
    assert y.shape[:2] == (0, T) and y.numel() == 0


def test_empty_batch_embedding_and_cell():
    assert rk.Embedding(10, 3)(torch.zeros(0, T, dtype=torch.long)).shape == (0, T, 3)
    y, s = rk.LSTMCell(U, input_size=F)(torch.zeros(0, F), rk.LSTMState(torch.zeros(0, U), torch.zeros(0, U)))
    assert y.shape == (0, U) and s.c.shape == (0, U)


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "GRU_v1", "LSTM", "RNN(stack)"])
def test_nan_propagates_forward_in_its_row_only(kind):
    # NaN at (row 0, step 1): row 0 is unchanged before step 1 and NaN from step 1 on;
    # row 1 is exactly what it is without the NaN. No error anywhere.
    clean, dirty = _clone_layer(kind)
    x = x_ok()
    x_nan = x.clone()
    x_nan[0, 1, 2] = float("nan")
    y, y_nan = clean(x), dirty(x_nan)
    torch.testing.assert_close(y_nan[0, 0], y[0, 0], rtol=0, atol=0)
    assert y_nan[0, 1:].isnan().all()
    torch.testing.assert_close(y_nan[1], y[1], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_inf_input_matches_the_reference_loop(kind):
    # tanh/sigmoid saturate, so +-Inf gives whatever the readable loop gives (often finite);
    # the default path must agree with it, NaNs included, and other rows are untouched.
    make, _ = RECURRENT[kind]
    fast = make(return_sequences=True)
    ref = make(return_sequences=True, unroll=True)
    ref.set_weights(fast.get_weights())
    x = x_ok()
    x[0, 1, 0], x[0, 2, 3] = float("inf"), float("-inf")
    y_fast, y_ref = fast(x), ref(x)
    torch.testing.assert_close(y_fast, y_ref, equal_nan=True)
    torch.testing.assert_close(y_fast[1], ref(x[1:])[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", list(RECURRENT))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_in_padding_touches_neither_outputs_nor_gradients(kind, bad):
    # Padding is ignored: garbage in masked steps gives the numbers (and the
    # gradients) of zeros there. torch.where alone would leak NaN into gradients.
    clean, dirty = _clone_layer(kind)
    x = x_ok()
    lengths = torch.tensor([1, T])
    x_bad = x.clone()
    x_bad[0, 1:] = bad
    y, y_bad = clean(x, lengths=lengths), dirty(x_bad, lengths=lengths)
    torch.testing.assert_close(y_bad, y, rtol=0, atol=0)
    y.square().sum().backward()
    y_bad.square().sum().backward()
    for p, q in zip(clean.parameters(), dirty.parameters()):
        assert q.grad.isfinite().all()
        torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=0)


@pytest.mark.parametrize("kind", list(RECURRENT))
def test_non_contiguous_inputs_give_the_same_numbers(kind):
    make, n = RECURRENT[kind]
    layer = make(return_sequences=True)
    # time-major storage seen as batch-major, and a strided slice of a wider tensor
    x_tm = torch.randn(T, B, F).transpose(0, 1)
    x_strided = torch.randn(B, T, 2 * F)[:, :, ::2]
    mask = torch.ones(T, B, dtype=torch.bool).t()
    mask[0, -1] = False
    states = [torch.randn(U, B).t() for _ in range(n)]
    for x in (x_tm, x_strided):
        assert not x.is_contiguous()
        torch.testing.assert_close(layer(x, mask=mask, initial_state=states),
                                   layer(x.contiguous(), mask=mask.contiguous(),
                                         initial_state=[s.contiguous() for s in states]),
                                   rtol=0, atol=0)


def test_non_contiguous_other_layers():
    x = torch.randn(T, B, F).transpose(0, 1)
    for layer in (rk.Dense(3, input_size=F), rk.TimeDistributed(rk.Dense(3, input_size=F)), rk.Masking()):
        torch.testing.assert_close(layer(x), layer(x.contiguous()), rtol=0, atol=0)
    ids = torch.randint(0, 10, (T, B)).t()
    emb = rk.Embedding(10, 3)
    torch.testing.assert_close(emb(ids), emb(ids.contiguous()), rtol=0, atol=0)


@pytest.mark.parametrize("kind", list(RECURRENT))
def test_float64_layers_take_float64_inputs(kind):
    # A float64 layer gives float64 outputs that agree with the float32 layer
    # holding the same weights (to float32 precision).
    make, _ = RECURRENT[kind]
    l32 = make(return_sequences=True)
    l64 = make(return_sequences=True).double()
    l64.set_weights(l32.get_weights())
    x = x_ok(F64)
    y64 = l64(x, lengths=[2, T])
    assert y64.dtype == F64
    torch.testing.assert_close(y64, l32(x.float(), lengths=[2, T]).double(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM], ids=lambda c: c.__name__)
def test_float64_lazy_build_and_gradcheck(cls):
    # Built lazily from float64 data, the layer is float64; its gradients pass gradcheck.
    layer = cls(3, return_sequences=True)
    x = torch.randn(2, 3, 2, dtype=F64, requires_grad=True)
    layer(x)
    assert all(p.dtype == F64 for p in layer.parameters())
    assert torch.autograd.gradcheck(lambda x: layer(x, lengths=[2, 3]), (x,))


def test_numpy_inputs_become_float32():
    # numpy data of any real dtype becomes float32, as in Keras.
    layer = rk.GRU(U, input_shape=(T, F))
    ints = np.arange(B * T * F).reshape(B, T, F) % 3
    expected = layer(torch.from_numpy(ints.astype(np.float32)))
    for arr in (ints, ints.astype(np.float64), ints.astype(np.uint8)):
        torch.testing.assert_close(layer(arr), expected, rtol=0, atol=0)
    bools = ints > 0
    torch.testing.assert_close(layer(bools), layer(torch.from_numpy(bools.astype(np.float32))), rtol=0, atol=0)


def test_zero_one_masks_equal_bool_masks():
    layer = rk.LSTM(U, input_shape=(T, F), return_sequences=True)
    x = x_ok()
    m = torch.tensor([[True, False, True], [True, True, False]])
    want = layer(x, mask=m)
    for other in (m.float(), m.long(), m.numpy(), m.numpy().astype(np.int8)):
        torch.testing.assert_close(layer(x, mask=other), want, rtol=0, atol=0)


def test_integral_float_ids_equal_int_ids():
    emb = rk.Embedding(10, 3)
    ids = torch.tensor([[1, 2, 9]])
    torch.testing.assert_close(emb(ids.double()), emb(ids), rtol=0, atol=0)
    torch.testing.assert_close(emb(ids.numpy()), emb(ids), rtol=0, atol=0)


def test_bidirectional_states_checked_per_direction():
    layer = rk.Bidirectional(rk.GRU(U), input_shape=(T, F))
    expect(lambda: layer(x_ok(), initial_state=[torch.zeros(B, U)] * 3), ValueError,
           r"initial_state: expected the forward states then the backward states \(an even count\), got 3")
    expect(lambda: layer(x_ok(), initial_state=[torch.zeros(B, U), torch.zeros(B + 1, U)]), ValueError,
           r"initial_state\[0\]: expected shape \(2, 5\), got \(3, 5\)")
    # The right count and shapes work and matter: each half starts from its own state.
    h_f, h_b = torch.randn(B, U), torch.randn(B, U)
    y = layer(x_ok(), initial_state=[h_f, h_b])
    assert y.shape == (B, 2 * U)


def test_stateful_batch_change_is_an_error():
    layer = rk.GRU(U, stateful=True, input_shape=(T, F))
    layer(x_ok())
    expect(lambda: layer(torch.randn(B + 1, T, F)), ValueError,
           rf"inputs: stateful layer {NAME} carries state for batch size 2, got batch size 3; call reset_state\(\) to start over")
    layer.reset_state()
    assert layer(torch.randn(B + 1, T, F)).shape == (B + 1, U)

