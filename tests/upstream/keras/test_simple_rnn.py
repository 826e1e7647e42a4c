"""Keras 3's ``keras/src/layers/rnn/simple_rnn_test.py``, ported to rnnkit.

Same inputs, constant initializers, expected numbers and tolerances as
upstream; each test names the upstream method it ports.
"""

import numpy as np
import pytest

import rnnkit as rk

from .layer_checks import (
    assert_all_close,
    case_params,
    check_call,
    check_config_round_trip,
    check_output_shape,
    check_supports_masking,
)

# The two run_layer_test calls of test_basics.
BASICS = {
    "dropout": dict(
        init_kwargs={"units": 3, "dropout": 0.5, "recurrent_dropout": 0.5},
        input_shape=(3, 2, 4),
        call_kwargs={"training": True},
        expected_output_shape=(3, 3),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    ),
    "regularizers": dict(
        init_kwargs={
            "units": 3,
            "return_sequences": True,
            "bias_regularizer": "l1",
            "kernel_regularizer": "l2",
            "recurrent_regularizer": "l2",
        },
        input_shape=(3, 2, 4),
        expected_output_shape=(3, 2, 3),
        expected_num_losses=3,
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    ),
}


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_call(case):
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_basics``: build, weight counts, call shapes, losses, a training step."""
    check_call(rk.SimpleRNN, **BASICS[case])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_config(case):
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.SimpleRNN, BASICS[case]["init_kwargs"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_basics``: the symbolic call's output shape."""
    c = BASICS[case]
    check_output_shape(rk.SimpleRNN, c["init_kwargs"], c["input_shape"], c["expected_output_shape"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.SimpleRNN, BASICS[case]["init_kwargs"], False)


def _simple_rnn(units, **kwargs):
    return rk.SimpleRNN(
        units,
        kernel_initializer=rk.Constant(0.01),
        recurrent_initializer=rk.Constant(0.02),
        bias_initializer=rk.Constant(0.03),
        **kwargs,
    )


def test_correctness():
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_correctness``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    forward = np.array([[0.405432] * 4, [0.73605347] * 4])
    backward = np.array([[0.11144729] * 4, [0.5528889] * 4])
    assert_all_close(_simple_rnn(4)(sequence), forward)
    assert_all_close(_simple_rnn(4, unroll=True)(sequence), forward)
    assert_all_close(_simple_rnn(4, go_backwards=True)(sequence), backward)
    assert_all_close(_simple_rnn(4, go_backwards=True, unroll=True)(sequence), backward)


def test_statefulness():
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_statefulness``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    expected = np.array([[0.40559256] * 4, [0.7361247] * 4])
    layer = _simple_rnn(4, stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), expected)
    layer.reset_state()
    layer(sequence)
    assert_all_close(layer(sequence), expected)


def test_pass_initial_state():
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_pass_initial_state``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = np.arange(8).reshape((2, 4)).astype("float32")
    output = _simple_rnn(4)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.33621645] * 4, [0.6262637] * 4]))
    output = _simple_rnn(4, go_backwards=True)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.07344437] * 4, [0.43043602] * 4]))


def test_masking():
    """Upstream ``keras/src/layers/rnn/simple_rnn_test.py::SimpleRNNTest::test_masking``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, True], [True, False, False, True]])

    output = _simple_rnn(4, unroll=True)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.32951632] * 4, [0.61799484] * 4]))

    output = _simple_rnn(2, return_sequences=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.0599281] * 2, [0.15122814] * 2, [0.15122814] * 2, [0.32394567] * 2]))
    assert_all_close(output[1], np.array([[0.3969304] * 2, [0.3969304] * 2, [0.3969304] * 2, [0.608085] * 2]))

    output = _simple_rnn(2, return_sequences=True, zero_output_for_mask=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.0599281] * 2, [0.15122814] * 2, [0.0] * 2, [0.32394567] * 2]))
    assert_all_close(output[1], np.array([[0.3969304] * 2, [0.0] * 2, [0.0] * 2, [0.608085] * 2]))

    output = _simple_rnn(4, go_backwards=True)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.07376196] * 4, [0.43645123] * 4]))
