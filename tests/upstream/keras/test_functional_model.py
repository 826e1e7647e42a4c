"""Keras 3's ``keras/src/models/model_test.py``, the parts about functional models, ported to rnnkit.

Same models, data shapes, compile arguments and expected log keys as upstream; each test names the
upstream method it ports.
"""

import pickle

import numpy as np
import pytest

import rnnkit as rk


def _multi_outputs_list():
    x = rk.Input(shape=(3,), name="input_a")
    output_a = rk.Dense(1, name="output_a")(x)
    output_b = rk.Dense(1, name="output_b", activation="sigmoid")(x)
    return rk.Model(x, [output_a, output_b])


def _single_output():
    x = rk.Input(shape=(3,), name="input_a")
    return rk.Model(x, rk.Dense(1, name="output_a")(x))


def _single_output_list():
    x = rk.Input(shape=(3,), name="input_a")
    return rk.Model(x, [rk.Dense(1, name="output_a")(x)])


def _data():
    return np.random.rand(8, 3), np.random.rand(8, 1), np.random.randint(0, 2, (8, 1))


@pytest.mark.parametrize("model_fn", [_single_output, _single_output_list], ids=["single_output", "single_list_output"])
def test_functional_pickling(model_fn):
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_pickling`` (one case per model;
    upstream repeats each four times). ``compile()`` without arguments is Keras's; here compile with a loss."""
    model = model_fn()
    model.compile("sgd", "mse")
    x = np.random.rand(8, 3)
    reloaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(np.array(reloaded.predict(x)), np.array(model.predict(x)), rtol=1e-6, atol=1e-6)


def test_functional_single_output():
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_single_output`` (the plain-loss case)."""
    model = _single_output()
    model.compile(optimizer="sgd", loss="mean_squared_error",
                  metrics={"output_a": ["mean_squared_error", "mean_absolute_error"]},
                  weighted_metrics={"output_a": "mean_squared_error"})
    hist = model.fit(np.random.rand(8, 3), np.random.rand(8, 1), batch_size=2, epochs=1, verbose=0)
    assert sorted(hist.history) == sorted(["loss", "mean_absolute_error", "mean_squared_error",
                                           "weighted_mean_squared_error"])


def test_functional_list_outputs_list_losses():
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_list_outputs_list_losses``."""
    model = _multi_outputs_list()
    x, y1, y2 = _data()
    model.compile(optimizer="sgd", loss=["mean_squared_error", "binary_crossentropy"],
                  metrics=["mean_squared_error", ["mean_squared_error", "accuracy"]], loss_weights=[0.1, 2])
    hist = model.fit(x, (y1, y2), batch_size=2, epochs=1, verbose=0)
    assert sorted(hist.history) == sorted(["loss", "output_a_loss", "output_a_mean_squared_error", "output_b_accuracy",
                                           "output_b_loss", "output_b_mean_squared_error"])


def test_functional_list_outputs_list_losses_abbr():
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_list_outputs_list_losses_abbr``."""
    model = _multi_outputs_list()
    x, y1, y2 = _data()
    model.compile(optimizer="sgd", loss=["mse", "bce"], metrics=[["bce", "mse", "mae"], ["mse", "acc"]],
                  loss_weights=[0.1, 2])
    hist = model.fit(x, (y1, y2), batch_size=2, epochs=1, verbose=0)
    assert sorted(hist.history) == sorted(["loss", "output_a_loss", "output_a_bce", "output_a_mae", "output_a_mse",
                                           "output_b_acc", "output_b_loss", "output_b_mse"])


def test_functional_list_outputs_nested_list_losses():
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_list_outputs_nested_list_losses``."""
    model = _multi_outputs_list()
    x, y1, y2 = _data()
    model.compile(optimizer="sgd", loss=["mean_squared_error", ["binary_crossentropy"]],
                  metrics=["mean_squared_error", ["mean_squared_error", "accuracy"]], loss_weights=[0.1, 2])
    hist = model.fit(x, (y1, y2), batch_size=2, epochs=1, verbose=0)
    assert sorted(hist.history) == sorted(["loss", "output_a_loss", "output_a_mean_squared_error", "output_b_accuracy",
                                           "output_b_loss", "output_b_mean_squared_error"])


def test_functional_dict_outputs_dict_losses():
    """Upstream ``keras/src/models/model_test.py::ModelTest::test_functional_dict_outputs_dict_losses``."""
    x = rk.Input(shape=(3,), name="input_a")
    model = rk.Model(x, {"output_a": rk.Dense(1, name="output_a")(x),
                         "output_b": rk.Dense(1, name="output_b", activation="sigmoid")(x)})
    data, y1, y2 = _data()
    model.compile(optimizer="sgd", loss={"output_a": "mean_squared_error", "output_b": ["binary_crossentropy"]},
                  metrics={"output_a": ["mean_squared_error"], "output_b": ["mean_squared_error", "accuracy"]},
                  weighted_metrics={"output_a": ["mean_squared_error"], "output_b": ["mean_squared_error", "accuracy"]})
    outputs = model.predict(data)
    assert isinstance(outputs, dict) and outputs["output_a"].shape == (8, 1) and outputs["output_b"].shape == (8, 1)
    model.fit(data, {"output_a": y1, "output_b": y2}, batch_size=2, epochs=1, verbose=0)


def test_functional_dict_outputs_dict_losses_without_weighted_metrics():
    """Upstream ``...::ModelTest::test_functional_dict_outputs_dict_losses`` without ``weighted_metrics`` and
    with the ``output_b`` loss as a plain name: dict outputs from ``predict``, per-output log keys."""
    x = rk.Input(shape=(3,), name="input_a")
    model = rk.Model(x, {"output_a": rk.Dense(1, name="output_a")(x),
                         "output_b": rk.Dense(1, name="output_b", activation="sigmoid")(x)})
    data, y1, y2 = _data()
    model.compile(optimizer="sgd", loss={"output_a": "mean_squared_error", "output_b": "binary_crossentropy"},
                  metrics={"output_a": ["mean_squared_error"], "output_b": ["mean_squared_error", "accuracy"]})
    outputs = model.predict(data)
    assert isinstance(outputs, dict) and outputs["output_a"].shape == (8, 1) and outputs["output_b"].shape == (8, 1)
    hist = model.fit(data, {"output_a": y1, "output_b": y2}, batch_size=2, epochs=1, verbose=0)
    assert sorted(hist.history) == sorted(["loss", "output_a_loss", "output_a_mean_squared_error", "output_b_accuracy",
                                           "output_b_loss", "output_b_mean_squared_error"])
