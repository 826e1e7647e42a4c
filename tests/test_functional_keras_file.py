"""A functional rk.Model in Keras 3's ``.keras`` format: Model.save and rk.load_model (issue 17).

Fixtures in tests/data/keras_functional/ (no Keras needed here):

- ``NAME.keras``: saved by Keras 3.15.1 (scripts/make_functional_fixtures.py keras-files), the
  weights of ``NAME.npz``, whose ``y_*`` are Keras's outputs;
- ``rk_NAME.keras``: saved by rnnkit (scripts/make_keras_save_fixtures.py write-functional), then
  loaded by Keras, whose outputs ``y_keras_*`` sit in ``rk_NAME.npz`` beside rnnkit's ``y_*``.
"""

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk

h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install 'rnnkit[interop]')")

DATA = Path(__file__).parent / "data" / "keras_functional"
KERAS_MADE = ["two_inputs", "encoder_decoder", "embedding_mask", "gru_state_chain", "shared_layer",
              "masking_bidirectional", "merged_masks", "bidirectional_pair", "masked_add", "bilstm_classifier",
              "concat_partly_masked", "concat_time", "seq2seq_decoder", "subtract_flatten",
              "bidirectional_halves_masked", "bilstm_average_pooled", "normalized_pooled"]
RK_MADE = KERAS_MADE + ["branch_order"]


def _arrays(data, prefix):
    return [data[k] for k in sorted(data.files) if k.startswith(prefix) and k[len(prefix):].isdigit()]


def _predict(model, xs):
    ys = model.predict(xs if len(xs) > 1 else xs[0])
    return [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


@pytest.mark.parametrize("name", KERAS_MADE)
def test_a_keras_functional_file_computes_what_keras_computed(name):
    data = np.load(DATA / f"{name}.npz", allow_pickle=False)
    model = rk.load_model(DATA / f"{name}.keras")
    assert isinstance(model, rk.Model)
    ys = _predict(model, _arrays(data, "x_"))
    assert len(ys) == len(_arrays(data, "y_"))
    for y, expected in zip(ys, _arrays(data, "y_")):
        np.testing.assert_allclose(y, expected, atol=1e-5)
    assert "keras" not in sys.modules


@pytest.mark.parametrize("name", RK_MADE)
def test_keras_computed_what_rnnkit_computes(name):
    data = np.load(DATA / f"rk_{name}.npz", allow_pickle=False)
    ys, keras_ys = _arrays(data, "y_"), _arrays(data, "y_keras_")
    assert len(ys) == len(keras_ys) > 0
    for y, k in zip(ys, keras_ys):
        np.testing.assert_allclose(k, y, atol=1e-5)
    for y, expected in zip(_predict(rk.load_model(DATA / f"rk_{name}.keras"), _arrays(data, "x_")), ys):
        np.testing.assert_allclose(y, expected, atol=1e-6)


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json")), archive.read("model.weights.h5")


def _h5_arrays(blob):
    out = {}
    with h5py.File(io.BytesIO(blob), "r") as h5:
        h5.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("name", [*RK_MADE, "mixed_bfloat16"])
def test_the_writer_still_writes_the_checked_files(name, tmp_path):
    """Saving the loaded fixture again gives the config and arrays Keras was shown."""
    rk.load_model(DATA / f"rk_{name}.keras").save(tmp_path / "again.keras")
    (config, weights), (fixture_config, fixture_weights) = _members(tmp_path / "again.keras"), _members(DATA / f"rk_{name}.keras")
    assert config == fixture_config
    got, expected = _h5_arrays(weights), _h5_arrays(fixture_weights)
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    enc_in, dec_in = rk.Input((None, 3), name="enc_in"), rk.Input((None, 2), name="dec_in")
    _, h, c = rk.LSTM(4, return_state=True, name="encoder")(enc_in)
    seq, h2, _ = rk.LSTM(4, return_sequences=True, return_state=True, name="decoder")(dec_in, initial_state=[h, c])
    side = rk.Dense(4, name="side")(h2)
    model = rk.Model([enc_in, dec_in], [rk.Dense(3, activation="softmax", name="probs")(seq),
                                        rk.Add(name="add")([h2, side])])
    model.save(tmp_path / "m.keras")
    again = rk.load_model(tmp_path / "m.keras")
    assert [m.name for m in again.layers] == [m.name for m in model.layers]
    xs = [np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32"),
          np.random.default_rng(1).normal(size=(2, 4, 2)).astype("float32")]
    for a, b in zip(model.predict(xs), again.predict(xs)):
        np.testing.assert_array_equal(a, b)


def test_keras_layer_order_is_by_depth():
    """Keras lists a functional model's layers by depth, which names the weight groups: c before a."""
    from rnnkit.keras_save import keras_layer_order

    model = rk.load_model(DATA / "rk_branch_order.keras")
    assert [m.name for m in keras_layer_order(model)] == ["inp", "c", "a", "b", "join"]


def test_save_refuses_what_keras_cannot_hold(tmp_path):
    x = rk.Input((5,))
    model = rk.Model(x, rk.Dense(2)(x))
    with pytest.raises(ValueError, match="ends in .keras"):
        model.save(tmp_path / "m.h5")
    seq = rk.Input((4, 3))
    custom = rk.Model(seq, rk.LSTM(2, activation=torch.sin)(seq))
    with pytest.raises(ValueError, match="custom callable"):
        custom.save(tmp_path / "m.keras")
    pair = rk.Sequential([rk.Bidirectional(rk.LSTM(2, return_sequences=True), merge_mode=None)])
    with pytest.raises(ValueError, match="merge_mode=None \\(two outputs\\), which a Sequential cannot pass on"):
        pair.save(tmp_path / "pair.keras")


# ------------------------------------------------------------------ hostile files


def _tampered(tmp_path, edit, source="two_inputs.keras"):
    dst = tmp_path / "tampered.keras"
    with zipfile.ZipFile(DATA / source) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config["config"])
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


def _layer(cfg, name):
    return next(spec for spec in cfg["layers"] if spec["name"] == name)


def _ref(layer, node=0, index=0, shape=(None, 5)):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(shape), "dtype": "float32", "keras_history": [layer, node, index]}}


def _unknown_class_in_node(cfg):
    _layer(cfg, "head")["inbound_nodes"][0]["args"] = [
        {"module": "evil_pkg", "class_name": "Payload", "config": {}, "registered_name": "evil_pkg>Payload"}]


def _missing_layer(cfg):
    _layer(cfg, "join")["inbound_nodes"][0]["args"][0][0] = _ref("ghost")


def _cycle(cfg):
    _layer(cfg, "rnn")["inbound_nodes"][0]["args"] = [_ref("head", shape=(None, 6, 3))]


def _missing_call(cfg):
    _layer(cfg, "join")["inbound_nodes"][0]["args"][0][0] = _ref("rnn", node=3)


def _unknown_layer(cfg):
    _layer(cfg, "side_dense")["class_name"] = "GaussianNoise"


def _extra_kwarg(cfg):
    _layer(cfg, "rnn")["inbound_nodes"][0]["kwargs"]["constants"] = [_ref("side", shape=(None, 4))]


def _mask_from_a_layer(cfg):
    _layer(cfg, "rnn")["inbound_nodes"][0]["kwargs"]["mask"] = _ref("side", shape=(None, 4))


def _missing_output(cfg):
    cfg["output_layers"] = ["head", 1, 0]


def _nested_model(cfg):
    _layer(cfg, "side_dense")["class_name"] = "Functional"


def _list_as_a_name(cfg):
    _layer(cfg, "side_dense")["config"]["name"] = [None]


def _no_keras_history(cfg):
    _layer(cfg, "head")["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = "join"


@pytest.mark.parametrize(
    "edit, match",
    [
        (_unknown_class_in_node, "inbound_nodes\\[0\\].args\\[0\\]: 'Payload' \\(module='evil_pkg'"),
        (_missing_layer, "names layer 'ghost', which the model's config does not have"),
        (_cycle, "a cycle in inbound_nodes"),
        (_missing_call, "names call 3 of layer 'rnn', which has 1 calls"),
        (_unknown_layer, "layer class 'GaussianNoise' is not supported"),
        (_extra_kwarg, "kwargs.constants: not read"),
        (_mask_from_a_layer, "kwargs.mask: names 'side', which is not the mask rnnkit passes this call \\(none\\)"),
        (_missing_output, "output_layers: \\['head', 1, 0\\] names no tensor"),
        (_nested_model, "layer class 'Functional' is not supported"),
        (_no_keras_history, "keras_history = \\[layer name, node index, tensor index\\]"),
        (_list_as_a_name, "layers\\[\\d\\].config.name: expected a string, got '\\[None\\]'"),
    ],
)
def test_hostile_functional_files_are_refused(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        rk.load_model(_tampered(tmp_path, edit))
    assert "keras" not in sys.modules


def _not_equal_to_one(cfg):
    _layer(cfg, "not_equal")["inbound_nodes"][0]["args"][1] = 1


def _not_equal_elsewhere(cfg):
    _layer(cfg, "not_equal")["module"] = "evil_pkg.ops"


def _op(cfg, class_name, k=0):
    return [spec for spec in cfg["layers"] if spec["class_name"] == class_name and "ops" in spec["module"]][k]


def _masking_value(cfg):
    _op(cfg, "NotEqual")["inbound_nodes"][0]["args"][1] = 1.0  # Masking(0.0) masks zeros, not ones


def _any_axis(cfg):
    _op(cfg, "Any")["config"]["axis"] = 1


def _mask_before_any(cfg):  # the call names NotEqual's (batch, time, features) output, not Any's
    _layer(cfg, "bi_lstm")["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"][0] = "not_equal"


def _unknown_op(cfg):
    _op(cfg, "Any").update(class_name="All", registered_name="All")


def _op_kwargs(cfg):
    _op(cfg, "Any")["inbound_nodes"][0]["kwargs"] = {"where": 1}


def _op_config(cfg):
    _op(cfg, "Any")["config"]["initial"] = 1


def _op_reads_a_later_op(cfg):
    _op(cfg, "NotEqual")["inbound_nodes"][0]["args"][0] = _ref("any", shape=(None, 6))


def _op_reads_an_unknown_layer(cfg):
    _op(cfg, "NotEqual")["inbound_nodes"][0]["args"][0] = _ref("ghost", shape=(None, 6, 2))


def _op_compares_with_a_string(cfg):
    _op(cfg, "NotEqual")["inbound_nodes"][0]["args"][1] = "0"


def _mask_on_a_layer_output(cfg):  # Dense passes Masking's mask on; one read from Dense's output is another mask
    _op(cfg, "NotEqual")["inbound_nodes"][0]["args"][0] = _ref("dense", shape=(None, 6, 3))


@pytest.mark.parametrize(
    "edit, source, match",
    [
        (_not_equal_to_one, "embedding_mask", "kwargs.mask: names 'not_equal', which is not the mask rnnkit passes "
                                              "this call \\(the mask of layer 'embed'\\)"),
        (_not_equal_elsewhere, "embedding_mask", "op 'NotEqual' \\(module='evil_pkg.ops'"),
        (_masking_value, "masking_bidirectional", "names 'any', which is not the mask rnnkit passes this call"),
        (_any_axis, "masking_bidirectional", "names 'any', which is not the mask rnnkit passes this call"),
        (_mask_before_any, "masking_bidirectional", "names 'not_equal', which is not the mask rnnkit passes"),
        (_unknown_op, "masking_bidirectional", "op 'All' \\(module='keras.src.ops.numpy', registered_name='All'\\) "
                                               "is not read"),
        (_op_kwargs, "masking_bidirectional", "an op is called once, with args and no kwargs"),
        (_op_config, "masking_bidirectional", "op Any takes only \\['name', 'axis', 'keepdims'\\]"),
        (_op_reads_a_later_op, "masking_bidirectional", "reads \\['any', 0, 0\\], which is no tensor of a layer "
                                                       "or op listed before this op"),
        (_op_reads_an_unknown_layer, "masking_bidirectional", "reads \\['ghost', 0, 0\\]"),
        (_op_compares_with_a_string, "masking_bidirectional", "NotEqual compares with a number here, got '0'"),
        (_mask_on_a_layer_output, "masking_bidirectional", "is no tensor of a layer or op listed before this op"),
    ],
)
def test_only_the_masks_rnnkit_computes_are_read(tmp_path, edit, source, match):
    """Keras records masks as ops; each must be the very mask rnnkit passes the call, or the file is refused."""
    with pytest.raises(ValueError, match=match):
        rk.load_model(_tampered(tmp_path, edit, source=f"{source}.keras"))
    assert "keras" not in sys.modules


def _zeros_like_int(cfg):
    _op(cfg, "ZerosLike")["config"]["dtype"] = "int32"


def _ones_for_a_masked_input(cfg):  # OnesLike(x) stands for "no mask"; x has one
    zeros = _op(cfg, "ZerosLike")
    zeros.update(class_name="OnesLike", registered_name="OnesLike")


def _or_of_one_mask(cfg):  # LogicalOr(m_a, m_a): b's mask is dropped
    _op(cfg, "LogicalOr")["inbound_nodes"][0]["args"][1] = _op(cfg, "LogicalOr")["inbound_nodes"][0]["args"][0]


def _concat_on_time(cfg):
    _op(cfg, "Concatenate")["config"]["axis"] = 1


@pytest.mark.parametrize(
    "edit, source, match",
    [
        (_zeros_like_int, "merged_masks", "a mask's ZerosLike is bool, got 'int32'"),
        (_ones_for_a_masked_input, "concat_partly_masked", "names 'any_1', which is not the mask rnnkit passes"),
        (_concat_on_time, "merged_masks", "names 'any_1', which is not the mask rnnkit passes"),
        (_or_of_one_mask, "masked_add", "names 'logical_or_2', which is not the mask rnnkit passes this call "
                                        "\\(the mask of layer 'add'\\)"),
    ],
)
def test_merged_masks_must_be_keras_merges(tmp_path, edit, source, match):
    with pytest.raises(ValueError, match=match):
        rk.load_model(_tampered(tmp_path, edit, source=f"{source}.keras"))


def test_a_call_without_its_recorded_mask_gets_the_one_keras_would_pass(tmp_path):
    """Keras fills in a missing mask from the input's own, as rnnkit does: the numbers stay Keras's."""
    def drop(cfg):
        for name in ("bi_lstm", "bi_gru"):
            del _layer(cfg, name)["inbound_nodes"][0]["kwargs"]["mask"]

    data = np.load(DATA / "masking_bidirectional.npz", allow_pickle=False)
    model = rk.load_model(_tampered(tmp_path, drop, source="masking_bidirectional.keras"))
    np.testing.assert_allclose(_predict(model, _arrays(data, "x_"))[0], data["y_0"], atol=1e-5)


def test_bidirectional_halves_as_two_outputs():
    """Bidirectional(merge_mode=None) in a functional file: [forward, backward], each going on by itself."""
    model = rk.load_model(DATA / "bidirectional_pair.keras")
    assert model.get_layer("bi").merge_mode is None and len(model.outputs) == 2
    data = np.load(DATA / "bidirectional_pair.npz", allow_pickle=False)
    x = data["x_0"]
    forward, head = _predict(model, [x])
    assert np.all(forward[x.any(-1) == 0] == 0)  # masked steps give zeros, as in Keras


def test_the_graph_size_is_bounded():
    from rnnkit.interop.keras_file import model_from_config

    config, _ = _members(DATA / "two_inputs.keras")  # 6 layers, 4 calls
    with pytest.raises(ValueError, match="10 layers and calls, more than Limits.max_tensors=8"):
        model_from_config(config, limits=rk.files.Limits(max_tensors=8))


def test_weights_load_into_a_functional_model_built_in_code():
    """load_keras(path, model=...) matches the file's groups to the layers in Keras's order."""
    from rnnkit.interop import load_keras

    enc_in, dec_in = rk.Input((None, 3)), rk.Input((None, 2))
    _, h, c = rk.LSTM(4, return_state=True)(enc_in)
    seq, h2, c2 = rk.LSTM(4, return_sequences=True, return_state=True)(dec_in, initial_state=[h, c])
    model = rk.Model([enc_in, dec_in], [rk.Dense(3, activation="softmax")(seq), h2, c2])
    load_keras(DATA / "encoder_decoder.keras", model=model)
    data = np.load(DATA / "encoder_decoder.npz", allow_pickle=False)
    for y, expected in zip(_predict(model, _arrays(data, "x_")), _arrays(data, "y_")):
        np.testing.assert_allclose(y, expected, atol=1e-5)
    x = rk.Input((None, 3))
    with pytest.raises(ValueError, match="weights: the file has weights under"):
        load_keras(DATA / "encoder_decoder.keras", model=rk.Model(x, rk.LSTM(4)(x)))


# ------------------------------------------------------------------ dtype policies

#: bfloat16 keeps 8 significant bits: 2**-8 = 3.9e-3 relative, on softmax probabilities of at most 1. Keras (TF on
#: the CPU) and rnnkit (torch autocast) round at different places; they differed by 1.5e-3.
BF16_TOL = 5e-3


def test_a_keras_mixed_bfloat16_file_computes_what_keras_computed():
    data = np.load(DATA / "mixed_bfloat16.npz", allow_pickle=False)
    model = rk.load_model(DATA / "mixed_bfloat16.keras")
    assert {m.name: m.dtype_policy.name for m in model.layers} == {
        "inp": "float32", "lstm": "mixed_bfloat16", "norm": "mixed_bfloat16", "avg": "mixed_bfloat16", "head": "float32"}
    assert model.get_layer("lstm").cell.kernel.dtype == torch.float32  # weights in float32, computed in bfloat16
    x = torch.from_numpy(data["x_0"])
    inner = rk.Model(model.inputs, model.get_layer("avg").output)
    with torch.no_grad():
        assert inner(x).dtype == torch.bfloat16 and model(x).dtype == torch.float32
    np.testing.assert_allclose(model.predict(data["x_0"]), data["y_0"], atol=BF16_TOL)


def test_keras_computed_what_rnnkit_computes_in_mixed_bfloat16():
    data = np.load(DATA / "rk_mixed_bfloat16.npz", allow_pickle=False)
    np.testing.assert_allclose(data["y_keras_0"], data["y_0"], atol=BF16_TOL)
    np.testing.assert_allclose(rk.load_model(DATA / "rk_mixed_bfloat16.keras").predict(data["x_0"]), data["y_0"],
                               atol=1e-6)


def test_float32_files_load_without_policies():
    """A float32 Keras file gives layers as rnnkit makes them (no policy: they follow their inputs' dtype)."""
    model = rk.load_model(DATA / "bilstm_average_pooled.keras")
    assert all(m._policy is None for m in model.modules() if isinstance(m, rk.Layer))


def _policy_of(layer, name=None, class_name="DTypePolicy"):
    def edit(cfg):
        _layer(cfg, layer)["config"]["dtype"] = {"module": "keras", "class_name": class_name,
                                                 "config": {"name": name}, "registered_name": None}
    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (_policy_of("lstm", "bfloat16"), "layer 'lstm' has the dtype policy 'bfloat16', which rnnkit does not have"),
        (_policy_of("norm", "float16"), "layer 'norm' has the dtype policy 'float16', which rnnkit does not have"),
        (_policy_of("head", "int8_from_float32", "QuantizedDTypePolicy"),
         "layer 'head' has the dtype policy 'QuantizedDTypePolicy'; rnnkit reads only DTypePolicy"),
    ],
)
def test_policies_rnnkit_lacks_are_refused(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        rk.load_model(_tampered(tmp_path, edit, source="mixed_bfloat16.keras"))


# ------------------------------------------------------------------ the companion layers' configs


def _scale_per_channel(cfg):
    _layer(cfg, "rescale")["config"]["scale"] = [1.0, 2.0, 3.0, 4.0]


def _rms_scaling(cfg):
    _layer(cfg, "norm")["config"]["rms_scaling"] = True


def _pooling_format(cfg):
    _layer(cfg, "avg")["config"]["data_format"] = "channels_middle"


def _unknown_activation(cfg):
    _layer(cfg, "act")["config"]["activation"] = "mish"


def _keepdims_as_int(cfg):
    _layer(cfg, "max")["config"]["keepdims"] = 1


@pytest.mark.parametrize(
    "edit, match",
    [
        (_scale_per_channel, "layers\\[\\d+\\].scale: expected float, got \\[1.0, 2.0"),
        (_rms_scaling, "rms_scaling: True is not supported"),
        (_pooling_format, "data_format: expected one of \\('channels_last', 'channels_first'\\)"),
        (_unknown_activation, "activation 'mish' is not supported"),
        (_keepdims_as_int, "keepdims: expected bool, got 1"),
    ],
)
def test_companion_configs_are_checked(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        rk.load_model(_tampered(tmp_path, edit, source="normalized_pooled.keras"))


def test_a_layer_normalization_over_huge_axes_is_refused_before_it_is_built(tmp_path):
    def huge(cfg):
        for node in _layer(cfg, "norm_all")["inbound_nodes"]:
            node["args"][0]["config"]["shape"] = [None, 100_000, 2**20]

    with pytest.raises(ValueError, match="norm_all.*more than Limits.max_size"):
        rk.load_model(_tampered(tmp_path, huge, source="normalized_pooled.keras"))


def test_policies_written_as_bare_names_are_read(tmp_path):
    """Keras 3.0-3.3 wrote a layer's policy as its name alone ("dtype": "mixed_bfloat16")."""
    def bare(cfg):
        for spec in cfg["layers"]:
            policy = spec["config"].get("dtype")
            if isinstance(policy, dict):
                spec["config"]["dtype"] = policy["config"]["name"]

    model = rk.load_model(_tampered(tmp_path, bare, source="mixed_bfloat16.keras"))
    assert model.get_layer("lstm").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("head").dtype_policy.name == "float32"
    data = np.load(DATA / "mixed_bfloat16.npz", allow_pickle=False)
    np.testing.assert_allclose(model.predict(data["x_0"]), data["y_0"], atol=BF16_TOL)
