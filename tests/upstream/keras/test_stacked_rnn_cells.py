"""Keras 3's ``keras/src/layers/rnn/stacked_rnn_cells_test.py``, ported to rnnkit.

``RNN([cell, cell, ...])`` stacks the cells (``StackedRNNCells``). The
custom cells are in ``cells.py``. Same inputs, expected numbers and
tolerances as upstream; each test names the upstream method it ports.
"""

import numpy as np
import pytest

import rnnkit as rk

from .cells import OneStateRNNCell, TwoStatesRNNCell
from .layer_checks import (
    assert_all_close,
    case_params,
    check_call,
    check_config_round_trip,
    check_output_shape,
    check_supports_masking,
)


def _three(cell_cls, **kwargs):
    return [cell_cls(3, **kwargs), cell_cls(4, **kwargs), cell_cls(5, **kwargs)]


DROPOUT = dict(dropout=0.1, recurrent_dropout=0.1)

# The seven run_layer_test calls of test_basics: (init kwargs, output shape, trainable weights).
BASICS = {
    "one_state": (lambda: {"cell": _three(OneStateRNNCell)}, (2, 5), 6),
    "one_state_sequences": (lambda: {"cell": _three(OneStateRNNCell), "return_sequences": True}, (2, 3, 5), 6),
    "two_states": (lambda: {"cell": _three(TwoStatesRNNCell)}, (2, 5), 9),
    "two_states_sequences": (lambda: {"cell": _three(TwoStatesRNNCell), "return_sequences": True}, (2, 3, 5), 9),
    "simple_rnn_dropout": (
        lambda: {"cell": _three(rk.SimpleRNNCell, **DROPOUT), "return_sequences": True},
        (2, 3, 5),
        9,
    ),
    "gru_dropout": (lambda: {"cell": _three(rk.GRUCell, **DROPOUT), "return_sequences": True}, (2, 3, 5), 9),
    "lstm_dropout": (lambda: {"cell": _three(rk.LSTMCell, **DROPOUT), "return_sequences": True}, (2, 3, 5), 9),
}
INPUT_SHAPE = (2, 3, 4)


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_call(case):
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_basics``: build, weight counts, call shapes, a training step."""
    make_kwargs, expected_shape, n_weights = BASICS[case]
    check_call(
        rk.RNN,
        make_kwargs(),
        INPUT_SHAPE,
        expected_shape,
        expected_num_trainable_weights=n_weights,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_config(case):
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.RNN, BASICS[case][0]())


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_basics``: the symbolic call's output shape."""
    make_kwargs, expected_shape, _ = BASICS[case]
    check_output_shape(rk.RNN, make_kwargs(), INPUT_SHAPE, expected_shape)


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.RNN, BASICS[case][0](), False)


def test_correctness_single_state_stack():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_correctness_single_state_stack``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    last = np.array([[786.0, 786.0], [4386.0, 4386.0]])
    every = np.array(
        [
            [[18.0, 18.0], [156.0, 156.0], [786.0, 786.0]],
            [[162.0, 162.0], [1020.0, 1020.0], [4386.0, 4386.0]],
        ]
    )
    first_state = np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]])

    assert_all_close(rk.RNN([OneStateRNNCell(3), OneStateRNNCell(2)])(sequence), last)
    assert_all_close(rk.RNN([OneStateRNNCell(3), OneStateRNNCell(2)], return_sequences=True)(sequence), every)

    output, state_1, state_2 = rk.RNN([OneStateRNNCell(3), OneStateRNNCell(2)], return_state=True)(sequence)
    assert_all_close(output, last)
    assert_all_close(state_1, first_state)
    assert_all_close(state_2, last)

    layer = rk.RNN([OneStateRNNCell(3), OneStateRNNCell(2)], return_sequences=True, return_state=True)
    output, state_1, state_2 = layer(sequence)
    assert_all_close(output, every)
    assert_all_close(state_1, first_state)
    assert_all_close(state_2, last)


def test_correctness_two_states_stack():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_correctness_two_states_stack``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    last = np.array([[3144.0, 3144.0], [17544.0, 17544.0]])
    assert_all_close(rk.RNN([TwoStatesRNNCell(3), TwoStatesRNNCell(2)])(sequence), last)

    output = rk.RNN([TwoStatesRNNCell(3), TwoStatesRNNCell(2)], return_sequences=True)(sequence)
    every = np.array(
        [
            [[72.0, 72.0], [624.0, 624.0], [3144.0, 3144.0]],
            [[648.0, 648.0], [4080.0, 4080.0], [17544.0, 17544.0]],
        ]
    )
    assert_all_close(output, every)

    output, state_1, state_2 = rk.RNN([TwoStatesRNNCell(3), TwoStatesRNNCell(2)], return_state=True)(sequence)
    assert_all_close(output, last)
    assert_all_close(state_1[0], np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]]))
    assert_all_close(state_1[1], np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]]))
    assert_all_close(state_2[0], np.array([[1572.0, 1572.0], [8772.0, 8772.0]]))
    assert_all_close(state_2[1], np.array([[1572.0, 1572.0], [8772.0, 8772.0]]))


def test_statefullness_single_state_stack():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_statefullness_single_state_stack``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = rk.RNN([OneStateRNNCell(3), OneStateRNNCell(2)], stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), np.array([[34092.0, 34092.0], [173196.0, 173196.0]]))


def test_statefullness_two_states_stack():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_statefullness_two_states_stack``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = rk.RNN([TwoStatesRNNCell(3), TwoStatesRNNCell(2)], stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), np.array([[136368.0, 136368.0], [692784.0, 692784.0]]))


def test_return_state_stacked_lstm_cell():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_return_state_stacked_lstm_cell``: states come back nested per cell."""
    layer = rk.RNN([rk.LSTMCell(10), rk.LSTMCell(10)], return_state=True)
    out = layer(np.zeros((2, 3, 5)))
    assert len(out) == 3
    assert tuple(out[0].shape) == (2, 10)
    assert tuple(out[1][0].shape) == (2, 10)
    assert tuple(out[1][1].shape) == (2, 10)
    assert tuple(out[2][0].shape) == (2, 10)
    assert tuple(out[2][1].shape) == (2, 10)

    shape = layer.compute_output_shape((2, 3, 5))
    assert len(shape) == 3
    assert shape[0] == (2, 10)
    assert shape[1][0] == (2, 10)
    assert shape[1][1] == (2, 10)
    assert shape[2][0] == (2, 10)
    assert shape[2][1] == (2, 10)


def test_stacked_lstm_cell_mask():
    """Upstream ``keras/src/layers/rnn/stacked_rnn_cells_test.py::StackedRNNTest::test_stacked_lstm_cell_mask``."""
    sequence = np.ones((2, 3, 4))
    mask = np.array([[True, True, True], [True, True, False]])
    cells = [rk.LSTMCell(units=1, kernel_initializer="ones", recurrent_initializer="ones") for _ in range(2)]
    output = rk.RNN(cells)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.7793], [0.5998]]), atol=1e-4)
