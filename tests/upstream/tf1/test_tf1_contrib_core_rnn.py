"""TensorFlow's TF1 RNN tests, ported: tensorflow/contrib/rnn/python/kernel_tests/core_rnn_test.py.

Most of this file is an older copy of nn_ops/rnn_cell_test.py (ported in
test_tf1_rnn_cell.py). Only the tests whose facts differ are here: a smaller keep
probability, and bit-exact equality where the later copy compares with a
tolerance. The rest are listed as duplicates in tests/upstream/tf1/README.md.
"""

import numpy as np
import torch
from test_tf1_rnn_cell import SEED, _bidirectional_static, _dynamic_equivalent_to_static, close, np_
from tf1_helpers import Plus1RNNCell

from rnnkit import v1


def test_rnntest_dropout():
    """core_rnn_test.py RNNTest.testDropout: input_keep_prob=1e-12 drops every input, so outputs are 1."""
    np.random.seed(SEED)
    cell = Plus1RNNCell()
    full_dropout_cell = v1.DropoutWrapper(cell, input_keep_prob=1e-12, seed=0)
    batch_size, input_size, max_length = 2, 5, 8
    input_value = np.random.randn(batch_size, input_size)
    inputs = max_length * [torch.tensor(input_value, dtype=torch.float32)]
    outputs, _ = v1.static_rnn(cell, inputs, dtype=torch.float32)
    dropped_outputs, _ = v1.static_rnn(full_dropout_cell, inputs, dtype=torch.float32)
    assert len(outputs) == len(inputs)
    for out, inp in zip(outputs, inputs):
        assert list(out.shape) == list(inp.shape)
        assert out.dtype == inp.dtype
    for v in outputs:
        close(np_(v), input_value + 1.0)
    for d_v in dropped_outputs[:-1]:  # upstream checks all but the last step
        close(np_(d_v), np.ones_like(input_value))


def test_lstmtest_dynamic_equivalent_to_static_rnn():
    """core_rnn_test.py LSTMTest.testDynamicEquivalentToStaticRNN: bit-equal outputs, state and gradients, with and without lengths.

    TF1's use_gpu variants run once here (rnnkit's CPU loop).
    """
    for use_sequence_length in (False, True):
        _dynamic_equivalent_to_static(use_sequence_length, exact=True)


def test_bidirectionalrnntest_bidirectional_rnn():
    """core_rnn_test.py BidirectionalRNNTest.testBidirectionalRNN: fw and bw outputs mirror bit for bit (lengths 2, 3)."""
    out, s_fw, s_bw = _bidirectional_static(use_sequence_length=True)
    for t_fw, t_bw in ((0, 1), (1, 0)):
        for d in range(3):
            assert out[t_fw][0][d] == out[t_bw][0][d + 3]
    for t_fw, t_bw in ((0, 2), (1, 1), (2, 0)):
        for d in range(3):
            assert out[t_fw][1][d] == out[t_bw][1][d + 3]
    close(s_fw, s_bw)


def test_bidirectionalrnntest_bidirectional_rnn_without_sequence_length():
    """core_rnn_test.py BidirectionalRNNTest.testBidirectionalRNNWithoutSequenceLength: full-length mirror, bit for bit."""
    out, s_fw, s_bw = _bidirectional_static(use_sequence_length=False)
    for i in range(8):
        for row in (0, 1):
            for d in range(3):
                assert out[i][row][d] == out[8 - 1 - i][row][d + 3]
    close(s_fw, s_bw)
