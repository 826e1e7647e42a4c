"""Keras 3's ``keras/src/layers/rnn/gru_test.py``, ported to rnnkit.

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
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_basics``: build, weight counts, call shapes, losses, a training step."""
    check_call(rk.GRU, **BASICS[case])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_config(case):
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.GRU, BASICS[case]["init_kwargs"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_basics``: the symbolic call's output shape."""
    c = BASICS[case]
    check_output_shape(rk.GRU, c["init_kwargs"], c["input_shape"], c["expected_output_shape"])


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.GRU, BASICS[case]["init_kwargs"], False)


def _gru(units, **kwargs):
    return rk.GRU(
        units,
        kernel_initializer=rk.Constant(0.01),
        recurrent_initializer=rk.Constant(0.02),
        bias_initializer=rk.Constant(0.03),
        **kwargs,
    )


# Upstream parametrizes over `implementation` but never passes it to the layer.
@pytest.mark.parametrize("implementation", [1, 2])
def test_correctness(implementation):
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_correctness``."""
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    forward = np.array([[0.5217289] * 3, [0.6371659] * 3, [0.39384964, 0.39384964, 0.3938496]])
    tol = dict(atol=1e-5, rtol=1e-5)
    assert_all_close(_gru(3)(sequence), forward, **tol)
    output = _gru(3, go_backwards=True)(sequence)
    assert_all_close(output, np.array([[0.24406259] * 3, [0.611516] * 3, [0.3928808] * 3]), **tol)
    assert_all_close(_gru(3, unroll=True)(sequence), forward, **tol)
    output = _gru(3, reset_after=False)(sequence)
    assert_all_close(output, np.array([[0.51447755] * 3, [0.6426879] * 3, [0.40208298] * 3]), **tol)
    output = _gru(3, use_bias=False)(sequence)
    assert_all_close(output, np.array([[0.49988455] * 3, [0.64701194] * 3, [0.4103359] * 3]), **tol)


def test_statefulness():
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_statefulness``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    expected = np.array([[0.29542392] * 4, [0.5885018] * 4])
    layer = _gru(4, stateful=True)
    layer(sequence)
    assert_all_close(layer(sequence), expected)
    layer.reset_state()
    layer(sequence)
    assert_all_close(layer(sequence), expected)


def test_pass_initial_state():
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_pass_initial_state``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = np.arange(4).reshape((2, 2)).astype("float32")
    output = _gru(2)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.23774096, 0.33508456], [0.83659905, 1.0227708]]))
    output = _gru(2, go_backwards=True)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.13486053, 0.23261218], [0.78257304, 0.9691353]]))


def test_pass_return_state():
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_pass_return_state``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = np.arange(4).reshape((2, 2)).astype("float32")

    output, state = _gru(2, return_state=True)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.23774096, 0.33508456], [0.83659905, 1.0227708]]))
    assert_all_close(output, state)

    output, state = _gru(2, return_state=True, go_backwards=True)(sequence, initial_state=initial_state)
    assert_all_close(output, np.array([[0.13486053, 0.23261218], [0.78257304, 0.9691353]]))
    assert_all_close(output, state)


def test_masking():
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_masking``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, True], [True, False, False, True]])

    output = _gru(2, unroll=True)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.19393763] * 2, [0.30818558] * 2]))

    output = _gru(2, return_sequences=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2, [0.19393763] * 2]))
    assert_all_close(output[1], np.array([[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2, [0.30818558] * 2]))

    output = _gru(2, return_sequences=True, zero_output_for_mask=True)(sequence, mask=mask)
    assert_all_close(output[0], np.array([[0.03606692] * 2, [0.09497581] * 2, [0.0] * 2, [0.19393763] * 2]))
    assert_all_close(output[1], np.array([[0.16051409] * 2, [0.0] * 2, [0.0] * 2, [0.30818558] * 2]))

    output = _gru(2, go_backwards=True)(sequence, mask=mask)
    assert_all_close(output, np.array([[0.11669192] * 2, [0.28380975] * 2]))


def test_legacy_implementation_argument():
    """Upstream ``keras/src/layers/rnn/gru_test.py::GRUTest::test_legacy_implementation_argument``: a config with ``implementation=0`` still loads."""
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    config = _gru(3).get_config()
    config["implementation"] = 0
    layer = rk.GRU.from_config(config)
    assert_all_close(
        layer(sequence), np.array([[0.5217289] * 3, [0.6371659] * 3, [0.39384964, 0.39384964, 0.3938496]])
    )
