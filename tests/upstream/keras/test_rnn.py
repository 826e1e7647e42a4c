"""Keras 3's ``keras/src/layers/rnn/rnn_test.py``, ported to rnnkit.

The custom cells are in ``cells.py``. Same inputs, expected numbers and
tolerances as upstream; each test names the upstream method it ports.
"""

import numpy as np
import pytest
import torch

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

# The eight run_layer_test calls of test_basics; each call makes one cell and
# every layer the checks build shares it, as upstream's init_kwargs do.
BASICS = {
    "one_state_int": (lambda: {"cell": OneStateRNNCell(5, state_size=5)}, (3, 5), 2),
    "one_state_list": (lambda: {"cell": OneStateRNNCell(5, state_size=[5])}, (3, 5), 2),
    "one_state_tuple": (lambda: {"cell": OneStateRNNCell(5, state_size=(5,))}, (3, 5), 2),
    "one_state_sequences": (lambda: {"cell": OneStateRNNCell(5), "return_sequences": True}, (3, 2, 5), 2),
    "one_state_backwards_unroll": (
        lambda: {"cell": OneStateRNNCell(5), "go_backwards": True, "unroll": True},
        (3, 5),
        2,
    ),
    "two_states_list": (lambda: {"cell": TwoStatesRNNCell(5, state_size=[5, 5])}, (3, 5), 3),
    "two_states_tuple": (lambda: {"cell": TwoStatesRNNCell(5, state_size=(5, 5))}, (3, 5), 3),
    "two_states_sequences": (lambda: {"cell": TwoStatesRNNCell(5), "return_sequences": True}, (3, 2, 5), 3),
}
INPUT_SHAPE = (3, 2, 4)

# Every case builds its cell through a build() that, as in Keras, does not set `built`.
ALL_CASES = case_params(BASICS)


@pytest.mark.parametrize("case", ALL_CASES)
def test_basics_call(case):
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_basics``: build, weight counts, call shapes, a training step."""
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
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.RNN, BASICS[case][0]())


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_basics``: the symbolic call's output shape."""
    make_kwargs, expected_shape, _ = BASICS[case]
    check_output_shape(rk.RNN, make_kwargs(), INPUT_SHAPE, expected_shape)


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.RNN, BASICS[case][0](), False)


def test_compute_output_shape_single_state():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_compute_output_shape_single_state``."""
    shape = np.ones((3, 4, 5)).shape
    assert rk.RNN(OneStateRNNCell(8), return_sequences=False).compute_output_shape(shape) == (3, 8)
    assert rk.RNN(OneStateRNNCell(8), return_sequences=True).compute_output_shape(shape) == (3, 4, 8)
    out = rk.RNN(OneStateRNNCell(8), return_sequences=False, return_state=True).compute_output_shape(shape)
    assert out[0] == (3, 8) and out[1] == (3, 8)
    out = rk.RNN(OneStateRNNCell(8), return_sequences=True, return_state=True).compute_output_shape(shape)
    assert out[0] == (3, 4, 8) and out[1] == (3, 8)


def test_compute_output_shape_two_states():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_compute_output_shape_two_states``."""
    shape = np.ones((3, 4, 5)).shape
    assert rk.RNN(TwoStatesRNNCell(8), return_sequences=False).compute_output_shape(shape) == (3, 8)
    assert rk.RNN(TwoStatesRNNCell(8), return_sequences=True).compute_output_shape(shape) == (3, 4, 8)
    out = rk.RNN(TwoStatesRNNCell(8), return_sequences=False, return_state=True).compute_output_shape(shape)
    assert out[0] == (3, 8) and out[1] == (3, 8) and out[2] == (3, 8)
    out = rk.RNN(TwoStatesRNNCell(8), return_sequences=True, return_state=True).compute_output_shape(shape)
    assert out[0] == (3, 4, 8) and out[1] == (3, 8) and out[2] == (3, 8)


def test_dynamic_shapes():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_dynamic_shapes``: unknown batch and time stay None."""
    shape = (None, None, 3)
    for cell_cls, n_states in ((OneStateRNNCell, 1), (TwoStatesRNNCell, 2)):
        assert rk.RNN(cell_cls(8), return_sequences=False).compute_output_shape(shape) == (None, 8)
        assert rk.RNN(cell_cls(8), return_sequences=True).compute_output_shape(shape) == (None, None, 8)
        out = rk.RNN(cell_cls(8), return_sequences=False, return_state=True).compute_output_shape(shape)
        assert out[0] == (None, 8)
        assert [out[1 + i] for i in range(n_states)] == [(None, 8)] * n_states
        out = rk.RNN(cell_cls(8), return_sequences=True, return_state=True).compute_output_shape(shape)
        assert out[0] == (None, None, 8)
        assert [out[1 + i] for i in range(n_states)] == [(None, 8)] * n_states


def test_forward_pass_single_state():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_forward_pass_single_state``."""
    sequence = np.ones((1, 2, 3))
    assert_all_close(rk.RNN(OneStateRNNCell(2), return_sequences=False)(sequence), np.array([[9.0, 9.0]]))
    assert_all_close(rk.RNN(OneStateRNNCell(2), return_sequences=True)(sequence), np.array([[[3.0, 3.0], [9.0, 9.0]]]))
    output, state = rk.RNN(OneStateRNNCell(2), return_sequences=False, return_state=True)(sequence)
    assert_all_close(output, np.array([[9.0, 9.0]]))
    assert_all_close(state, np.array([[9.0, 9.0]]))
    output, state = rk.RNN(OneStateRNNCell(2), return_sequences=True, return_state=True)(sequence)
    assert_all_close(output, np.array([[[3.0, 3.0], [9.0, 9.0]]]))
    assert_all_close(state, np.array([[9.0, 9.0]]))


def test_forward_pass_two_states():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_forward_pass_two_states``."""
    sequence = np.ones((1, 2, 3))
    assert_all_close(rk.RNN(TwoStatesRNNCell(2), return_sequences=False)(sequence), np.array([[18.0, 18.0]]))
    output = rk.RNN(TwoStatesRNNCell(2), return_sequences=True)(sequence)
    assert_all_close(output, np.array([[[6.0, 6.0], [18.0, 18.0]]]))
    output, state1, state2 = rk.RNN(TwoStatesRNNCell(2), return_sequences=False, return_state=True)(sequence)
    assert_all_close(output, np.array([[18.0, 18.0]]))
    assert_all_close(state1, np.array([[9.0, 9.0]]))
    assert_all_close(state2, np.array([[9.0, 9.0]]))
    output, state1, state2 = rk.RNN(TwoStatesRNNCell(2), return_sequences=True, return_state=True)(sequence)
    assert_all_close(output, np.array([[[6.0, 6.0], [18.0, 18.0]]]))
    assert_all_close(state1, np.array([[9.0, 9.0]]))
    assert_all_close(state2, np.array([[9.0, 9.0]]))


def test_passing_initial_state_single_state():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_passing_initial_state_single_state``."""
    sequence = np.ones((2, 3, 2))
    state = np.ones((2, 2))
    output = rk.RNN(OneStateRNNCell(2), return_sequences=False)(sequence, initial_state=state)
    assert_all_close(output, np.array([[22.0, 22.0], [22.0, 22.0]]))
    output, state = rk.RNN(OneStateRNNCell(2), return_sequences=False, return_state=True)(sequence, initial_state=state)
    assert_all_close(output, np.array([[22.0, 22.0], [22.0, 22.0]]))
    assert_all_close(state, np.array([[22.0, 22.0], [22.0, 22.0]]))


def test_passing_initial_state_two_states():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_passing_initial_state_two_states``."""
    sequence = np.ones((2, 3, 2))
    state = [np.ones((2, 2)), np.ones((2, 2))]
    output = rk.RNN(TwoStatesRNNCell(2), return_sequences=False)(sequence, initial_state=state)
    assert_all_close(output, np.array([[44.0, 44.0], [44.0, 44.0]]))
    layer = rk.RNN(TwoStatesRNNCell(2), return_sequences=False, return_state=True)
    output, state_1, state_2 = layer(sequence, initial_state=state)
    assert_all_close(output, np.array([[44.0, 44.0], [44.0, 44.0]]))
    assert_all_close(state_1, np.array([[22.0, 22.0], [22.0, 22.0]]))
    assert_all_close(state_2, np.array([[22.0, 22.0], [22.0, 22.0]]))


def test_statefulness_single_state():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_statefulness_single_state``."""
    sequence = np.ones((1, 2, 3))
    layer = rk.RNN(OneStateRNNCell(2), stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), np.array([[45.0, 45.0]]))
    layer = rk.RNN(OneStateRNNCell(2), stateful=True, return_state=True)
    layer(sequence)
    output, state = layer(sequence)
    assert_all_close(output, np.array([[45.0, 45.0]]))
    assert_all_close(state, np.array([[45.0, 45.0]]))


def test_statefulness_two_states():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_statefulness_two_states``."""
    sequence = np.ones((1, 2, 3))
    layer = rk.RNN(TwoStatesRNNCell(2), stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), np.array([[90.0, 90.0]]))
    layer = rk.RNN(TwoStatesRNNCell(2), stateful=True, return_state=True)
    layer(sequence)
    output, state_1, state_2 = layer(sequence)
    assert_all_close(output, np.array([[90.0, 90.0]]))
    assert_all_close(state_1, np.array([[45.0, 45.0]]))
    assert_all_close(state_2, np.array([[45.0, 45.0]]))


def test_go_backwards():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_go_backwards``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = rk.RNN(OneStateRNNCell(2), go_backwards=True)
    layer(sequence)
    assert_all_close(layer(sequence), np.array([[202.0, 202.0], [538.0, 538.0]]))
    layer = rk.RNN(OneStateRNNCell(2), stateful=True, return_state=True)
    layer(sequence)
    output, state = layer(sequence)
    assert_all_close(output, np.array([[954.0, 954.0], [3978.0, 3978.0]]))
    assert_all_close(state, np.array([[954.0, 954.0], [3978.0, 3978.0]]))


@pytest.mark.parametrize("cell_cls", [TwoStatesRNNCell, OneStateRNNCell])
def test_serialization(cell_cls):
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_serialization``: config round trip of an RNN around a custom cell."""
    layer = rk.RNN(cell_cls(2), return_sequences=False)
    config = layer.get_config()
    assert rk.RNN.from_config(config).get_config() == config


def test_stateful_batch_size_mismatch_raises():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_stateful_batch_size_mismatch_raises``."""
    batch_size, timesteps, features = 4, 5, 3
    layer = rk.RNN(TwoStatesRNNCell(2), stateful=True)
    model = rk.Sequential([rk.Input(shape=(timesteps, features), batch_size=batch_size), layer])
    model(torch.rand(batch_size, timesteps, features))
    with pytest.raises(ValueError, match="batch size"):
        model(torch.rand(1, timesteps, features))


def test_masking():
    """Upstream ``keras/src/layers/rnn/rnn_test.py::RNNTest::test_masking``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    tol = dict(atol=1e-5, rtol=1e-5)
    last = np.array([[57.0, 57.0], [126.0, 126.0]])
    every = np.array(
        [
            [[3.0, 3.0], [18.0, 18.0], [57.0, 57.0], [57.0, 57.0]],
            [[39.0, 39.0], [126.0, 126.0], [126.0, 126.0], [126.0, 126.0]],
        ]
    )
    for unroll in (False, True):
        assert_all_close(rk.RNN(OneStateRNNCell(2), unroll=unroll)(sequence, mask=mask), last, **tol)
    for unroll in (False, True):
        layer = rk.RNN(OneStateRNNCell(2), return_sequences=True, unroll=unroll)
        assert_all_close(layer(sequence, mask=mask), every, **tol)
