"""TensorFlow's TF1 RNN tests, ported: tensorflow/python/kernel_tests/nn_ops/rnn_test.py (class RNNTest).

The benchmarks at the end of the upstream file and the tests with no meaning
on PyTorch are listed in tests/upstream/tf1/README.md.
"""

import numpy as np
import pytest
import torch
from tf1_helpers import Plus1RNNCell
from torch import nn

from rnnkit import v1

SEED = 23489
NO_CELL_DTYPE = "rnnkit: dtype= on cells"
NO_TF1_INITIAL_STATE = "rnnkit: get_initial_state(inputs=, batch_size=, dtype=) (TF1's keywords and checks)"


def np_(t):
    return t.detach().cpu().numpy()


def test_rnntest_invalid_sequence_length_shape():
    """rnn_test.py RNNTest.testInvalidSequenceLengthShape: dynamic_rnn rejects sequence_length [[4]]."""
    inputs = [torch.tensor(np.ones((3, 4)), dtype=torch.float32)]
    with pytest.raises(ValueError, match="must be a vector"):
        v1.dynamic_rnn(Plus1RNNCell(), torch.stack(inputs), dtype=torch.float32, sequence_length=[[4]])


def test_rnntest_invalid_dtype():
    """rnn_test.py RNNTest.testInvalidDtype: an integer cell dtype is refused for every cell class."""
    inputs = np.zeros((3, 4, 5), dtype=np.int32)
    for cell_cls in (v1.BasicRNNCell, v1.GRUCell, v1.BasicLSTMCell, v1.LSTMCell):
        with pytest.raises(ValueError, match="RNN cell only supports floating"):
            cell = cell_cls(2, dtype=torch.int32)
            v1.dynamic_rnn(cell, inputs, dtype=torch.int32)


def test_rnntest_batch_size_from_input():
    """rnn_test.py RNNTest.testBatchSizeFromInput: the batch size comes from the input, with or without a state.

    The graph-only half (a placeholder with an unknown batch size) has no eager counterpart.
    """
    cell = Plus1RNNCell()
    inputs = np.zeros((3, 4, 5), dtype=np.float32)
    initial_state = np.zeros((3, 5), dtype=np.float32)
    outputs, state = v1.dynamic_rnn(cell, inputs, dtype=torch.float32)
    assert outputs.shape[0] == 3
    assert state.shape[0] == 3
    outputs, state = v1.dynamic_rnn(cell, inputs, initial_state=torch.tensor(initial_state))
    assert outputs.shape[0] == 3
    assert state.shape[0] == 3


class ScalarStateRNNCell(nn.Module):
    """TF1's test cell with a scalar int32 state: ``(input, state + 1)``."""

    output_size = 1
    state_size = ()

    def zero_state(self, batch_size, dtype):
        return torch.zeros([], dtype=torch.int32)

    def forward(self, x_t, state):
        return x_t, state + 1


class UnbalancedOutputRNNCell(nn.Module):
    """TF1's test cell with a pair output of sizes 1 and 2: ``((input, [input, input]), state + 1)``."""

    output_size = (1, 2)
    state_size = ()

    def zero_state(self, batch_size, dtype):
        return torch.zeros([], dtype=torch.int32)

    def forward(self, x_t, state):
        return (x_t, torch.cat((x_t, x_t), dim=-1)), state + 1


def test_rnntest_scalar_state_is_accepted():
    """rnn_test.py RNNTest.testScalarStateIsAccepted: a scalar state counts the steps."""
    inputs = np.array([[[1], [2], [3], [4]]], dtype=np.float32)
    outputs, state = v1.dynamic_rnn(ScalarStateRNNCell(), inputs, dtype=torch.float32, sequence_length=[4])
    np.testing.assert_array_equal([[[1], [2], [3], [4]]], np_(outputs))
    np.testing.assert_array_equal(4, np_(state))


def test_rnntest_unbalanced_output_is_accepted():
    """rnn_test.py RNNTest.testUnbalancedOutputIsAccepted: a pair of outputs of different sizes."""
    inputs = np.array([[[1], [2], [3], [4]]], dtype=np.float32)
    outputs, state = v1.dynamic_rnn(UnbalancedOutputRNNCell(), inputs, dtype=torch.float32, sequence_length=[4])
    assert isinstance(outputs, tuple)
    np.testing.assert_array_equal([[[1], [2], [3], [4]]], np_(outputs[0]))
    np.testing.assert_array_equal([[[1, 1], [2, 2], [3, 3], [4, 4]]], np_(outputs[1]))
    np.testing.assert_array_equal(4, np_(state))


def test_rnntest_cell_get_initial_state():
    """rnn_test.py RNNTest.testCellGetInitialState: TF1's argument checks and the state taken from the inputs."""
    cell = v1.BasicRNNCell(5)
    with pytest.raises(ValueError, match="batch_size and dtype cannot be None"):
        cell.get_initial_state(None, None, None)
    inputs = torch.zeros(3, 4, 1)
    with pytest.raises(ValueError, match="batch size from input tensor is different from"):
        cell.get_initial_state(inputs=inputs, batch_size=50, dtype=None)
    with pytest.raises(ValueError, match="batch size from input tensor is different from"):
        cell.get_initial_state(inputs=inputs, batch_size=torch.tensor(50), dtype=None)
    with pytest.raises(ValueError, match="dtype from input tensor is different from"):
        cell.get_initial_state(inputs=inputs, batch_size=None, dtype=torch.int16)
    initial_state = cell.get_initial_state(inputs=inputs, batch_size=None, dtype=None)
    assert list(initial_state.shape) == [3, 5]
    assert initial_state.dtype == inputs.dtype
    initial_state = cell.get_initial_state(None, inputs.shape[0], inputs.dtype)
    assert list(initial_state.shape) == [3, 5]
    assert initial_state.dtype == inputs.dtype


def test_rnntest_cells_build():
    """rnn_test.py RNNTest.testCellsBuild: every cell builds in float32 and float64 and steps from its initial state."""
    for cell_class in (v1.BasicRNNCell, v1.BasicLSTMCell, v1.GRUCell, v1.LSTMCell):
        for dtype in (torch.float32, torch.float64):
            batch_size, in_size, out_size = 5, 7, 3
            cell = cell_class(out_size, dtype=dtype)
            cell.build((batch_size, in_size))
            state_output = cell.get_initial_state(inputs=None, batch_size=batch_size, dtype=dtype)
            cell_output, _ = cell(torch.zeros((batch_size, in_size), dtype=dtype), state_output)
            assert list(cell_output.shape) == [batch_size, out_size]


def test_rnntest_basic_lstm_cell_interchange_with_lstm_cell(tmp_path):
    """rnn_test.py RNNTest.testBasicLSTMCellInterchangeWithLSTMCell: a BasicLSTMCell checkpoint loads into LSTMCell.

    TF1's tf.train.Saver becomes torch.save/torch.load of the state_dict.
    """
    basic_cell = v1.BasicLSTMCell(1)
    basic_cell(torch.ones(1, 1), basic_cell.get_initial_state(inputs=None, batch_size=1, dtype=torch.float32))
    with torch.no_grad():
        basic_cell.bias.copy_(torch.tensor([10.0] * 4))
    path = tmp_path / "ckpt.pt"
    torch.save(basic_cell.state_dict(), path)
    lstm_cell = v1.LSTMCell(1, name="basic_lstm_cell")
    lstm_cell(torch.ones(1, 1), lstm_cell.get_initial_state(inputs=None, batch_size=1, dtype=torch.float32))
    lstm_cell.load_state_dict(torch.load(path))
    np.testing.assert_array_equal([10.0] * 4, np_(lstm_cell.bias))
