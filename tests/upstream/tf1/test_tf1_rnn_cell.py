"""TensorFlow's TF1 RNN tests, ported: tensorflow/python/kernel_tests/nn_ops/rnn_cell_test.py.

One test per upstream test method, named after its class and method. TF1's
graph/session plumbing is gone (rnnkit.v1 is eager); the facts checked, the
expected numbers and the tolerances are TF1's. Upstream tests with no
meaning on PyTorch are listed, with the reason, in tests/upstream/tf1/README.md.
"""

import itertools

import numpy as np
import pytest
import torch
from tf1_helpers import Plus1RNNCell, constant, tf1_weights, uniform
from torch import nn

from rnnkit import v1

SEED = 23489
UPSTREAM = "tensorflow/python/kernel_tests/nn_ops/rnn_cell_test.py"

NO_CONCAT_STATE = "rnnkit: state_is_tuple=False (one concatenated LSTM state tensor)"
NO_STATE_SAVER = "rnnkit: no static_state_saving_rnn"
NO_RAW_RNN = "rnnkit: no raw_rnn (loop_fn-driven RNN)"


def np_(t):
    return t.detach().cpu().numpy()


def close(actual, expected, rtol=1e-6, atol=1e-6):
    """TF's assertAllClose defaults (float32: rtol = atol = 1e-6)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


def lstm(num_units, fill, input_size, **kwargs):
    return tf1_weights(v1.LSTMCell(num_units, **kwargs), fill, input_size=input_size)


# ============================================================== RNNTest


def test_rnntest_invalid_sequence_length_shape():
    """rnn_cell_test.py RNNTest.testInvalidSequenceLengthShape: a scalar sequence_length is rejected."""
    inputs = [torch.zeros(3, 4)]
    with pytest.raises(ValueError, match="must be a vector"):
        v1.static_rnn(Plus1RNNCell(), inputs, dtype=torch.float32, sequence_length=4)


def test_rnntest_rnn():
    """rnn_cell_test.py RNNTest.testRNN: static_rnn over the +1 cell, 8 steps of one input."""
    np.random.seed(SEED)
    batch_size, input_size, max_length = 2, 5, 8
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    outputs, state = v1.static_rnn(Plus1RNNCell(), inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs):
        assert out.shape == inp.shape
        assert out.dtype == inp.dtype
    for v in outputs:
        close(np_(v), input_value + 1.0)
    close(np_(state), max_length * np.ones((batch_size, input_size), dtype=np.float32))


def test_rnntest_dropout():
    """rnn_cell_test.py RNNTest.testDropout: input_keep_prob=1e-6 drops every input, so outputs are 1."""
    np.random.seed(SEED)
    cell = Plus1RNNCell()
    full_dropout_cell = v1.DropoutWrapper(cell, input_keep_prob=1e-6, seed=0)
    assert full_dropout_cell.cell is cell
    batch_size, input_size, max_length = 2, 5, 8
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    outputs, state = v1.static_rnn(cell, inputs, dtype=torch.float32)
    dropped_outputs, _ = v1.static_rnn(full_dropout_cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs):
        assert list(out.shape) == list(inp.shape)
        assert out.dtype == inp.dtype
    for v in outputs:
        close(np_(v), input_value + 1.0)
    for d_v in dropped_outputs[:-1]:  # upstream checks all but the last step
        close(np_(d_v), np.ones_like(input_value))


def test_rnntest_dynamic_calculation():
    """rnn_cell_test.py RNNTest.testDynamicCalculation: static_rnn with sequence_length [2, 3]."""
    np.random.seed(SEED)
    batch_size, input_size, max_length = 2, 5, 8
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    dynamic_outputs, dynamic_state = v1.static_rnn(
        Plus1RNNCell(), inputs, sequence_length=np.array([2, 3], dtype=np.int64), dtype=torch.float32
    )
    assert len(dynamic_outputs) == len(inputs)
    values = [np_(v) for v in dynamic_outputs]
    for v in values[:2]:
        close(v, input_value + 1.0)
    close(values[2], np.vstack((np.zeros(input_size), 1.0 + input_value[1, :])))
    for v in values[3:]:
        np.testing.assert_array_equal(v, np.zeros_like(input_value))
    np.testing.assert_array_equal(
        np_(dynamic_state), np.vstack((1.0 * (1 + 1) * np.ones(input_size), 1.0 * (2 + 1) * np.ones(input_size)))
    )


# ============================================================== LSTMTest


def test_lstmtest_dtype():
    """rnn_cell_test.py LSTMTest.testDType: the bias takes the cell's dtype, float32 by default."""
    cell = v1.LSTMCell(10)
    cell.build((10, 50))
    assert cell.bias.dtype == torch.float32
    for dtype in (torch.float16, torch.float32, torch.float64):
        cell = v1.LSTMCell(10, dtype=dtype)
        cell.build((10, 50))
        assert cell.bias.dtype == dtype


def _static_lstm_outputs(cell, batch_size=2, input_size=5, max_length=8, dtype=torch.float32, **kwargs):
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=dtype)]
    outputs, state = v1.static_rnn(cell, inputs, **kwargs)
    assert len(outputs) == len(inputs)
    return input_value, outputs, state


def test_lstmtest_no_proj_no_sharding():
    """rnn_cell_test.py LSTMTest.testNoProjNoSharding: a smoke run of LSTMCell(3) with a concatenated state."""
    np.random.seed(SEED)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, state_is_tuple=False)
    _, outputs, _ = _static_lstm_outputs(cell, dtype=torch.float32)
    for out in outputs:
        assert list(out.shape) == [2, 3]


def test_lstmtest_cell_clipping():
    """rnn_cell_test.py LSTMTest.testCellClipping: cell_clip=0 keeps c at 0, so every output is 0."""
    np.random.seed(SEED)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=True, cell_clip=0.0, state_is_tuple=False)
    _, outputs, _ = _static_lstm_outputs(cell, dtype=torch.float32)
    for out in outputs:
        assert list(out.shape) == [2, 3]
    for value in outputs:
        np.testing.assert_array_equal(np_(value), np.zeros((2, 3)))


class StateSaver:
    """TF1's test state saver: zeros to start from, and a record of every saved state."""

    def __init__(self, batch_size, state_size):
        self.batch_size = batch_size
        self.state_size = state_size
        self.saved_state = {}

    def state(self, name):
        size = self.state_size[name] if isinstance(self.state_size, dict) else self.state_size
        size = (size,) if isinstance(size, int) else tuple(size)
        return torch.zeros((self.batch_size, *size))

    def save_state(self, name, state):
        self.saved_state[name] = state
        return state


def test_lstmtest_no_proj_no_sharding_simple_state_saver():
    """rnn_cell_test.py LSTMTest.testNoProjNoShardingSimpleStateSaver: the saved state is the last state."""
    np.random.seed(SEED)
    saver = StateSaver(2, 2 * 3)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=False, state_is_tuple=False)
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    outputs, state = v1.static_state_saving_rnn(cell, inputs, state_saver=saver, state_name="save_lstm")
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [2, 3]
    np.testing.assert_array_equal(np_(state), np_(saver.saved_state["save_lstm"]))


def test_lstmtest_no_proj_no_sharding_tuple_state_saver():
    """rnn_cell_test.py LSTMTest.testNoProjNoShardingTupleStateSaver: c and m saved under their names."""
    np.random.seed(SEED)
    saver = StateSaver(2, 3)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=False, state_is_tuple=True)
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    outputs, state = v1.static_state_saving_rnn(cell, inputs, state_saver=saver, state_name=("c", "m"))
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [2, 3]
    last_and_saved = [np_(s) for s in (*state, saver.saved_state["c"], saver.saved_state["m"])]
    assert len(last_and_saved) == 4
    np.testing.assert_array_equal(last_and_saved[:2], last_and_saved[2:])


def test_lstmtest_no_proj_no_sharding_nested_tuple_state_saver():
    """rnn_cell_test.py LSTMTest.testNoProjNoShardingNestedTupleStateSaver: 4 LSTMs, 8 named states saved."""
    np.random.seed(SEED)
    num_units = 3
    saver = StateSaver(2, {f"{k}{i}": num_units + i for i in range(4) for k in ("c", "m")})
    fill = uniform(-0.01, 0.01, SEED)
    cells = []
    in_size = 5
    for i in range(4):
        cells.append(lstm(num_units + i, fill, in_size, use_peepholes=False, state_is_tuple=True))
        in_size = num_units + i
    cell = v1.MultiRNNCell(cells, state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    state_names = (("c0", "m0"), ("c1", "m1"), ("c2", "m2"), ("c3", "m3"))
    outputs, state = v1.static_state_saving_rnn(cell, inputs, state_saver=saver, state_name=state_names)
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [2, num_units + 3]
    last_states = [s for layer in state for s in layer]
    assert len(last_states) == 8
    assert len(saver.saved_state) == 8
    flat_names = [n for pair in state_names for n in pair]
    for i in range(8):
        np.testing.assert_array_equal(np_(last_states[i]), np_(saver.saved_state[flat_names[i]]))


def test_lstmtest_proj_no_sharding():
    """rnn_cell_test.py LSTMTest.testProjNoSharding: a smoke run with peepholes and num_proj=4."""
    np.random.seed(SEED)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=True, num_proj=4, state_is_tuple=False)
    _static_lstm_outputs(cell, dtype=torch.float32)


def test_lstmtest_proj_sharding():
    """rnn_cell_test.py LSTMTest.testProjSharding: a smoke run with sharded kernel and projection."""
    np.random.seed(SEED)
    cell = lstm(
        3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=True, num_proj=4,
        num_unit_shards=2, num_proj_shards=3, state_is_tuple=False,
    )
    _static_lstm_outputs(cell, dtype=torch.float32)


def test_lstmtest_double_input():
    """rnn_cell_test.py LSTMTest.testDoubleInput: float64 inputs and zero_state give float64 outputs."""
    np.random.seed(SEED)
    cell = v1.LSTMCell(3, use_peepholes=True, num_proj=4, num_unit_shards=2, num_proj_shards=3, state_is_tuple=False)
    tf1_weights(cell, uniform(-1, 1, SEED), input_size=5, like=torch.zeros(0, dtype=torch.float64))
    input_value = np.asarray(np.random.randn(2, 5), dtype=np.float64)
    inputs = 8 * [torch.tensor(input_value)]
    outputs, _ = v1.static_rnn(cell, inputs, initial_state=cell.zero_state(2, torch.float64))
    assert len(outputs) == len(inputs)
    assert np_(outputs[0]).dtype == input_value.dtype


def test_lstmtest_shard_no_shard_equivalent_output():
    """rnn_cell_test.py LSTMTest.testShardNoShardEquivalentOutput: sharding does not change the numbers."""
    np.random.seed(SEED)
    cell_noshard = lstm(
        3, constant(0.001), 5, num_proj=4, use_peepholes=True, num_unit_shards=2, num_proj_shards=3,
        state_is_tuple=False,
    )
    cell_shard = lstm(3, constant(0.001), 5, use_peepholes=True, num_proj=4, state_is_tuple=False)
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    outputs_noshard, state_noshard = v1.static_rnn(cell_noshard, inputs, dtype=torch.float32)
    outputs_shard, state_shard = v1.static_rnn(cell_shard, inputs, dtype=torch.float32)
    assert len(outputs_noshard) == len(inputs) == len(outputs_shard)
    for v_noshard, v_shard in zip(outputs_noshard, outputs_shard):
        close(np_(v_noshard), np_(v_shard), atol=1e-3)
    close(np_(state_noshard), np_(state_shard), atol=1e-3)


def test_lstmtest_double_input_with_dropout_and_dynamic_calculation():
    """rnn_cell_test.py LSTMTest.testDoubleInputWithDropoutAndDynamicCalculation: float64 through dropout and lengths."""
    np.random.seed(SEED)
    cell = v1.LSTMCell(3, use_peepholes=True, num_proj=4, num_unit_shards=2, num_proj_shards=3, state_is_tuple=False)
    tf1_weights(cell, uniform(-0.01, 0.01, SEED), input_size=5, like=torch.zeros(0, dtype=torch.float64))
    dropout_cell = v1.DropoutWrapper(cell, 0.5, seed=0)
    input_value = np.asarray(np.random.randn(2, 5), dtype=np.float64)
    inputs = 8 * [torch.tensor(input_value)]
    outputs, state = v1.static_rnn(
        dropout_cell, inputs, sequence_length=[2, 3], initial_state=cell.zero_state(2, torch.float64)
    )
    assert len(outputs) == len(inputs)
    assert np_(outputs[0]).dtype == input_value.dtype
    assert np_(state).dtype == input_value.dtype


def test_lstmtest_sharing_weights_with_reuse():
    """rnn_cell_test.py LSTMTest.testSharingWeightsWithReuse: one cell twice gives equal outputs, another differs.

    TF1 shared the weights through a reused variable scope; here the same cell object runs twice.
    """
    np.random.seed(SEED)
    cell = lstm(3, uniform(-1, 1, SEED), 5, use_peepholes=True, num_proj=4, state_is_tuple=False)
    cell_d = lstm(3, uniform(-1, 1, SEED + 1), 5, use_peepholes=True, num_proj=4, state_is_tuple=False)
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    outputs0, _ = v1.static_rnn(cell, inputs, dtype=torch.float32)
    outputs1, _ = v1.static_rnn(cell, inputs, dtype=torch.float32)
    outputs2, _ = v1.static_rnn(cell_d, inputs, dtype=torch.float32)
    assert len(outputs0) == len(outputs1) == len(outputs2)
    for o1, o2, o3 in zip(outputs0, outputs1, outputs2):
        np.testing.assert_array_equal(np_(o1), np_(o2))
        assert np.linalg.norm(np_(o1) - np_(o3)) > 1e-6


def test_lstmtest_sharing_weights_with_different_namescope():
    """rnn_cell_test.py LSTMTest.testSharingWeightsWithDifferentNamescope: one cell run twice, equal outputs (name scopes dropped)."""
    np.random.seed(SEED)
    cell = lstm(3, uniform(-1, 1, SEED), 5, use_peepholes=True, num_proj=4, state_is_tuple=False)
    inputs = 8 * [torch.tensor(np.random.randn(2, 5), dtype=torch.float32)]
    outputs0, _ = v1.static_rnn(cell, inputs, dtype=torch.float32)
    outputs1, _ = v1.static_rnn(cell, inputs, dtype=torch.float32)
    assert len(outputs0) == len(outputs1)
    for out0, out1 in zip(outputs0, outputs1):
        np.testing.assert_array_equal(np_(out0), np_(out1))


def test_lstmtest_dynamic_rnn_with_tuple_states():
    """rnn_cell_test.py LSTMTest.testDynamicRNNWithTupleStates: static_rnn and time-major dynamic_rnn agree exactly."""
    np.random.seed(SEED)
    sequence_length = [4, 6]
    inputs = 8 * [torch.tensor(np.random.randn(2, 5).astype(np.float32))]
    inputs_c = torch.stack(inputs)
    cell = lstm(3, uniform(-0.01, 0.01, SEED), 5, use_peepholes=True, num_proj=4, state_is_tuple=True)
    outputs_static, state_static = v1.static_rnn(cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = v1.dynamic_rnn(
        cell, inputs_c, dtype=torch.float32, time_major=True, sequence_length=sequence_length
    )
    assert isinstance(state_static, v1.LSTMStateTuple)
    assert isinstance(state_dynamic, v1.LSTMStateTuple)
    assert state_static[0] is state_static.c
    assert state_static[1] is state_static.h
    assert state_dynamic[0] is state_dynamic.c
    assert state_dynamic[1] is state_dynamic.h
    np.testing.assert_array_equal(np_(torch.stack(outputs_static)), np_(outputs_dynamic))
    np.testing.assert_array_equal(np.hstack([np_(s) for s in state_static]), np.hstack([np_(s) for s in state_dynamic]))


def test_lstmtest_dynamic_rnn_with_nested_tuple_states():
    """rnn_cell_test.py LSTMTest.testDynamicRNNWithNestedTupleStates: 4 stacked projected LSTMs, static == dynamic."""
    np.random.seed(SEED)
    num_units, num_proj = 3, 4
    sequence_length = [4, 6]
    inputs = 8 * [torch.tensor(np.random.randn(2, 5).astype(np.float32))]
    inputs_c = torch.stack(inputs)
    fill = uniform(-0.01, 0.01, SEED)
    cells, in_size = [], 5
    for i in range(4):
        cells.append(lstm(num_units + i, fill, in_size, use_peepholes=True, num_proj=num_proj + i, state_is_tuple=True))
        in_size = num_proj + i
    cell = v1.MultiRNNCell(cells, state_is_tuple=True)
    assert len(cell.state_size) == 4
    for i in range(4):
        assert len(cell.state_size[i]) == 2
    test_zero = cell.zero_state(1, torch.float32)
    assert len(test_zero) == 4
    for i in range(4):
        assert test_zero[i][0].shape[1] == cell.state_size[i][0]
        assert test_zero[i][1].shape[1] == cell.state_size[i][1]
    outputs_static, state_static = v1.static_rnn(cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = v1.dynamic_rnn(
        cell, inputs_c, dtype=torch.float32, time_major=True, sequence_length=sequence_length
    )
    np.testing.assert_array_equal(np_(torch.stack(outputs_static)), np_(outputs_dynamic))
    flat_static = [np_(s) for layer in state_static for s in layer]
    flat_dynamic = [np_(s) for layer in state_dynamic for s in layer]
    np.testing.assert_array_equal(np.hstack(flat_static), np.hstack(flat_dynamic))


def _dynamic_equivalent_to_static(use_sequence_length, exact=False):
    """static_rnn against time-major dynamic_rnn: outputs, state and gradients; bit-equal if ``exact``."""
    compare = np.testing.assert_array_equal if exact else close
    time_steps, num_units, num_proj, input_size, batch_size = 8, 3, 4, 5, 2
    np.random.seed(SEED)
    input_values = np.random.randn(time_steps, batch_size, input_size).astype(np.float32)
    sequence_length = np.random.randint(0, time_steps, size=batch_size) if use_sequence_length else None
    cell = lstm(num_units, uniform(-0.01, 0.01, SEED), input_size, use_peepholes=True, num_proj=num_proj, state_is_tuple=False)
    params = list(cell.parameters())
    assert len(params) > 1

    def run(dynamic):
        concat_inputs = torch.tensor(input_values, requires_grad=True)
        if dynamic:
            out, state = v1.dynamic_rnn(
                cell, concat_inputs, sequence_length=sequence_length, time_major=True, dtype=torch.float32
            )
            outputs = list(out.unbind(0))
        else:
            outputs, state = v1.static_rnn(
                cell, list(concat_inputs.unbind(0)), sequence_length=sequence_length, dtype=torch.float32
            )
        total = sum(o.sum() for o in outputs) + state.sum()
        grad = torch.autograd.grad(total, [concat_inputs], retain_graph=True)
        individual = [
            g for y in (outputs[0], outputs[-1], state)
            for g in torch.autograd.grad(y.sum(), [concat_inputs], retain_graph=True)
        ]
        var_grads = [
            g for y in (outputs[0], outputs[-1], state)
            for g in torch.autograd.grad(y.sum(), params, retain_graph=True, allow_unused=True)
        ]
        return outputs, state, grad, individual, var_grads

    static, dynamic = run(False), run(True)
    assert len(static[0]) == len(dynamic[0])
    for a, b in zip(static[0], dynamic[0]):
        compare(np_(a), np_(b))
    compare(np_(static[1]), np_(dynamic[1]))
    for group in (2, 3, 4):
        assert len(static[group]) == len(dynamic[group])
        for a, b in zip(static[group], dynamic[group]):
            a = np.zeros(1) if a is None else np_(a)
            b = np.zeros(1) if b is None else np_(b)
            compare(a, b)


def test_lstmtest_dynamic_equivalent_to_static_rnn():
    """rnn_cell_test.py LSTMTest.testDynamicEquivalentToStaticRNN: outputs, state and gradients agree."""
    _dynamic_equivalent_to_static(use_sequence_length=False)


def test_lstmtest_dynamic_equivalent_to_static_rnn_with_sequence_length():
    """rnn_cell_test.py LSTMTest.testDynamicEquivalentToStaticRNNWithSequenceLength: the same, with random lengths."""
    _dynamic_equivalent_to_static(use_sequence_length=True)


# ============================================================== BidirectionalRNNTest

NO_STATIC_BIDI = "rnnkit: no static_bidirectional_rnn; " + NO_CONCAT_STATE
NO_DYNAMIC_BIDI = "rnnkit: no bidirectional_dynamic_rnn; " + NO_CONCAT_STATE


def _bidirectional_static(use_sequence_length):
    np.random.seed(SEED)
    num_units, input_size, batch_size, max_length = 3, 5, 2, 8
    # TF1's test passes input_size where LSTMCell takes use_peepholes, so both cells have peepholes.
    cell_fw = lstm(num_units, uniform(-0.01, 0.01, SEED), input_size, use_peepholes=input_size, state_is_tuple=False)
    cell_bw = lstm(num_units, uniform(-0.01, 0.01, SEED), input_size, use_peepholes=input_size, state_is_tuple=False)
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    outputs, state_fw, state_bw = v1.static_bidirectional_rnn(
        cell_fw, cell_bw, inputs, dtype=torch.float32, sequence_length=[2, 3] if use_sequence_length else None
    )
    assert len(outputs) == len(inputs)
    for out in outputs:
        assert list(out.shape) == [batch_size, 2 * num_units]
    return np_(torch.stack(outputs)), np_(state_fw), np_(state_bw)


def test_bidirectionalrnntest_bidirectional_rnn():
    """rnn_cell_test.py BidirectionalRNNTest.testBidirectionalRNN: equal fw/bw cells mirror each other in time."""
    out, s_fw, s_bw = _bidirectional_static(use_sequence_length=True)
    for t_fw, t_bw in ((0, 1), (1, 0)):  # row 0 has length 2
        close(out[t_fw][0][0:3], out[t_bw][0][3:6])
    for t_fw, t_bw in ((0, 2), (1, 1), (2, 0)):  # row 1 has length 3
        close(out[t_fw][1][0:3], out[t_bw][1][3:6])
    close(s_fw, s_bw)


def test_bidirectionalrnntest_bidirectional_rnn_without_sequence_length():
    """rnn_cell_test.py BidirectionalRNNTest.testBidirectionalRNNWithoutSequenceLength: full-length mirror."""
    out, s_fw, s_bw = _bidirectional_static(use_sequence_length=False)
    for i in range(8):
        close(out[i][0][0:3], out[8 - 1 - i][0][3:6])
        close(out[i][1][0:3], out[8 - 1 - i][1][3:6])
    close(s_fw, s_bw)


def test_bidirectionalrnntest_bidirectional_dynamic_rnn():
    """rnn_cell_test.py BidirectionalRNNTest.testBidirectionalDynamicRNN: every state/time-major/length option.

    TF1's use_shape option (a placeholder's static batch size) has no eager meaning and is dropped.
    """
    num_units, input_size, batch_size, max_length = 3, 5, 2, 8
    for use_state_tuple, use_time_major, use_sequence_length in itertools.product([True, False], repeat=3):
        np.random.seed(SEED)
        cell_fw = lstm(num_units, uniform(-0.01, 0.01, SEED), input_size, state_is_tuple=use_state_tuple)
        cell_bw = lstm(num_units, uniform(-0.01, 0.01, SEED), input_size, state_is_tuple=use_state_tuple)
        input_value = np.random.randn(batch_size, input_size)
        inputs_c = torch.stack(max_length * [torch.tensor(input_value, dtype=torch.float32)])
        if not use_time_major:
            inputs_c = inputs_c.transpose(0, 1)
        outputs, (state_fw, state_bw) = v1.bidirectional_dynamic_rnn(
            cell_fw, cell_bw, inputs_c, [2, 3] if use_sequence_length else None,
            dtype=torch.float32, time_major=use_time_major,
        )
        out = np_(torch.cat(outputs, 2))
        expected = [max_length, batch_size, 2 * num_units] if use_time_major else [batch_size, max_length, 2 * num_units]
        assert list(out.shape) == expected
        if use_state_tuple:
            s_fw, s_bw = tuple(np_(s) for s in state_fw), tuple(np_(s) for s in state_bw)
        else:
            s_fw, s_bw = np_(state_fw), np_(state_bw)
        if not use_time_major:
            out = np.swapaxes(out, 0, 1)
        if use_sequence_length:
            for t_fw, t_bw in ((0, 1), (1, 0)):
                for d in range(3):
                    assert out[t_fw][0][d] == out[t_bw][0][d + 3]
            for t_fw, t_bw in ((0, 2), (1, 1), (2, 0)):
                for d in range(3):
                    assert out[t_fw][1][d] == out[t_bw][1][d + 3]
            close(s_fw, s_bw)
        else:
            for t in range(max_length):
                np.testing.assert_array_equal(out[t, :, 0:3], out[max_length - t - 1, :, 3:6])
            close(s_fw, s_bw)


# ============================================================== MultiDimensionalLSTMTest / NestedLSTMTest


class DummyMultiDimensionalLSTM(nn.Module):
    """TF1's test cell over (batch, *dims) steps: ``(x + 1, (h + 1, c + 1))``.

    TF1's TensorShape sizes are torch.Size here: one tensor's feature shape, not a nest of widths.
    """

    def __init__(self, dims):
        super().__init__()
        self.output_size = torch.Size(dims)
        self.state_size = (torch.Size(dims), torch.Size(dims))

    def forward(self, x_t, state):
        h, c = state
        return x_t + 1, (h + 1, c + 1)


def test_multidimensionallstmtest_multi_dimensional_lstm_all_rnn_containers():
    """rnn_cell_test.py MultiDimensionalLSTMTest.testMultiDimensionalLSTMAllRNNContainers: every container agrees."""
    np.random.seed(SEED)
    feature_dims = (3, 4, 5)
    batch_size, max_length, sequence_length = 2, 8, [4, 6]
    input_value = np.random.randn(batch_size, *feature_dims)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    inputs_c = torch.stack(inputs)
    cell = DummyMultiDimensionalLSTM(feature_dims)
    saver = StateSaver(batch_size, feature_dims)
    outputs_static, state_static = v1.static_rnn(cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_dynamic, state_dynamic = v1.dynamic_rnn(
        cell, inputs_c, dtype=torch.float32, time_major=True, sequence_length=sequence_length
    )
    outputs_bid, state_fw, state_bw = v1.static_bidirectional_rnn(
        cell, cell, inputs, dtype=torch.float32, sequence_length=sequence_length
    )
    outputs_sav, state_sav = v1.static_state_saving_rnn(
        cell, inputs, sequence_length=sequence_length, state_saver=saver, state_name=("h", "c")
    )
    assert list(outputs_dynamic.shape) == list(inputs_c.shape)
    for out, inp in zip(outputs_static, inputs):
        assert list(out.shape) == list(inp.shape)
    for out, inp in zip(outputs_bid, inputs):
        shape = list(inp.shape)
        shape[1] *= 2
        assert list(out.shape) == shape
    static_v = np.array([np_(o) for o in outputs_static])
    np.testing.assert_array_equal(static_v, np_(outputs_dynamic))
    np.testing.assert_array_equal(static_v, np.array([np_(o) for o in outputs_sav]))
    np.testing.assert_array_equal(np.concatenate((static_v, static_v), axis=2), np.array([np_(o) for o in outputs_bid]))
    ref = np.hstack([np_(s) for s in state_static])
    for other in (state_dynamic, state_sav, state_fw, state_bw):
        np.testing.assert_array_equal(ref, np.hstack([np_(s) for s in other]))


class NestedRNNCell(nn.Module):
    """TF1's test cell whose input, output and state are pairs: ``((x + 1, y + 1), (h + 1, c + 1))``."""

    output_size = (5, 5)
    state_size = (6, 6)

    def forward(self, x_t, state):
        h, c = state
        x, y = x_t
        return (x + 1, y + 1), (h + 1, c + 1)


def test_nestedlstmtest_nested_io_lstm_all_rnn_containers():
    """rnn_cell_test.py NestedLSTMTest.testNestedIOLSTMAllRNNContainers: pair inputs through every container."""
    np.random.seed(SEED)
    input_size, batch_size, state_size, max_length, sequence_length = 5, 2, 6, 8, [4, 6]
    saver = StateSaver(batch_size, state_size)
    value = tuple(torch.tensor(np.random.randn(batch_size, input_size), dtype=torch.float32) for _ in range(2))
    inputs = max_length * [value]
    inputs_c = (torch.stack([i[0] for i in inputs]), torch.stack([i[1] for i in inputs]))
    cell = NestedRNNCell()
    outputs_dynamic, state_dynamic = v1.dynamic_rnn(
        cell, inputs_c, dtype=torch.float32, time_major=True, sequence_length=sequence_length
    )
    outputs_static, state_static = v1.static_rnn(cell, inputs, dtype=torch.float32, sequence_length=sequence_length)
    outputs_bid, state_fw, state_bw = v1.static_bidirectional_rnn(
        cell, cell, inputs, dtype=torch.float32, sequence_length=sequence_length
    )
    outputs_sav, state_sav = v1.static_state_saving_rnn(
        cell, inputs, sequence_length=sequence_length, state_saver=saver, state_name=("h", "c")
    )

    def flat(x):
        return [a for item in x for a in (flat(item) if isinstance(item, (tuple, list)) else [item])]

    def same_shape(a, b, double=False):
        for x, y in zip(flat(a), flat(b)):
            shape = list(x.shape)
            if double:
                shape[1] *= 2
            assert shape == list(y.shape)

    same_shape(inputs_c, outputs_dynamic)
    same_shape(inputs, outputs_static)
    same_shape(inputs, outputs_sav)
    same_shape(inputs, outputs_bid, double=True)
    static_v = np.array([[np_(a) for a in o] for o in outputs_static])
    np.testing.assert_array_equal(static_v, np.transpose(np.array([np_(a) for a in outputs_dynamic]), (1, 0, 2, 3)))
    np.testing.assert_array_equal(static_v, np.array([[np_(a) for a in o] for o in outputs_sav]))
    np.testing.assert_array_equal(
        np.concatenate((static_v, static_v), axis=3), np.array([[np_(a) for a in o] for o in outputs_bid])
    )
    ref = np.hstack([np_(s) for s in state_static])
    for other in (state_dynamic, state_sav, state_fw, state_bw):
        np.testing.assert_array_equal(ref, np.hstack([np_(s) for s in other]))


# ============================================================== GRUTest


def test_grutest_dynamic():
    """rnn_cell_test.py GRUTest.testDynamic: a smoke run of GRUCell through time-major dynamic_rnn with lengths."""
    np.random.seed(SEED)
    time_steps, num_units, input_size, batch_size = 8, 3, 5, 2
    input_values = np.random.randn(time_steps, batch_size, input_size)
    sequence_length = np.random.randint(0, time_steps, size=batch_size)
    cell = v1.GRUCell(num_units=num_units)
    outputs, state = v1.dynamic_rnn(
        cell, input_values, sequence_length=sequence_length, time_major=True, dtype=torch.float32
    )
    assert outputs.shape == (time_steps, batch_size, num_units)
    assert state.shape == (batch_size, num_units)


# ============================================================== RawRNNTest
# raw_rnn(cell, loop_fn) -> (emitted outputs stacked over time, final state, final loop state),
# TF1's TensorArrays being plain tensors and Python lists here.


def _raw_rnn_against_dynamic(max_time, weight_seed=SEED):
    # Upstream's setUp seeds TF's graph (the cell's initial weights) as well as numpy; here torch draws them.
    # Unseeded, about one draw in five missed the 1e-6 gradient tolerance by a few float32 ulps: raw_rnn runs
    # the readable loop and dynamic_rnn the fused kernel, which sum the 160 steps' terms in another order
    # (tests/test_v1.py checks the two over many draws at a float32 tolerance).
    torch.manual_seed(weight_seed)
    np.random.seed(SEED)
    batch_size, input_depth, num_units = 16, 4, 3
    rand_input = np.random.randn(max_time, batch_size, input_depth).astype(np.float32)
    rand_seq_len = np.zeros(batch_size, dtype=np.int64) if max_time == 0 else np.random.randint(max_time, size=batch_size)
    rand_seq_len[0] = max_time  # the same output length for raw_rnn and dynamic_rnn
    inputs = torch.tensor(rand_input, requires_grad=True)
    sequence_length = torch.as_tensor(rand_seq_len)
    cell = v1.LSTMCell(num_units, state_is_tuple=True)
    cell.maybe_build((input_depth,))

    def loop_fn(time_, cell_output, cell_state, loop_state):
        emit_output = cell_output
        next_state = cell.zero_state(batch_size, torch.float32) if cell_output is None else cell_state
        elements_finished = time_ >= sequence_length
        finished = bool(elements_finished.all())
        next_input = torch.zeros(batch_size, input_depth) if finished else inputs[time_]
        return elements_finished, next_input, next_state, emit_output, None

    outputs, final_state, _ = v1.raw_rnn(cell, loop_fn)
    outputs_dynamic, final_state_dynamic = v1.dynamic_rnn(
        cell, inputs, time_major=True, dtype=torch.float32, sequence_length=sequence_length
    )
    close(np_(outputs_dynamic), np_(outputs))
    close(np.hstack([np_(s) for s in final_state_dynamic]), np.hstack([np_(s) for s in final_state]))
    if max_time > 0:
        wrt = [inputs, *cell.parameters()]
        grads = torch.autograd.grad(outputs.sum() + sum(s.sum() for s in final_state), wrt, retain_graph=True)
        grads_dynamic = torch.autograd.grad(
            outputs_dynamic.sum() + sum(s.sum() for s in final_state_dynamic), wrt, retain_graph=True
        )
        assert len(grads) == len(grads_dynamic)
        for a, b in zip(grads, grads_dynamic):
            close(np_(b), np_(a))


def test_rawrnntest_raw_rnn_zero_length():
    """rnn_cell_test.py RawRNNTest.testRawRNNZeroLength: raw_rnn over 0 steps equals dynamic_rnn."""
    _raw_rnn_against_dynamic(max_time=0)


def test_rawrnntest_raw_rnn():
    """rnn_cell_test.py RawRNNTest.testRawRNN: raw_rnn equals dynamic_rnn, outputs, state and gradients."""
    _raw_rnn_against_dynamic(max_time=10)


def _loop_fn_over(cell, inputs, max_time, batch_size, input_depth, step_loop_state):
    def loop_fn(time_, cell_output, cell_state, loop_state):
        if cell_output is None:
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            next_state = cell_state
        loop_state = step_loop_state(time_, cell_output, loop_state)
        elements_finished = torch.full((batch_size,), time_ >= max_time)
        next_input = torch.zeros(batch_size, input_depth) if bool(elements_finished.all()) else inputs[time_]
        return elements_finished, next_input, next_state, cell_output, loop_state

    return loop_fn


def test_rawrnntest_loop_state():
    """rnn_cell_test.py RawRNNTest.testLoopState: a counter in the loop state reaches max_time."""
    np.random.seed(SEED)
    max_time, batch_size, input_depth = 10, 16, 4
    inputs = torch.tensor(np.random.randn(max_time, batch_size, input_depth), dtype=torch.float32)
    cell = v1.LSTMCell(3, state_is_tuple=True)

    def count(time_, cell_output, loop_state):
        return torch.tensor([0]) if cell_output is None else torch.stack([loop_state.squeeze() + 1])

    r = v1.raw_rnn(cell, _loop_fn_over(cell, inputs, max_time, batch_size, input_depth, count))
    assert np_(r[-1]).tolist() == [10]


def test_rawrnntest_loop_state_with_tensor_array():
    """rnn_cell_test.py RawRNNTest.testLoopStateWithTensorArray: a growing list as loop state (TF1: a TensorArray)."""
    np.random.seed(SEED)
    max_time, batch_size, input_depth = 4, 16, 4
    inputs = torch.tensor(np.random.randn(max_time, batch_size, input_depth), dtype=torch.float32)
    cell = v1.LSTMCell(3, state_is_tuple=True)

    def grow(time_, cell_output, loop_state):
        if cell_output is None:
            return [1]
        return [*loop_state, loop_state[time_ - 1] + time_]

    r = v1.raw_rnn(cell, _loop_fn_over(cell, inputs, max_time, batch_size, input_depth, grow))
    assert list(r[-1]) == [1, 2, 2 + 2, 4 + 3, 7 + 4]


def test_rawrnntest_emit_different_structure_than_cell_output():
    """rnn_cell_test.py RawRNNTest.testEmitDifferentStructureThanCellOutput: emit an (int32, int64) pair per step."""
    np.random.seed(SEED)
    max_time, batch_size, input_depth, unknown_dim = 10, 16, 4, 1
    inputs = torch.tensor(np.random.randn(max_time, batch_size, input_depth), dtype=torch.float32)
    cell = v1.LSTMCell(3, state_is_tuple=True)

    def loop_fn(time_, cell_output, cell_state, loop_state):
        if cell_output is None:
            emit_output = (torch.zeros(2, 3, dtype=torch.int32), torch.zeros(unknown_dim, dtype=torch.int64))
            next_state = cell.zero_state(batch_size, torch.float32)
        else:
            emit_output = (
                torch.ones(batch_size, 2, 3, dtype=torch.int32),
                torch.ones(batch_size, unknown_dim, dtype=torch.int64),
            )
            next_state = cell_state
        elements_finished = torch.full((batch_size,), time_ >= max_time)
        next_input = torch.zeros(batch_size, input_depth) if bool(elements_finished.all()) else inputs[time_]
        return elements_finished, next_input, next_state, emit_output, None

    output = v1.raw_rnn(cell, loop_fn)[0]
    assert len(output) == 2
    assert [o.dtype for o in output] == [torch.int32, torch.int64]
    np.testing.assert_array_equal(np.ones((max_time, batch_size, 2, 3), np.int32), np_(output[0]))
    np.testing.assert_array_equal(np.ones((max_time, batch_size, 1), np.int64), np_(output[1]))


# ============================================================== RNNCellTest


def test_rnncelltest_basic_rnn_cell():
    """rnn_cell_test.py RNNCellTest.testBasicRNNCell: one step of BasicRNNCell(2), weights 0.5 (names dropped)."""
    cell = tf1_weights(v1.BasicRNNCell(2), constant(0.5), input_size=2)
    assert all(p.requires_grad for p in cell.parameters())  # TF1: no non-trainable variables
    g, _ = cell(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.1, 0.1]]))
    assert tuple(g.shape) == (1, 2)


def test_rnncelltest_gru_cell():
    """rnn_cell_test.py RNNCellTest.testGRUCell: GRUCell(2) with 0.5 kernels, for 2 and 3 input features."""
    cell = tf1_weights(v1.GRUCell(2), constant(0.5), input_size=2)
    g, _ = cell(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.1, 0.1]]))
    close(np_(g), [[0.175991, 0.175991]])
    cell = tf1_weights(v1.GRUCell(2), constant(0.5), input_size=3)
    g, _ = cell(torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([[0.1, 0.1]]))
    close(np_(g), [[0.156736, 0.156736]])


def test_rnncelltest_basic_lstm_cell():
    """rnn_cell_test.py RNNCellTest.testBasicLSTMCell: two stacked BasicLSTMCell(2), concatenated state, float16 and float32.

    TF1's variable-name, dtype-attribute and trackable-children checks are dropped.
    """
    for dtype, np_dtype in ((torch.float16, np.float16), (torch.float32, np.float32)):
        like = torch.zeros(0, dtype=dtype)
        cells = [
            tf1_weights(v1.BasicLSTMCell(2, state_is_tuple=False), constant(0.5), input_size=2, like=like)
            for _ in range(2)
        ]
        cell = v1.MultiRNNCell(cells, state_is_tuple=False)
        cell.get_config()
        g, out_m = cell(torch.tensor([[1.0, 1.0]], dtype=dtype), torch.full((1, 8), 0.1, dtype=dtype))
        close(np_(g), np.array([[0.240, 0.240]], dtype=np_dtype), rtol=1e-2)
        expected_mem = np.array([[0.689, 0.689, 0.448, 0.448, 0.398, 0.398, 0.240, 0.240]], dtype=np_dtype)
        close(np_(out_m), expected_mem, rtol=1e-2)
        # input_size != num_units
        cell = tf1_weights(v1.BasicLSTMCell(2, state_is_tuple=False), constant(0.5), input_size=3, like=like)
        res = cell(torch.ones(1, 3, dtype=dtype), torch.full((1, 4), 0.1, dtype=dtype))
        assert len(res) == 2


def test_rnncelltest_basic_lstm_cell_dimension0_error():
    """rnn_cell_test.py RNNCellTest.testBasicLSTMCellDimension0Error: x and state must agree on the batch size."""
    num_units, batch_size, input_size = 2, 3, 4
    cell = tf1_weights(v1.BasicLSTMCell(num_units, state_is_tuple=False), constant(0.5), input_size=input_size)
    with pytest.raises(ValueError):
        cell(torch.ones(batch_size, input_size), torch.full((batch_size - 1, num_units * 2), 0.1))


def test_rnncelltest_basic_lstm_cell_state_size_error():
    """rnn_cell_test.py RNNCellTest.testBasicLSTMCellStateSizeError: a concatenated state must be 2 * num_units wide."""
    num_units, batch_size, input_size = 2, 3, 4
    cell = tf1_weights(v1.BasicLSTMCell(num_units, state_is_tuple=False), constant(0.5), input_size=input_size)
    with pytest.raises(ValueError):
        cell(torch.ones(batch_size, input_size), torch.full((batch_size, num_units * 3), 0.1))


def test_rnncelltest_basic_lstm_cell_state_tuple_type():
    """rnn_cell_test.py RNNCellTest.testBasicLSTMCellStateTupleType: plain tuples in, LSTMStateTuples out."""
    x = torch.zeros(1, 2)
    m0 = (torch.zeros(1, 2),) * 2
    m1 = (torch.zeros(1, 2),) * 2
    cell = v1.MultiRNNCell(
        [tf1_weights(v1.BasicLSTMCell(2), constant(0.5), input_size=2) for _ in range(2)], state_is_tuple=True
    )
    assert isinstance(cell.state_size, tuple)
    assert isinstance(cell.state_size[0], v1.LSTMStateTuple)
    assert isinstance(cell.state_size[1], v1.LSTMStateTuple)
    _, (out_m0, out_m1) = cell(x, (m0, m1))
    assert isinstance(out_m0, v1.LSTMStateTuple)
    assert isinstance(out_m1, v1.LSTMStateTuple)
    zero_state = cell.zero_state(1, torch.float32)
    assert isinstance(zero_state, tuple)
    assert isinstance(zero_state[0], v1.LSTMStateTuple)
    assert isinstance(zero_state[1], v1.LSTMStateTuple)
    _, (out_m0, out_m1) = cell(x, zero_state)
    assert isinstance(out_m0, v1.LSTMStateTuple)
    assert isinstance(out_m1, v1.LSTMStateTuple)


def test_rnncelltest_basic_lstm_cell_with_state_tuple():
    """rnn_cell_test.py RNNCellTest.testBasicLSTMCellWithStateTuple: concatenated-state cells in a tuple-state stack."""
    cells = [tf1_weights(v1.BasicLSTMCell(2, state_is_tuple=False), constant(0.5), input_size=2) for _ in range(2)]
    cell = v1.MultiRNNCell(cells, state_is_tuple=True)
    g, (out_m0, out_m1) = cell(torch.tensor([[1.0, 1.0]]), (torch.full((1, 4), 0.1), torch.full((1, 4), 0.1)))
    close(np_(g), [[0.24024698, 0.24024698]])
    close(np_(out_m0), np.array([[0.68967271, 0.68967271, 0.44848421, 0.44848421]]))
    close(np_(out_m1), np.array([[0.39897051, 0.39897051, 0.24024698, 0.24024698]]))


def test_rnncelltest_lstm_cell():
    """rnn_cell_test.py RNNCellTest.testLSTMCell: projected LSTMCell, concatenated state, distinct rows."""
    num_units, num_proj, batch_size, input_size = 8, 6, 3, 2
    state_size = num_units + num_proj
    cell = tf1_weights(
        v1.LSTMCell(num_units=num_units, num_proj=num_proj, forget_bias=1.0, state_is_tuple=False),
        constant(0.5),
        input_size=input_size,
    )
    output, state = cell(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), torch.full((batch_size, state_size), 0.1))
    output, state = np_(output), np_(state)
    assert output.shape == (batch_size, num_proj)
    assert state.shape == (batch_size, state_size)
    for i in range(1, batch_size):
        assert float(np.linalg.norm(output[0, :] - output[i, :])) > 1e-6
        assert float(np.linalg.norm(state[0, :] - state[i, :])) > 1e-6


def test_rnncelltest_wrapper_checkpointing(tmp_path):
    """rnn_cell_test.py RNNCellTest.testWrapperCheckpointing: a wrapper's checkpoint restores the wrapped cell's bias.

    TF1's tf.train.Checkpoint becomes torch.save/torch.load of the wrapper's state_dict.
    """
    for i, wrapper_type in enumerate([v1.DropoutWrapper, v1.ResidualWrapper, lambda cell: v1.MultiRNNCell([cell])]):
        cell = v1.BasicRNNCell(1)
        wrapper = wrapper_type(cell)
        wrapper(torch.ones(1, 1), wrapper.zero_state(batch_size=1, dtype=torch.float32))
        with torch.no_grad():
            cell.bias.copy_(torch.tensor([40.0]))
        path = tmp_path / f"ckpt{i}.pt"
        torch.save(wrapper.state_dict(), path)
        with torch.no_grad():
            cell.bias.copy_(torch.tensor([0.0]))
        wrapper.load_state_dict(torch.load(path))
        np.testing.assert_array_equal([40.0], np_(cell.bias))


def _gru_half(x):
    # TF1: GRUCell(3, kernel_initializer=constant(0.5), bias_initializer=constant(0.5)): every bias 0.5.
    return tf1_weights(v1.GRUCell(3), constant(0.5), input_size=x.shape[-1], like=x, bias=np.full(9, 0.5))


def test_rnncelltest_residual_wrapper():
    """rnn_cell_test.py RNNCellTest.testResidualWrapper: output + input, state untouched (float64)."""
    x = torch.tensor(np.array([[1.0, 1.0, 1.0]]))
    m = torch.tensor(np.array([[0.1, 0.1, 0.1]]))
    base_cell = _gru_half(x)
    g, m_new = base_cell(x, m)
    wrapper_object = v1.ResidualWrapper(base_cell)
    wrapper_object.get_config()
    assert wrapper_object.cell is base_cell
    g_res, m_new_res = wrapper_object(x, m)
    close(np_(g_res), np_(g) + [1.0, 1.0, 1.0])
    close(np_(m_new), np_(m_new_res))


def test_rnncelltest_residual_wrapper_with_slice():
    """rnn_cell_test.py RNNCellTest.testResidualWrapperWithSlice: a residual_fn adding the input's first 3 features."""
    x = torch.tensor(np.array([[1.0, 1.0, 1.0, 1.0, 1.0]]))
    m = torch.tensor(np.array([[0.1, 0.1, 0.1]]))
    base_cell = _gru_half(x)
    g, m_new = base_cell(x, m)

    def residual_with_slice_fn(inp, out):
        return inp[:, :3] + out

    g_res, m_new_res = v1.ResidualWrapper(base_cell, residual_with_slice_fn)(x, m)
    close(np_(g_res), np_(g) + [1.0, 1.0, 1.0])
    close(np_(m_new), np_(m_new_res))


def test_rnncelltest_device_wrapper():
    """rnn_cell_test.py RNNCellTest.testDeviceWrapper: the step's output is on the wrapper's device.

    TF1's device string "/cpu:0" is torch's "cpu:0".
    """
    cell = v1.GRUCell(3)
    wrapped_cell = v1.DeviceWrapper(cell, "cpu:0")
    wrapped_cell.get_config()
    assert wrapped_cell.cell is cell
    outputs, _ = wrapped_cell(torch.zeros(1, 3), torch.zeros(1, 3))
    assert outputs.device.type == "cpu"


def test_rnncelltest_multi_rnn_cell():
    """rnn_cell_test.py RNNCellTest.testMultiRNNCell: two GRUCell(2) with one concatenated state.

    TF1 counts 2 * 4 weights: its GRUCell keeps 4 variables (gates and candidate, kernel and bias), which
    rnnkit stores as 3 arrays holding the same numbers (docs/tf1.md), so every weight of both cells is 2 * 3.
    """
    cells = [tf1_weights(v1.GRUCell(2), constant(0.5), input_size=2) for _ in range(2)]
    multi_rnn_cell = v1.MultiRNNCell(cells, state_is_tuple=False)
    _, ml = multi_rnn_cell(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.1, 0.1, 0.1, 0.1]]))
    close(np_(ml), [[0.175991, 0.175991, 0.13248, 0.13248]])
    assert len(multi_rnn_cell.weights) == 2 * 3
    assert all(w.dtype == torch.float32 for w in multi_rnn_cell.weights)


def test_rnncelltest_multi_rnn_cell_with_state_tuple():
    """rnn_cell_test.py RNNCellTest.testMultiRNNCellWithStateTuple: a flat state is rejected; a tuple gives TF1's numbers."""
    x = torch.tensor([[1.0, 1.0]])
    with pytest.raises(ValueError, match="Expected state .* a tuple"):
        cells = [tf1_weights(v1.GRUCell(2), constant(0.5), input_size=2) for _ in range(2)]
        v1.MultiRNNCell(cells, state_is_tuple=True)(x, torch.zeros(1, 4))
    cells = [tf1_weights(v1.GRUCell(2), constant(0.5), input_size=2) for _ in range(2)]
    _, ml = v1.MultiRNNCell(cells, state_is_tuple=True)(x, (torch.tensor([[0.1, 0.1]]), torch.tensor([[0.1, 0.1]])))
    close(np_(ml[0]), [[0.175991, 0.175991]])
    close(np_(ml[1]), [[0.13248, 0.13248]])


NO_WRAPPER_CONFIG = "rnnkit: wrapper get_config()/from_config() round trip (cell config nested, as TF1)"


def test_rnncelltest_device_wrapper_serialization():
    """rnn_cell_test.py RNNCellTest.testDeviceWrapperSerialization: config round trip."""
    cell = v1.LSTMCell(10)
    wrapper = v1.DeviceWrapper(cell, "cpu:0")
    config = wrapper.get_config()
    config_copy = dict(config)
    config_copy["cell"] = v1.LSTMCell.from_config(config_copy["cell"]["config"])
    reconstructed = v1.DeviceWrapper.from_config(config_copy)
    assert config == reconstructed.get_config()
    assert isinstance(reconstructed, v1.DeviceWrapper)


def test_rnncelltest_residual_wrapper_serialization():
    """rnn_cell_test.py RNNCellTest.testResidualWrapperSerialization: config round trip, residual_fn kept."""
    cell = v1.LSTMCell(10)

    def rebuilt(wrapper):
        config = dict(wrapper.get_config())
        config["cell"] = v1.LSTMCell.from_config(config["cell"]["config"])
        return wrapper.get_config(), v1.ResidualWrapper.from_config(config)

    config, reconstructed = rebuilt(v1.ResidualWrapper(cell))
    assert config == reconstructed.get_config()
    assert isinstance(reconstructed, v1.ResidualWrapper)
    _, reconstructed = rebuilt(v1.ResidualWrapper(cell, residual_fn=lambda i, o: i + i + o))
    assert reconstructed._residual_fn(1, 2) == 4

    def residual_fn(inputs, outputs):
        return inputs * 3 + outputs

    _, reconstructed = rebuilt(v1.ResidualWrapper(cell, residual_fn=residual_fn))
    assert reconstructed._residual_fn(1, 2) == 5


def test_rnncelltest_dropout_wrapper_serialization():
    """rnn_cell_test.py RNNCellTest.testDropoutWrapperSerialization: config round trip, state filter kept."""
    cell = v1.LSTMCell(10)

    def rebuilt(wrapper):
        config = dict(wrapper.get_config())
        config["cell"] = v1.LSTMCell.from_config(config["cell"]["config"])
        return wrapper.get_config(), v1.DropoutWrapper.from_config(config)

    config, reconstructed = rebuilt(v1.DropoutWrapper(cell))
    assert config == reconstructed.get_config()
    assert isinstance(reconstructed, v1.DropoutWrapper)
    _, reconstructed = rebuilt(v1.DropoutWrapper(cell, dropout_state_filter_visitor=lambda s: True))
    assert reconstructed._dropout_state_filter(None)

    def dropout_state_filter_visitor(unused_state):
        return False

    _, reconstructed = rebuilt(v1.DropoutWrapper(cell, dropout_state_filter_visitor=dropout_state_filter_visitor))
    assert not reconstructed._dropout_state_filter(None)


# ============================================================== DropoutWrapperTest

TRUE_FULL_OUTPUT = np.array([[[0.751109, 0.751109, 0.751109]], [[0.895509, 0.895509, 0.895509]]], dtype=np.float32)
TRUE_FULL_FINAL_C = np.array([[1.949385, 1.949385, 1.949385]], dtype=np.float32)
NO_TENSOR_KEEP = "rnnkit: tensor keep probabilities (a torch scalar as input/output/state_keep_prob)"
NO_BATCH_MASK = "rnnkit: DropoutWrapper(variational_recurrent=True) with one mask for the whole batch"


def _dropout_run(batch_size=None, time_steps=None, **kwargs):
    """LSTMCell(3) with 0.5 kernels in a DropoutWrapper, time-major dynamic_rnn from c = h = 0.1."""
    if batch_size is None and time_steps is None:
        batch_size, time_steps = 1, 2
        x = torch.tensor([[[2.0, 2.0, 2.0]], [[1.0, 1.0, 1.0]]])
        m = v1.LSTMStateTuple(*[torch.tensor([[0.1, 0.1, 0.1]])] * 2)
    else:
        x = torch.tensor(np.random.randn(time_steps, batch_size, 3).astype(np.float32))
        m = v1.LSTMStateTuple(*[torch.tensor([[0.1, 0.1, 0.1]] * batch_size)] * 2)
    cell = tf1_weights(v1.LSTMCell(3), constant(0.5), input_size=3)
    outputs, final_state = v1.dynamic_rnn(
        v1.DropoutWrapper(cell, dtype=x.dtype, **kwargs), x, initial_state=m, time_major=True
    )
    outputs, final_state = np_(outputs), v1.LSTMStateTuple(*(np_(s) for s in final_state))
    assert outputs.shape == (time_steps, batch_size, 3)
    assert final_state.c.shape == (batch_size, 3)
    assert final_state.h.shape == (batch_size, 3)
    return outputs, final_state


def test_dropoutwrappertest_dropout_wrapper_properties():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperProperties: wrapped_cell, state_size, output_size."""
    cell = v1.BasicRNNCell(10)
    wrapper = v1.DropoutWrapper(cell)
    assert wrapper.wrapped_cell is cell
    assert wrapper.state_size == 10
    assert wrapper.output_size == 10


def test_dropoutwrappertest_dropout_wrapper_zero_state():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperZeroState: the wrapper returns the cell's zero_state."""

    class _Cell(v1.BasicRNNCell):
        def zero_state(self, batch_size=None, dtype=None):
            return "wrapped_cell_zero_state"

    wrapper = v1.DropoutWrapper(_Cell(10))
    assert wrapper.zero_state(10, torch.float32) == "wrapped_cell_zero_state"


def test_dropoutwrappertest_dropout_wrapper_keep_all_constant_input():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperKeepAllConstantInput: keep 1 (a tensor) changes nothing."""
    keep = torch.ones([])
    outputs, state = _dropout_run(input_keep_prob=keep, output_keep_prob=keep, state_keep_prob=keep)
    close(TRUE_FULL_OUTPUT, outputs)
    close(TRUE_FULL_OUTPUT[1], state.h)
    close(TRUE_FULL_FINAL_C, state.c)


def test_dropoutwrappertest_dropout_wrapper_keep_all():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperKeepAll: keep 1 (a variable in TF1) changes nothing."""
    keep = nn.Parameter(torch.tensor(1.0))
    outputs, state = _dropout_run(input_keep_prob=keep, output_keep_prob=keep, state_keep_prob=keep)
    close(TRUE_FULL_OUTPUT, outputs)
    close(TRUE_FULL_OUTPUT[1], state.h)
    close(TRUE_FULL_FINAL_C, state.c)


def test_dropoutwrappertest_dropout_wrapper_with_seed():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperWithSeed: the same seed drops the same units.

    TF1's parallel_iterations=1 (graph scheduling) has no counterpart and is dropped.
    """
    keep_some = 0.5
    torch.manual_seed(2)
    res_1 = _dropout_run(input_keep_prob=keep_some, output_keep_prob=keep_some, state_keep_prob=keep_some, seed=10)
    torch.manual_seed(2)
    res_2 = _dropout_run(input_keep_prob=keep_some, output_keep_prob=keep_some, state_keep_prob=keep_some, seed=10)
    close(res_1[0], res_2[0])
    close(res_1[1].c, res_2[1].c)
    close(res_1[1].h, res_2[1].h)


def test_dropoutwrappertest_dropout_wrapper_keep_no_output():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperKeepNoOutput: outputs all dropped, state untouched."""
    keep_all = nn.Parameter(torch.tensor(1.0))
    keep_none = nn.Parameter(torch.tensor(1e-6))
    outputs, state = _dropout_run(input_keep_prob=keep_all, output_keep_prob=keep_none, state_keep_prob=keep_all)
    close(np.zeros(outputs.shape), outputs)
    close(TRUE_FULL_OUTPUT[1], state.h)
    close(TRUE_FULL_FINAL_C, state.c)


def test_dropoutwrappertest_dropout_wrapper_keep_no_state_except_lstm_cell_memory():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperKeepNoStateExceptLSTMCellMemory: h dropped, c never."""
    keep_all = nn.Parameter(torch.tensor(1.0))
    keep_none = nn.Parameter(torch.tensor(1e-6))
    outputs, state = _dropout_run(input_keep_prob=keep_all, output_keep_prob=keep_all, state_keep_prob=keep_none)
    true_c_state = np.array([[1.713925, 1.713925, 1.713925]], dtype=np.float32)
    close(TRUE_FULL_OUTPUT[0], outputs[0])
    assert np.linalg.norm(TRUE_FULL_OUTPUT[1] - outputs[1]) > 1e-4
    close(np.zeros(state.h.shape), state.h)
    close(true_c_state, state.c)


def test_dropoutwrappertest_dropout_wrapper_keep_no_input():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperKeepNoInput: zeroed inputs change everything."""
    keep_all = nn.Parameter(torch.tensor(1.0))
    keep_none = nn.Parameter(torch.tensor(1e-6))
    outputs, state = _dropout_run(input_keep_prob=keep_none, output_keep_prob=keep_all, state_keep_prob=keep_all)
    assert np.linalg.norm(outputs - TRUE_FULL_OUTPUT) > 1e-4
    assert np.linalg.norm(state.h - TRUE_FULL_OUTPUT[1]) > 1e-4
    assert np.linalg.norm(state.c - TRUE_FULL_FINAL_C) > 1e-4


def test_dropoutwrappertest_dropout_wrapper_recurrent_output():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperRecurrentOutput: one output mask for every step."""
    keep_all = nn.Parameter(torch.tensor(1.0))
    outputs, _ = _dropout_run(
        input_keep_prob=keep_all, output_keep_prob=0.8, state_keep_prob=keep_all,
        variational_recurrent=True, input_size=3, batch_size=5, time_steps=7,
    )
    output_mask = np.abs(outputs) > 1e-6
    for m in output_mask[1:]:
        close(output_mask[0], m)


def _check_one_mask_everywhere(outputs, state):
    output_mask = np.abs(outputs) > 1e-6
    for time_step in output_mask:
        close(output_mask[0], time_step)
        for batch_entry in time_step:
            close(batch_entry, time_step[0])
    for part in (state.c, state.h):
        mask = np.abs(part) > 1e-6
        for batch_entry in mask:
            close(batch_entry, mask[0])


def test_dropoutwrappertest_dropout_wrapper_recurrent_state_input_and_output():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutput: one mask per step and row.

    Upstream leaves the random draws unseeded; they are seeded here so the run is repeatable.
    """
    torch.manual_seed(0)
    np.random.seed(SEED)
    keep_some = 0.9
    outputs, state = _dropout_run(
        input_keep_prob=keep_some, output_keep_prob=keep_some, state_keep_prob=keep_some,
        variational_recurrent=True, input_size=3, batch_size=5, time_steps=7,
    )
    _check_one_mask_everywhere(outputs, state)


def test_dropoutwrappertest_dropout_wrapper_recurrent_state_input_and_output_with_seed():
    """rnn_cell_test.py DropoutWrapperTest.testDropoutWrapperRecurrentStateInputAndOutputWithSeed: and repeatable."""
    keep_some = 0.9
    runs = []
    for _ in range(2):
        torch.manual_seed(2347)
        np.random.seed(23487)
        runs.append(
            _dropout_run(
                input_keep_prob=keep_some, output_keep_prob=keep_some, state_keep_prob=keep_some,
                variational_recurrent=True, input_size=3, batch_size=5, time_steps=7, seed=-234987,
            )
        )
    (out0, state0), (out1, state1) = runs
    _check_one_mask_everywhere(out0, state0)
    close(out0, out1)
    close(state0.c, state1.c)
    close(state0.h, state1.h)
