"""Keras 3's ``keras/src/layers/rnn/time_distributed_test.py``, ported to rnnkit.

Same inputs, initializers, expected numbers and tolerances as upstream;
each test names the upstream method it ports. Upstream's mask-validation
tests match Keras's error wording; here they check the ValueError and
that it names the mask.
"""

import numpy as np
import pytest
import torch

import rnnkit as rk

from .layer_checks import (
    assert_all_close,
    check_call,
    check_config_round_trip,
    check_output_shape,
    check_supports_masking,
)


def _basics_kwargs():
    return {"layer": rk.Dense(1, use_bias=False)}


def test_basics_call():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_basics``: build, weight counts, call shapes, a training step."""
    check_call(
        rk.TimeDistributed,
        _basics_kwargs(),
        (3, 2, 4),
        (3, 2, 1),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_basics_config():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.TimeDistributed, _basics_kwargs())


def test_basics_symbolic_shape():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_basics``: the symbolic call's output shape."""
    check_output_shape(rk.TimeDistributed, _basics_kwargs(), (3, 2, 4), (3, 2, 1))


def test_basics_supports_masking():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.TimeDistributed, _basics_kwargs(), False)


def test_build():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_build`` (channels_last): Conv2D(64, 3x3) on every frame of a video."""
    layer = rk.TimeDistributed(rk.Conv2D(64, (3, 3)))
    assert tuple(layer.compute_output_shape((32, 10, 128, 128, 3))) == (32, 10, 126, 126, 64)


def test_correctness():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_correctness``."""
    sequence = np.arange(24).reshape((3, 2, 4)).astype("float32")
    layer = rk.TimeDistributed(layer=rk.Dense(1, kernel_initializer=rk.Constant(0.01), use_bias=False))
    assert_all_close(layer(sequence), np.array([[[0.06], [0.22]], [[0.38], [0.53999996]], [[0.7], [0.86]]]))


class MaskedDense(rk.Layer):
    """A Dense(units, kernel 0.01, no bias) whose output is zero where the mask is False."""

    supports_masking = True

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.layer = rk.Dense(units, kernel_initializer=rk.Constant(0.01), use_bias=False)

    def forward(self, inputs, training=False, mask=None):
        unmasked = self.layer(inputs)
        if mask is None:
            return unmasked
        # Scale the output of each sample by its mask (the batch axis leads).
        return (unmasked.T * torch.as_tensor(mask).to(unmasked.dtype)).T


def test_masking():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_masking``: the mask reaches the inner layer, step by step."""
    sequence = np.arange(24).reshape((3, 2, 4)).astype("float32")
    layer = rk.TimeDistributed(layer=MaskedDense(1))
    mask = np.array([[False, True], [True, False], [True, True]])
    output = layer(sequence, mask=mask)
    assert_all_close(output, np.array([[[0], [0.22]], [[0.38], [0]], [[0.7], [0.86]]]))


def test_with_mask_zero():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_with_mask_zero``: one epoch of fit runs."""
    model = rk.Sequential(
        [
            rk.Input(shape=(20,)),
            rk.Embedding(input_dim=10, output_dim=5, mask_zero=True),
            rk.TimeDistributed(rk.Dense(units=5, activation="softmax")),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train = np.random.uniform(1, 10, size=(22, 20))
    y_train = np.random.randint(1, 2, size=(22, 20))
    model.fit(x_train, y_train, epochs=1, batch_size=16)


def _dense_td():
    return rk.TimeDistributed(rk.Dense(units=5, activation="softmax"))


def test_mask_validation_with_mismatched_timesteps():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_mismatched_timesteps``."""
    batch, timesteps, features = 4, 5, 3
    td = _dense_td()
    inputs = np.zeros((batch, timesteps, features))
    output = td(inputs, mask=np.ones((batch, timesteps), dtype=bool))
    assert tuple(output.shape) == (batch, timesteps, 5)
    with pytest.raises(ValueError, match="mask"):
        td(inputs, mask=np.ones((batch, timesteps + 1), dtype=bool))


def test_mask_validation_with_mismatched_batch_size():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_mismatched_batch_size``."""
    batch, timesteps, features = 4, 5, 3
    td = _dense_td()
    with pytest.raises(ValueError, match="mask"):
        td(np.zeros((batch, timesteps, features)), mask=np.ones((batch + 1, timesteps), dtype=bool))


def test_mask_validation_with_correct_shape():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_correct_shape``: a (batch, time, 1) mask."""
    batch, timesteps, features = 4, 5, 3
    output = _dense_td()(np.zeros((batch, timesteps, features)), mask=np.ones((batch, timesteps, 1), dtype=bool))
    assert tuple(output.shape) == (batch, timesteps, 5)


def test_mask_validation_with_3d_mask():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_3d_mask``."""
    batch, timesteps, features = 4, 5, 3
    td = _dense_td()
    inputs = np.zeros((batch, timesteps, features))
    output = td(inputs, mask=np.ones((batch, timesteps, 2), dtype=bool))
    assert tuple(output.shape) == (batch, timesteps, 5)
    with pytest.raises(ValueError, match="mask"):
        td(inputs, mask=np.ones((batch, timesteps + 1, 2), dtype=bool))


def test_mask_validation_with_none_mask():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_none_mask``: ``mask=None`` is accepted."""
    batch, timesteps, features = 4, 5, 3
    output = _dense_td()(np.zeros((batch, timesteps, features)), mask=None)
    assert tuple(output.shape) == (batch, timesteps, 5)


def test_mask_validation_with_both_batch_and_timesteps_mismatched():
    """Upstream ``keras/src/layers/rnn/time_distributed_test.py::TimeDistributedTest::test_mask_validation_with_both_batch_and_timesteps_mismatched``."""
    batch, timesteps, features = 4, 5, 3
    td = _dense_td()
    with pytest.raises(ValueError, match="mask"):
        td(np.zeros((batch, timesteps, features)), mask=np.ones((batch + 1, timesteps + 1), dtype=bool))
