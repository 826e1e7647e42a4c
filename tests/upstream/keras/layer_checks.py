"""What Keras's ``run_layer_test`` checks, spelled as plain rnnkit calls.

Keras's ``TestCase.run_layer_test(layer_cls, init_kwargs, input_shape, ...)``
bundles several checks. The ported tests call the pieces one by one, so a
missing feature (say ``from_config``) fails only the piece that needs it:

- ``check_call``: build from the full input shape (batch first, as Keras),
  count the weights, call on random data (uniform in [0, 3), like Keras)
  with the call keywords, compare the output shapes, count the regularizer
  losses, and take one SGD step on ``sum(outputs)`` (Keras's training
  check): every trainable weight must receive a gradient.
- ``check_config_round_trip``: ``cls.from_config(layer.get_config())``
  gives a layer with the same config.
- ``check_output_shape``: Keras's symbolic call, i.e. the output shape
  worked out from the input shape alone (``compute_output_shape``).
- ``check_supports_masking``: the ``supports_masking`` flag.

Shapes are compared as Keras does: ``None`` in the expected shape matches any size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


def random_inputs(shape, seed=0):
    """float32 numbers uniform in [0, 3), Keras's ``create_eager_tensors``."""
    return torch.from_numpy((np.random.default_rng(seed).random(shape) * 3).astype(np.float32))


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flat(item)]
    return [x]


def _shape_matches(expected, actual) -> bool:
    if len(expected) != len(actual):
        return False
    return all(e is None or e == a for e, a in zip(expected, actual))


def assert_shapes(expected, outputs):
    """``expected``: a shape tuple, or a (nested) list of them matching ``outputs``."""
    if isinstance(expected, tuple) and all(e is None or isinstance(e, int) for e in expected):
        expected_flat, out_flat = [expected], [outputs]
    else:
        expected_flat, out_flat = _flat_shapes(expected), _flat(outputs)
    assert len(expected_flat) == len(out_flat), f"expected {len(expected_flat)} outputs, got {len(out_flat)}"
    got = [tuple(o.shape) for o in out_flat]
    assert all(_shape_matches(e, g) for e, g in zip(expected_flat, got)), f"expected shapes {expected}, got {got}"


def _flat_shapes(expected):
    if isinstance(expected, tuple) and all(e is None or isinstance(e, int) for e in expected):
        return [expected]
    return [s for item in expected for s in _flat_shapes(item)]


def check_call(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_output_shape,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    expected_num_losses=None,
    run_training_check=True,
):
    call_kwargs = call_kwargs or {}

    layer = layer_cls(**init_kwargs)
    layer.build(input_shape)
    assert layer.built
    trainable = [w for w in layer.weights if w.requires_grad]
    frozen = [w for w in layer.weights if not w.requires_grad]
    if expected_num_trainable_weights is not None:
        assert len(trainable) == expected_num_trainable_weights
    if expected_num_non_trainable_weights is not None:
        assert len(frozen) == expected_num_non_trainable_weights

    layer = layer_cls(**init_kwargs)
    outputs = layer(random_inputs(input_shape), **call_kwargs)
    assert_shapes(expected_output_shape, outputs)
    if expected_num_losses is not None:
        assert len(layer.losses) == expected_num_losses

    if run_training_check and layer.weights:
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)
        optimizer.zero_grad()
        sum(o.sum() for o in _flat(outputs)).backward()
        missing = [i for i, w in enumerate(layer.weights) if w.requires_grad and w.grad is None]
        assert not missing, f"weights {missing} got no gradient"
        optimizer.step()


def check_config_round_trip(layer_cls, init_kwargs):
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config


def check_output_shape(layer_cls, init_kwargs, input_shape, expected_output_shape):
    layer = layer_cls(**init_kwargs)
    shape = layer.compute_output_shape(input_shape)
    if isinstance(shape, list):
        shape = [tuple(s) for s in shape]
    else:
        shape = tuple(shape)
    assert_shapes(expected_output_shape, _as_shape_tensors(shape))


class _Shape:
    def __init__(self, shape):
        self.shape = shape


def _as_shape_tensors(shape):
    if isinstance(shape, list):
        return [_as_shape_tensors(s) for s in shape]
    return _Shape(shape)


def check_supports_masking(layer_cls, init_kwargs, supports_masking):
    assert layer_cls(**init_kwargs).supports_masking is supports_masking


def assert_all_close(actual, desired, atol=1e-6, rtol=1e-6):
    """Keras's ``assertAllClose``: numpy's allclose with Keras's default tolerances."""
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().cpu().numpy()
    if isinstance(desired, torch.Tensor):
        desired = desired.detach().cpu().numpy()
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def case_params(cases, marks_by_case=None, also=()):
    """``pytest.param`` per named case of ``cases``, with that case's marks plus ``also``."""
    marks_by_case = marks_by_case or {}
    return [pytest.param(name, marks=[*marks_by_case.get(name, []), *also], id=name) for name in cases]
