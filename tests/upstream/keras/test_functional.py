"""Keras 3's ``keras/src/models/functional_test.py`` (the functional ``Model``), ported to rnnkit.

Only the tests about what rnnkit's functional API covers (several inputs and
outputs, lists and dicts, sub-models, layer getters, configs, training) are
ported; tests/upstream/README.md lists the rest and why. Same inputs,
shapes and expected values as upstream; each test names the upstream method
it ports. Keras's ``Functional`` is rnnkit's ``Model``. Upstream builds many
graphs with Python operators on symbolic tensors (``input_a + input_b``);
rnnkit records ``+ - *`` as layer calls (``Add``, ``Subtract``, ``Multiply``,
``Rescaling``) but has no keras.ops, so a test that needs another op is not
ported (README), and where the op is incidental it is ported with the
equivalent layer (``Add``, a two-line ``Times`` layer). Every test here runs
as written: none is an xfail.
"""

import json

import numpy as np
import pytest
import torch

import rnnkit as rk


def _dense_two_inputs():
    a, b = rk.Input((3,), name="input_a"), rk.Input((4,), name="input_b")
    x = rk.Concatenate()([rk.Dense(5)(a), rk.Dense(5)(b)])
    return a, b, rk.Dense(4)(x)


def test_basic_flow_multi_input():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_basic_flow_multi_input``, with
    ``input_a + input_b`` as an ``Add`` layer."""
    input_a = rk.Input(shape=(3,), batch_size=2, name="input_a")
    input_b = rk.Input(shape=(3,), batch_size=2, name="input_b")
    x = rk.Dense(5)(rk.Add()([input_a, input_b]))
    model = rk.Model([input_a, input_b], rk.Dense(4)(x), name="basic")
    model.summary()
    assert model.name == "basic" and isinstance(model, rk.Model)
    assert model([np.random.random((2, 3)), np.random.random((2, 3))]).shape == (2, 4)
    out = model([rk.Input(shape=(3,), batch_size=2), rk.Input(shape=(3,), batch_size=2)])
    assert out.shape == (2, 4)


def test_basic_flow_multi_output():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_basic_flow_multi_output``."""
    inputs = rk.Input(shape=(3,), batch_size=2, name="input")
    x = rk.Dense(5)(inputs)
    model = rk.Model(inputs, [rk.Dense(4)(x), rk.Dense(5)(x)])
    out = model(np.random.random((2, 3)))
    assert isinstance(out, list) and len(out) == 2 and out[0].shape == (2, 4) and out[1].shape == (2, 5)
    out = model(rk.Input(shape=(3,), batch_size=2))
    assert isinstance(out, list) and len(out) == 2 and out[0].shape == (2, 4) and out[1].shape == (2, 5)


def test_basic_flow_dict_io():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_basic_flow_dict_io``."""
    input_a, input_b = rk.Input(shape=(3,), name="a"), rk.Input(shape=(3,), name="b")
    x = input_a + input_b
    outputs = rk.Dense(4)(rk.Dense(5)(x))
    with pytest.raises(ValueError, match="All `inputs` values must be KerasTensors"):
        rk.Model({"a": "input_a", "b": input_b}, outputs)
    with pytest.raises(ValueError, match="All `outputs` values must be KerasTensors"):
        rk.Model({"a": input_a, "b": input_b}, "outputs")
    model = rk.Model({"a": input_a, "b": input_b}, outputs)
    assert model({"a": np.random.random((2, 3)), "b": np.random.random((2, 3))}).shape == (2, 4)


def test_basic_flow_as_a_submodel():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_basic_flow_as_a_submodel``."""
    submodel_inputs = rk.Input([4])
    submodel = rk.Model(submodel_inputs, rk.Flatten()(submodel_inputs))
    inputs = rk.Input((None, 4))
    model = rk.Model(inputs=inputs, outputs=rk.TimeDistributed(submodel)(inputs))
    assert model(torch.rand(2, 3, 4)).shape == (2, 3, 4)


def test_nested_model_propagates_symbolic_output_mask():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_nested_model_propagates_symbolic_output_mask``."""

    class MaskCombiningLayer(rk.Layer):
        supports_masking = True

        def forward(self, inputs):
            x, y = inputs
            return x + y

        def compute_mask(self, inputs, previous_mask):
            x_mask, y_mask = previous_mask
            return x_mask & y_mask

    embedding = rk.Embedding(3, 5, mask_zero=True)
    inputs = rk.Input((3,))
    direct_output = embedding(inputs)
    embedding_model = rk.Model(inputs, direct_output)
    nested_output = embedding_model(inputs)
    assert nested_output.mask is not None
    combined = MaskCombiningLayer()([direct_output, nested_output])
    assert combined.mask is not None
    mask_model = rk.Model(inputs, [direct_output.mask, nested_output.mask, combined.mask])
    values = mask_model(torch.tensor(np.array([[0, 1, 2], [1, 0, 2]]), dtype=torch.float32))
    np.testing.assert_allclose(values[0].numpy(), values[1].numpy())
    np.testing.assert_allclose(values[2].numpy(), np.array([[False, True, True], [True, False, True]]))


def test_compute_output_spec_does_not_create_duplicate_nodes():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_compute_output_spec_does_not_create_duplicate_nodes``."""
    inputs = rk.Input((3,), dtype="int32")
    embedding = rk.Embedding(3, 5, mask_zero=True)
    model = rk.Model(inputs, embedding(inputs))
    count = len(embedding._inbound_nodes)
    model.compute_output_spec(rk.Input((3,), dtype="int32"))
    assert len(embedding._inbound_nodes) == count


def test_named_input_dict_io():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_named_input_dict_io``: one input
    called by name, two inputs given as a list or a dict and called with a dict by input name, a dict model
    with its own keys, and the input names refused once the dict's keys differ."""
    input_a = rk.Input(shape=(3,), batch_size=2, name="a")
    model = rk.Model(input_a, rk.Dense(4)(rk.Dense(5)(input_a)))
    assert model({"a": np.random.random((2, 3))}).shape == (2, 4)
    assert model({"a": rk.Input(shape=(3,), batch_size=2)}).shape == (2, 4)

    input_a = rk.Input(shape=(3,), batch_size=2, name="a")
    input_b = rk.Input(shape=(4,), batch_size=2, name="b")
    outputs = rk.Dense(4)(rk.Concatenate()([rk.Dense(5)(input_a), rk.Dense(5)(input_b)]))
    for model in (rk.Model([input_a, input_b], outputs), rk.Model({"a": input_a, "b": input_b}, outputs)):
        assert model({"a": np.random.random((2, 3)), "b": np.random.random((2, 4))}).shape == (2, 4)
        symbolic = {"a": rk.Input(shape=(3,), batch_size=2), "b": rk.Input(shape=(4,), batch_size=2)}
        assert model(symbolic).shape == (2, 4)

    model = rk.Model({"c": input_a, "d": input_b}, outputs)
    assert model({"c": np.random.random((2, 3)), "d": np.random.random((2, 4))}).shape == (2, 4)
    assert model({"c": rk.Input(shape=(3,), batch_size=2), "d": rk.Input(shape=(4,), batch_size=2)}).shape == (2, 4)
    with pytest.raises(ValueError):
        model({"a": np.random.random((2, 3)), "b": np.random.random((2, 4))})


@pytest.mark.parametrize("out_type", [list, tuple, dict], ids=["list", "tuple", "dict"])
def test_restored_multi_output_type(out_type):
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_restored_multi_output_type``."""
    inputs = rk.Input(shape=(3,), batch_size=2, name="input")
    x = rk.Dense(5)(inputs)
    output_a, output_b = rk.Dense(4)(x), rk.Dense(5)(x)
    outputs = {"a": output_a, "b": output_b} if out_type is dict else out_type([output_a, output_b])
    restored = rk.Model.from_config(rk.Model(inputs, outputs).get_config())
    assert isinstance(restored(torch.rand(2, 3)), out_type)
    assert isinstance(restored(rk.Input(shape=(3,), batch_size=2)), out_type)


def test_restored_nested_input():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_restored_nested_input``."""
    input_a = rk.Input(shape=(3,), name="input_a")
    model = rk.Model([[input_a]], rk.Dense(4)(rk.Dense(5)(input_a)))
    config = json.dumps(model.get_config())
    assert json.dumps(rk.Model.from_config(json.loads(config)).get_config()) == config


def test_layer_getters():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_layer_getters`` with ``+`` as an
    ``Add`` layer (so five layers, not four layers and five operations) and ``batch_size`` left out."""
    input_a, input_b = rk.Input(shape=(3,), name="input_a"), rk.Input(shape=(3,), name="input_b")
    x = rk.Add(name="add_getters")([input_a, input_b])
    outputs = rk.Dense(4, name="dense_2")(rk.Dense(5, name="dense_1")(x))
    model = rk.Model([input_a, input_b], outputs)
    assert len(model.layers) == 5
    assert [model.get_layer(index=i).name for i in range(5)] == ["input_a", "input_b", "add_getters", "dense_1", "dense_2"]
    assert model.get_layer(name="dense_1").name == "dense_1"


def test_training_arg():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_training_arg``: a layer inside
    sees training mode when the model is called with ``training=True``."""
    seen = []

    class Canary(rk.Layer):
        def forward(self, x):
            seen.append(self.training)
            return x

    inputs = rk.Input(shape=(3,), batch_size=2)
    model = rk.Model(inputs, Canary()(inputs))
    model.eval()
    seen.clear()
    model(torch.rand(2, 3), training=True)
    assert seen == [True]


def test_passing_inputs_by_name():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_passing_inputs_by_name``."""
    input_a, input_b = rk.Input(shape=(3,), name="input_a"), rk.Input(shape=(3,), name="input_b")
    model = rk.Model([input_a, input_b], rk.Dense(4)(rk.Dense(5)(input_a + input_b)))
    assert model({"input_a": np.random.random((2, 3)), "input_b": np.random.random((2, 3))}).shape == (2, 4)


def test_passing_inputs_by_name_with_an_add_layer():
    """Upstream ``...::FunctionalTest::test_passing_inputs_by_name`` with ``+`` as an ``Add`` layer and
    ``batch_size`` left out."""
    input_a, input_b = rk.Input(shape=(3,), name="input_a"), rk.Input(shape=(3,), name="input_b")
    model = rk.Model([input_a, input_b], rk.Dense(4)(rk.Dense(5)(rk.Add()([input_a, input_b]))))
    assert model({"input_a": torch.rand(2, 3), "input_b": torch.rand(2, 3)}).shape == (2, 4)
    out = model({"input_a": rk.Input(shape=(3,), name="input_a_2"), "input_b": rk.Input(shape=(3,), name="input_b_2")})
    assert out.shape == (None, 4)


def test_bad_input_spec():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_bad_input_spec`` with ``+`` as an
    ``Add`` layer. Upstream matches Keras's wording ("expected shape=(None, 4), found shape=(2, 3)",
    "expects 1 input", "named input(s) with keys"); here rnnkit's ValueErrors, which say the same."""
    inputs = rk.Input(shape=(4,))
    model = rk.Model(inputs, rk.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\).*got \(2, 3\)"):
        model(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\)"):
        model([np.zeros((2, 4)), np.zeros((2, 4))])

    input_a, input_b = rk.Input(shape=(4,), name="a"), rk.Input(shape=(4,), name="b")
    outputs = rk.Dense(2)(rk.Add()([input_a, input_b]))
    model = rk.Model([input_a, input_b], outputs)
    with pytest.raises(ValueError, match=r"expects a list or dict of 2 inputs"):
        model(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\).*got \(2, 3\)"):
        model([np.zeros((2, 3)), np.zeros((2, 4))])

    model = rk.Model({"a": input_a, "b": input_b}, outputs)
    with pytest.raises(ValueError, match=r"expects a list or dict of 2 inputs"):
        model(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\).*got \(2, 3\)"):
        model({"a": np.zeros((2, 3)), "b": np.zeros((2, 4))})


def test_functional_slicing():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_functional_slicing``."""
    inputs = rk.Input(shape=(None, 2), name="input")
    x1 = rk.Dense(3, name="dense1")(inputs)
    x2 = rk.Dense(4, name="dense2")(x1)
    outputs = rk.Dense(5, name="dense3")(x2)
    full = rk.Model(inputs, outputs, name="full_model")
    assert len(full.layers) == 4
    partial = rk.Model(x2, outputs, name="partial1")
    assert len(partial.layers) == 2 and isinstance(partial.layers[0], rk.InputLayer)
    assert partial.layers[1].name == "dense3"
    partial = rk.Model(full.get_layer("dense1").input, full.get_layer("dense2").output, name="partial4")
    assert [m.name for m in partial.layers[1:]] == ["dense1", "dense2"]


def test_deeply_nested_model(tmp_path):
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_deeply_nested_model``: the eager and
    symbolic calls, and the ``.keras`` round trip (nested ``input_layers`` / ``output_layers``)."""
    i1, i2, i3 = rk.Input((1,)), rk.Input((2,)), rk.Input((3,))
    o1, o2, o3 = rk.Dense(1)(i1), rk.Dense(2)(i2), rk.Dense(3)(i3)
    model = rk.Model({"1": i1, "others": {"2": i2, "3": i3}}, {"1": o1, "others": {"2": o2, "3": o3}})
    out_eager = model({"1": np.ones((2, 1)), "others": {"2": np.ones((2, 2)), "3": np.ones((2, 3))}})
    out_symbolic = model({"1": rk.Input((1,), batch_size=2),
                          "others": {"2": rk.Input((2,), batch_size=2), "3": rk.Input((3,), batch_size=2)}})
    for out in (out_eager, out_symbolic):
        assert isinstance(out, dict) and set(out) == {"1", "others"} and out["1"].shape == (2, 1)
        assert isinstance(out["others"], dict) and set(out["others"]) == {"2", "3"}
        assert out["others"]["2"].shape == (2, 2) and out["others"]["3"].shape == (2, 3)
    model.save(tmp_path / "model.keras")
    loaded = rk.load_model(tmp_path / "model.keras")
    new_out_eager = loaded({"1": np.ones((2, 1)), "others": {"2": np.ones((2, 2)), "3": np.ones((2, 3))}})
    assert isinstance(new_out_eager, dict) and set(new_out_eager) == {"1", "others"}
    assert set(new_out_eager["others"]) == {"2", "3"}
    for got, want in ((new_out_eager["1"], out_eager["1"]), (new_out_eager["others"]["2"], out_eager["others"]["2"]),
                      (new_out_eager["others"]["3"], out_eager["others"]["3"])):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())


def test_optional_inputs():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_optional_inputs``."""

    class OptionalInputLayer(rk.Layer):
        def forward(self, x, y=None):
            return x if y is None else x + y

    i1, i2 = rk.Input((2,)), rk.Input((2,), optional=True)
    model = rk.Model([i1, i2], OptionalInputLayer()(i1, i2))
    np.testing.assert_allclose(model([np.ones((2, 2)), None]), np.ones((2, 2)))


class OptionalInputLayer(rk.Layer):
    """Upstream's ``OptionalInputLayer``: ``x + y``, or ``x`` when ``y`` is None."""

    def forward(self, x, y=None):
        return x if y is None else x + y


def test_optional_dict_inputs():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_optional_dict_inputs``."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2", optional=True)
    model = rk.Model({"input1": i1, "input2": i2}, OptionalInputLayer()(i1, i2))
    np.testing.assert_allclose(model({"input1": np.ones((2, 2)), "input2": None}), np.ones((2, 2)))


def test_required_input_none_raises():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_required_input_none_raises``."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2", optional=False)
    model = rk.Model({"input1": i1, "input2": i2}, OptionalInputLayer()(i1, i2))
    with pytest.raises(ValueError, match="not optional"):
        model({"input1": np.ones((2, 2)), "input2": None})


def test_optional_and_required_mixed_structures():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_optional_and_required_mixed_structures``:
    a dict model called with a list (its keys are in sorted order, so Keras reads it in that order and warns)."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2", optional=True)
    model = rk.Model({"input1": i1, "input2": i2}, OptionalInputLayer()(i1, i2))
    with pytest.warns(UserWarning, match="The structure of `inputs` doesn't match the expected structure"):
        np.testing.assert_allclose(model([np.ones((2, 2)), None]), np.ones((2, 2)))
    np.testing.assert_allclose(model({"input1": np.ones((2, 2)), "input2": None}), np.ones((2, 2)))


def test_required_none_raises_in_fit():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_required_none_raises_in_fit``."""
    x = rk.Input((3,), name="x")
    model = rk.Model(x, rk.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="not optional"):
        model.fit([None], np.ones((4, 1)), epochs=1)


def test_disconnected_output():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_disconnected_output``."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2")
    with pytest.raises(ValueError, match="Output with path `output2` is not connected"):
        rk.Model(i1, {"output1": i1 * 2, "output2": i2 * 3})


def test_disconnected_output_with_layers():
    """Upstream ``...::FunctionalTest::test_disconnected_output`` with ``* 2``/``* 3`` as Dense layers: the
    output that needs ``input2`` is refused, named by its dict key (rnnkit's wording)."""
    i1, i2 = rk.Input((2,), name="input1_d"), rk.Input((2,), name="input2_d")
    with pytest.raises(ValueError, match="output 'output2' is not reachable.*'input2_d'"):
        rk.Model(i1, {"output1": rk.Dense(2)(i1), "output2": rk.Dense(2)(i2)})


def test_dict_input_to_list_model():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_dict_input_to_list_model``."""
    vocabulary_size, num_tags, num_departments, num_samples = 100, 10, 3, 128
    title = rk.Input(shape=(vocabulary_size,), name="title")
    text_body = rk.Input(shape=(vocabulary_size,), name="text_body")
    tags = rk.Input(shape=(num_tags,), name="tags")
    features = rk.Dense(64, activation="relu")(rk.Concatenate()([title, text_body, tags]))
    priority = rk.Dense(1, activation="sigmoid", name="priority")(features)
    department = rk.Dense(num_departments, activation="softmax", name="department")(features)
    model = rk.Model(inputs=[title, text_body, tags], outputs=[priority, department])

    title_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
    text_body_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
    tags_data = np.random.randint(0, 2, size=(num_samples, num_tags))
    priority_data = np.random.random(size=(num_samples, 1))
    department_data = np.random.randint(0, 2, size=(num_samples, num_departments))

    model.compile(optimizer="adam", loss=["mean_squared_error", "categorical_crossentropy"],
                  metrics=[["mean_absolute_error"], ["accuracy"]])
    model.fit([title_data, text_body_data, tags_data], [priority_data, department_data], epochs=1, verbose=0)
    model.evaluate([title_data, text_body_data, tags_data], [priority_data, department_data])
    priority_preds, department_preds = model.predict([title_data, text_body_data, tags_data])

    model.compile(optimizer="adam", loss={"priority": "mean_squared_error", "department": "categorical_crossentropy"},
                  metrics={"priority": ["mean_absolute_error"], "department": ["accuracy"]})
    x = {"title": title_data, "text_body": text_body_data, "tags": tags_data}
    y = {"priority": priority_data, "department": department_data}
    model.fit(x, y, epochs=1, verbose=0)
    model.evaluate(x, y)
    preds = model.predict(x)
    priority_preds, department_preds = preds if isinstance(preds, list) else (preds["priority"], preds["department"])
    assert priority_preds.shape == (num_samples, 1) and department_preds.shape == (num_samples, num_departments)


def test_list_input_with_dict_build():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_list_input_with_dict_build``."""
    x1, x2 = rk.Input((10,), name="IT"), rk.Input((10,), name="IS")
    model = rk.Model(inputs={"IT": x1, "IS": x2}, outputs=rk.Subtract()([x1, x2]))
    model({"IT": torch.ones(1, 10), "IS": torch.zeros(1, 10)})
    with pytest.raises(ValueError, match="The structure of `inputs` doesn't match the expected structure"):
        model([torch.ones(1, 10), torch.zeros(1, 10)])


def _legacy_config(layers, output):
    return {
        "name": "infinite_loop_model",
        "layers": [
            {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 10], "dtype": "float32", "name": "input_1"}},
            *({"class_name": "Dense", "name": name, "config": {"units": 10, "name": name},
               "inbound_nodes": [[[source, 0, 0, {}]]]} for name, source in layers),
        ],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [[output, 0, 0]],
    }


def test_invalid_config_deserialization_loop():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_invalid_config_deserialization_loop``."""
    with pytest.raises(ValueError, match="loop"):
        rk.Model.from_config(_legacy_config([("node_a", "node_b"), ("node_b", "node_a")], "node_b"))


def test_invalid_config_deserialization_missing_node():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_invalid_config_deserialization_missing_node``."""
    with pytest.raises(ValueError, match="Missing node: node_b"):
        rk.Model.from_config(_legacy_config([("node_a", "node_b")], "node_a"))


def test_invalid_config_deserialization_refused():
    """Upstream ``...::test_invalid_config_deserialization_loop`` and ``..._missing_node``: the same configs are
    refused with a ValueError (rnnkit's wording)."""
    for config in (_legacy_config([("node_a", "node_b"), ("node_b", "node_a")], "node_b"),
                   _legacy_config([("node_a", "node_b")], "node_a")):
        with pytest.raises(ValueError):
            rk.Model.from_config(config)


class Times(rk.Layer):
    """``x * factor``: what upstream writes as an operator on a symbolic tensor, as rnnkit's error advises."""

    def __init__(self, factor, name=None):
        super().__init__(name=name)
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_unmodified_inputs():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_unmodified_inputs`` with ``i1 * 2``
    as a ``Times(2)`` layer: an Input is also an output, unchanged."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2")
    model = rk.Model({"input1": i1, "input2": i2}, {"output1": Times(2)(i1), "output2": i2})
    out = model({"input1": np.ones((2, 2)), "input2": np.zeros((2, 2))})
    np.testing.assert_allclose(out["output1"], np.ones((2, 2)) * 2)
    np.testing.assert_allclose(out["output2"], np.zeros((2, 2)))
    out = model({"input1": rk.Input((2,)), "input2": rk.Input((2,))})
    assert isinstance(out, dict) and out["output1"].shape == (None, 2) and out["output2"].shape == (None, 2)


def test_unused_inputs():
    """Upstream ``keras/src/models/functional_test.py::FunctionalTest::test_unused_inputs`` with ``i1 * 2`` as a
    ``Times(2)`` layer: an Input no output needs is still an input."""
    i1, i2 = rk.Input((2,), name="input1"), rk.Input((2,), name="input2")
    model = rk.Model({"input1": i1, "input2": i2}, Times(2)(i1))
    np.testing.assert_allclose(model({"input1": np.ones((2, 2)), "input2": np.zeros((2, 2))}), np.ones((2, 2)) * 2)
    assert model({"input1": rk.Input((2,)), "input2": rk.Input((2,))}).shape == (None, 2)
