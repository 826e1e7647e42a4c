"""Keras 3's ``keras/src/layers/rnn/lstm_test.py``, ported to rnnkit.

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

# The three run_layer_test calls of test_basics.
BASICS = {
    "dropout": dict(
        init_kwargs={"units": 3, "dropout": 0.5},
        input_shape=(3, 2, 4),
        call_kwargs={"training": True},
        expected_output_shape=(3, 3),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    ),
    "recurrent_dropout": dict(
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
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_basics``: build, weight counts, call shapes, losses, a training step."""
    check_call(rk.LSTM, **BASICS[case])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_config(case):
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.LSTM, BASICS[case]["init_kwargs"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_basics``: the symbolic call's output shape."""
    c = BASICS[case]
    check_output_shape(rk.LSTM, c["init_kwargs"], c["input_shape"], c["expected_output_shape"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.LSTM, BASICS[case]["init_kwargs"], False)


def _lstm(units, **kwargs):
    return rk.LSTM(
        units,
        kernel_initializer=rk.Constant(0.01),
        recurrent_initializer=rk.Constant(0.02),
        bias_initializer=rk.Constant(0.03),
        **kwargs,
    )


TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("implementation", [1, 2])
def test_correctness(implementation):
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_correctness``."""
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    forward = np.array([[0.6288687] * 3, [0.86899155] * 3, [0.9460773] * 3])
    assert_all_close(_lstm(3, implementation=implementation)(sequence), forward, **TOL)
    output = _lstm(3, go_backwards=True, implementation=implementation)(sequence)
    assert_all_close(output, np.array([[0.35622165] * 3, [0.74789524] * 3, [0.8872726] * 3]), **TOL)
    assert_all_close(_lstm(3, unroll=True, implementation=implementation)(sequence), forward, **TOL)
    output = _lstm(3, unit_forget_bias=False, implementation=implementation)(sequence)
    assert_all_close(output, np.array([[0.57019705] * 3, [0.8661914] * 3, [0.9459622] * 3]), **TOL)
    output = _lstm(3, use_bias=False, implementation=implementation)(sequence)
    assert_all_close(output, np.array([[0.54986924] * 3, [0.86226785] * 3, [0.9443936] * 3]), **TOL)


def test_statefulness():
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_statefulness``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    expected = np.array([[0.3124785] * 4, [0.6863672] * 4])
    layer = _lstm(4, stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), expected, **TOL)
    layer.reset_state()
    layer(sequence)
    assert_all_close(layer(sequence), expected, **TOL)


def test_pass_initial_state():
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_pass_initial_state``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [np.arange(4).reshape((2, 2)).astype("float32"), np.arange(4).reshape((2, 2)).astype("float32")]
    output = _lstm(2)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.20574439, 0.3558822], [0.64930826, 0.66276]]), **TOL)
    output = _lstm(2, go_backwards=True)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.13281618, 0.2790356], [0.5839337, 0.5992567]]), **TOL)


def test_masking():
    """Upstream ``keras/src/layers/rnn/lstm_test.py::LSTMTest::test_masking``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, True, False], [True, True, False, False]])

    output = _lstm(2, unroll=True)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.11755939] * 2, [0.28556206] * 2]), **TOL)

    output = _lstm(2, return_sequences=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.11755939] * 2]), **TOL)
    assert_all_close(output[1], np.array([[0.14185596] * 2, [0.28556206] * 2, [0.28556206] * 2, [0.28556206] * 2]), **TOL)

    output = _lstm(2, return_sequences=True, zero_output_for_mask=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.0] * 2]), **TOL)
    assert_all_close(output[1], np.array([[0.14185596] * 2, [0.28556206] * 2, [0.0] * 2, [0.0] * 2]), **TOL)

    backwards_mask = np.array([[False, True, True, True], [False, False, True, True]])
    output = _lstm(2, go_backwards=True)(sequence, mask=backwards_mask)
    assert_all_close(output, np.array([[0.15341201] * 2, [0.3844719] * 2]), **TOL)
