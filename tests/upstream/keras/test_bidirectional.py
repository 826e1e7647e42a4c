"""Keras 3's ``keras/src/layers/rnn/bidirectional_test.py``, ported to rnnkit.

(Upstream's test class there is named ``SimpleRNNTest``.) Same inputs,
constant initializers, expected numbers and tolerances as upstream; each
test names the upstream method it ports.
"""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import ops

from .layer_checks import (
    assert_all_close,
    case_params,
    check_call,
    check_config_round_trip,
    check_output_shape,
    check_supports_masking,
)

TOL = dict(atol=1e-5, rtol=1e-5)

# The two run_layer_test calls of test_basics: (init kwargs, output shape).
BASICS = {
    "concat": (lambda: {"layer": rk.SimpleRNN(4)}, (3, 8)),
    "sum_with_backward_layer": (
        lambda: {
            "layer": rk.SimpleRNN(4),
            "backward_layer": rk.SimpleRNN(4, go_backwards=True),
            "merge_mode": "sum",
        },
        (3, 4),
    ),
}
INPUT_SHAPE = (3, 2, 4)


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_call(case):
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_basics``: build, weight counts, call shapes, a training step."""
    make_kwargs, expected_shape = BASICS[case]
    check_call(
        rk.Bidirectional,
        make_kwargs(),
        INPUT_SHAPE,
        expected_shape,
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_config(case):
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.Bidirectional, BASICS[case][0]())


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_symbolic_shape(case):
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_basics``: the symbolic call's output shape."""
    make_kwargs, expected_shape = BASICS[case]
    check_output_shape(rk.Bidirectional, make_kwargs(), INPUT_SHAPE, expected_shape)


@pytest.mark.parametrize("case", case_params(BASICS))
def test_basics_supports_masking(case):
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.Bidirectional, BASICS[case][0](), False)


def _constants(layer_cls, units, kernel=0.01, recurrent=0.02, bias=0.03, **kwargs):
    return layer_cls(
        units,
        kernel_initializer=rk.Constant(kernel),
        recurrent_initializer=rk.Constant(recurrent),
        bias_initializer=rk.Constant(bias),
        **kwargs,
    )


def test_correctness():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_correctness``."""
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    forward_layer = _constants(rk.SimpleRNN, 2)

    output = rk.Bidirectional(layer=forward_layer)(sequence)
    expected = np.array([[0.39687276, 0.39687276, 0.10004295, 0.10004295], [0.7237238, 0.7237238, 0.53391594, 0.53391594]])
    assert_all_close(output, expected, **TOL)

    output = rk.Bidirectional(layer=forward_layer, merge_mode="ave")(sequence)
    assert_all_close(output, np.array([[0.24845785, 0.24845785], [0.6288199, 0.6288199]]), **TOL)

    output1, output2 = rk.Bidirectional(layer=forward_layer, merge_mode=None)(sequence)
    assert_all_close(output1, np.array([[0.39687276, 0.39687276], [0.7237238, 0.7237238]]), **TOL)
    assert_all_close(output2, np.array([[0.10004295, 0.10004295], [0.53391594, 0.53391594]]), **TOL)

    backward_layer = _constants(rk.SimpleRNN, 2, kernel=0.03, recurrent=0.02, bias=0.01, go_backwards=True)
    layer = rk.Bidirectional(layer=forward_layer, backward_layer=backward_layer, merge_mode="mul")
    assert_all_close(layer(sequence), np.array([[0.08374989, 0.08374989], [0.6740834, 0.6740834]]), **TOL)

    forward_layer = _constants(rk.GRU, 2, return_sequences=True)
    output = rk.Bidirectional(layer=forward_layer, merge_mode="sum")(sequence)
    expected = np.array(
        [
            [[0.20937867, 0.20937867], [0.34462988, 0.34462988], [0.40290534, 0.40290534]],
            [[0.59829646, 0.59829646], [0.6734641, 0.6734641], [0.6479671, 0.6479671]],
        ]
    )
    assert_all_close(output, expected, **TOL)


def test_statefulness():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_statefulness``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    layer = rk.Bidirectional(layer=_constants(rk.LSTM, 2, stateful=True))
    expected = np.array([[0.26234663, 0.26234663, 0.16959146, 0.16959146], [0.6137073, 0.6137073, 0.5381646, 0.5381646]])
    layer(sequence)
    assert_all_close(layer(sequence), expected, **TOL)
    layer.reset_state()
    layer(sequence)
    assert_all_close(layer(sequence), expected, **TOL)


def test_pass_initial_state():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_pass_initial_state``: forward h, c then backward h, c."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [np.arange(4).reshape((2, 2)).astype("float32") * k for k in (1, 2, 3, 4)]
    layer = rk.Bidirectional(layer=_constants(rk.LSTM, 2))
    output = layer(sequence, initial_state=initial_state)
    expected = np.array([[0.20794602, 0.4577124, 0.14046375, 0.48191673], [0.6682636, 0.6711909, 0.60943645, 0.60950446]])
    assert_all_close(output, expected, **TOL)


def test_masking():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_masking``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    layer = rk.Bidirectional(layer=_constants(rk.GRU, 2))
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    expected = np.array(
        [[0.19393763, 0.19393763, 0.11669192, 0.11669192], [0.30818558, 0.30818558, 0.28380975, 0.28380975]]
    )
    assert_all_close(layer(sequence, mask=mask), expected, **TOL)


def test_return_state():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_return_state``."""
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    layer = rk.Bidirectional(layer=_constants(rk.LSTM, 2, return_state=True))
    output, h1, c1, h2, c2 = layer(sequence)
    expected = np.array(
        [[0.1990008, 0.1990008, 0.12659755, 0.12659755], [0.52335435, 0.52335435, 0.44717982, 0.44717982]]
    )
    assert_all_close(output, expected, **TOL)
    assert_all_close(h1, np.array([[0.1990008, 0.1990008], [0.52335435, 0.52335435]]), **TOL)
    assert_all_close(c1, np.array([[0.35567185, 0.35567185], [1.0492687, 1.0492687]]), **TOL)
    assert_all_close(h2, np.array([[0.12659755, 0.12659755], [0.44717982, 0.44717982]]), **TOL)
    assert_all_close(c2, np.array([[0.2501858, 0.2501858], [0.941473, 0.941473]]), **TOL)


def test_output_shape():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_output_shape``: compute_output_shape matches the call."""
    x = np.array([[[101, 202], [303, 404]]])
    for merge_mode in ["ave", "concat", "mul", "sum", None]:
        layer = rk.Bidirectional(rk.LSTM(2, return_state=True), merge_mode=merge_mode)
        output = layer(x)
        for out, shape in zip(output, layer.compute_output_shape(x.shape)):
            assert tuple(out.shape) == tuple(shape)

    for merge_mode in ["concat", "ave", "mul", "sum"]:
        layer = rk.Bidirectional(rk.LSTM(2, return_state=False), merge_mode=merge_mode)
        assert tuple(layer(x).shape) == tuple(layer.compute_output_shape(x.shape))

    layer = rk.Bidirectional(rk.LSTM(2, return_state=False), merge_mode=None)
    output = layer(x)
    for out, shape in zip(output, layer.compute_output_shape(x.shape)):
        assert tuple(out.shape) == tuple(shape)


def test_keeps_use_cudnn():
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_keeps_use_cudnn``."""
    for rnn_class in [rk.GRU, rk.LSTM]:
        for use_cudnn in [True, False, "auto"]:
            bidi = rk.Bidirectional(rnn_class(1, use_cudnn=use_cudnn))
            assert bidi.forward_layer.use_cudnn == use_cudnn
            assert bidi.backward_layer.use_cudnn == use_cudnn

    bidi = rk.Bidirectional(rk.SimpleRNN(1))
    assert not hasattr(bidi.forward_layer, "use_cudnn")
    assert not hasattr(bidi.backward_layer, "use_cudnn")


@pytest.mark.parametrize("layer_cls", [rk.LSTM, rk.GRU], ids=["lstm", "gru"])
def test_fused_matches_unfused(layer_cls):
    """Upstream ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_fused_lstm_matches_unfused`` and ``keras/src/layers/rnn/bidirectional_test.py::SimpleRNNTest::test_fused_gru_matches_unfused``."""
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")

    def build(use_cudnn):
        layer = rk.Bidirectional(
            layer_cls(
                5,
                use_cudnn=use_cudnn,
                return_sequences=True,
                kernel_initializer=ops.GlorotUniform(seed=1),
                recurrent_initializer=ops.Orthogonal(seed=2),
            )
        )
        layer.build(x.shape)
        return layer

    ref = build(use_cudnn=False)
    fused = build(use_cudnn="auto")
    fused.set_weights(ref.get_weights())
    assert_all_close(ref(x), fused(x), atol=1e-5)
