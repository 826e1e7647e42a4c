"""TensorFlow's TF1 RNN tests, ported: tensorflow/contrib/rnn/python/kernel_tests/core_rnn_cell_test.py.

Only the tests that are not duplicates of tests/upstream/tf1/test_tf1_rnn_cell.py
(TF's later copy of the same file); the duplicates and the tests with no
meaning on PyTorch are listed in tests/upstream/tf1/README.md.
"""

import numpy as np
import torch
from tf1_helpers import constant, tf1_weights

from rnnkit import v1


def np_(t):
    return t.detach().cpu().numpy()


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-6)


def fill_own_weights(wrapper, value):
    """TF1's scope initializer on a wrapper's own variables: kernels ``value``, biases 0 (TF1's _Linear)."""
    with torch.no_grad():
        for name, p in wrapper.named_parameters():
            if not name.startswith("cell."):
                p.fill_(0.0 if name.endswith("bias") else value)


def test_rnncelltest_lstm_cell_layer_norm():
    """core_rnn_cell_test.py RNNCellTest.testLSTMCellLayerNorm: shapes of one layer-normalized projected LSTM step."""
    num_units, num_proj, batch_size, input_size = 2, 3, 1, 4
    cell = v1.LayerNormLSTMCell(
        num_units=num_units, num_proj=num_proj, forget_bias=1.0, layer_norm=True, norm_gain=1.0, norm_shift=0.0
    )
    tf1_weights(cell, constant(0.5), input_size=input_size)
    state = v1.LSTMStateTuple(torch.full((batch_size, num_units), 0.1), torch.full((batch_size, num_proj), 0.1))
    g, out_m = cell(torch.ones(batch_size, input_size), state)
    g, out_m = np_(g), [np_(s) for s in out_m]
    assert g.shape == (batch_size, num_proj)
    assert out_m[0].shape == (batch_size, num_units)
    assert out_m[1].shape == (batch_size, num_proj)
    for i in range(1, batch_size):
        assert float(np.linalg.norm(g[0, :] - g[i, :])) < 1e-6
        assert float(np.linalg.norm(out_m[0][0, :] - out_m[0][i, :])) < 1e-6


def test_rnncelltest_output_projection_wrapper():
    """core_rnn_cell_test.py RNNCellTest.testOutputProjectionWrapper: GRUCell(3) projected to 2, weights 0.5."""
    cell = v1.OutputProjectionWrapper(tf1_weights(v1.GRUCell(3), constant(0.5), input_size=3), 2)
    fill_own_weights(cell, 0.5)
    g, new_m = cell(torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([[0.1, 0.1, 0.1]]))
    assert tuple(new_m.shape) == (1, 3)
    close(np_(g), [[0.231907, 0.231907]])


def test_rnncelltest_input_projection_wrapper():
    """core_rnn_cell_test.py RNNCellTest.testInputProjectionWrapper: 2 inputs projected to GRUCell(3)'s 3, weights 0.5."""
    cell = v1.InputProjectionWrapper(tf1_weights(v1.GRUCell(3), constant(0.5), input_size=3), num_proj=3)
    cell.maybe_build((2,))  # TF1 made the projection at the first call, under the scope initializer; here: build, then fill
    fill_own_weights(cell, 0.5)
    g, new_m = cell(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.1, 0.1, 0.1]]))
    assert tuple(new_m.shape) == (1, 3)
    close(np_(g), [[0.154605, 0.154605, 0.154605]])


def test_rnncelltest_residual_wrapper():
    """core_rnn_cell_test.py RNNCellTest.testResidualWrapper: float32, TF1's default GRU biases (kernels 0.5)."""
    x = torch.tensor([[1.0, 1.0, 1.0]])
    m = torch.tensor([[0.1, 0.1, 0.1]])
    base_cell = tf1_weights(v1.GRUCell(3), constant(0.5), input_size=3)
    g, m_new = base_cell(x, m)
    g_res, m_new_res = v1.ResidualWrapper(base_cell)(x, m)
    close(np_(g_res), np_(g) + [1.0, 1.0, 1.0])
    close(np_(m_new), np_(m_new_res))


def test_rnncelltest_residual_wrapper_with_slice():
    """core_rnn_cell_test.py RNNCellTest.testResidualWrapperWithSlice: float32, a residual_fn on the first 3 inputs."""
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0]])
    m = torch.tensor([[0.1, 0.1, 0.1]])
    base_cell = tf1_weights(v1.GRUCell(3), constant(0.5), input_size=5)
    g, m_new = base_cell(x, m)

    def residual_with_slice_fn(inp, out):
        return inp[:, :3] + out

    g_res, m_new_res = v1.ResidualWrapper(base_cell, residual_with_slice_fn)(x, m)
    close(np_(g_res), np_(g) + [1.0, 1.0, 1.0])
    close(np_(m_new), np_(m_new_res))


def test_rnncelltest_embedding_wrapper():
    """core_rnn_cell_test.py RNNCellTest.testEmbeddingWrapper: class 1 embedded (all 0.5) into GRUCell(2)."""
    embedding_cell = v1.EmbeddingWrapper(
        tf1_weights(v1.GRUCell(2), constant(0.5), input_size=2), embedding_classes=3, embedding_size=2
    )
    fill_own_weights(embedding_cell, 0.5)
    assert embedding_cell.output_size == 2
    g, new_m = embedding_cell(torch.tensor([[1]], dtype=torch.int32), torch.tensor([[0.1, 0.1]]))
    assert tuple(new_m.shape) == (1, 2)
    close(np_(g), [[0.17139, 0.17139]])


def test_rnncelltest_embedding_wrapper_with_dynamic_rnn():
    """core_rnn_cell_test.py RNNCellTest.testEmbeddingWrapperWithDynamicRnn: int64 ids through dynamic_rnn give float32."""
    inputs = torch.tensor([[[0], [0]]], dtype=torch.int64)
    input_lengths = torch.tensor([2], dtype=torch.int64)
    embedding_cell = v1.EmbeddingWrapper(
        v1.BasicLSTMCell(1, state_is_tuple=True), embedding_classes=1, embedding_size=2
    )
    outputs, _ = v1.dynamic_rnn(embedding_cell, inputs, sequence_length=input_lengths, dtype=torch.float32)
    assert outputs.dtype == torch.float32
