"""Functional models against Keras 3: the same graph, Keras's weights copied in, Keras's outputs to 1e-5.

The models are written once against Keras's names in scripts/make_functional_fixtures.py; that script
built them with Keras (3.15.1, TensorFlow backend) and stored inputs, weights and outputs in
tests/data/keras_functional/. Here the same functions build them with rnnkit in place of Keras.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "keras_functional"

_spec = importlib.util.spec_from_file_location("make_functional_fixtures", ROOT / "scripts" / "make_functional_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


def load(name):
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as d:
        count = lambda prefix: sum(k.startswith(prefix) for k in d.files)  # noqa: E731
        xs = [d[f"x_{i}"] for i in range(count("x_"))]
        ws = [d[f"w_{i:03d}"] for i in range(count("w_"))]
        ys = [d[f"y_{i}"] for i in range(count("y_"))]
        return xs, ws, [str(n) for n in d["layer_names"]], [int(c) for c in d["layer_counts"]], ys


def keras_model_in_rnnkit(name, programs=fixtures.MODELS):
    """The fixture's model built with rnnkit (its program in ``programs``), Keras's weights set layer by layer
    (found by name)."""
    xs, ws, names, counts, ys = load(name)
    model = programs[name][0](rk)
    start = 0
    for layer_name, n in zip(names, counts):
        model.get_layer(layer_name).set_weights(ws[start:start + n])
        start += n
    assert start == len(ws) == len(model.get_weights())
    return model.eval(), xs, ys


@pytest.mark.parametrize("name", sorted(fixtures.MODELS))
def test_outputs_match_keras(name):
    model, xs, ys = keras_model_in_rnnkit(name)
    with torch.no_grad():
        out = model([torch.from_numpy(x) for x in xs] if len(xs) > 1 else torch.from_numpy(xs[0]))
    outs = out if isinstance(out, list) else [out]
    assert len(outs) == len(ys)
    for got, want in zip(outs, ys):
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(fixtures.MODELS))
def test_predict_and_config_round_trip_match_keras(name):
    """``predict`` (numpy in and out) and a model rebuilt from its JSON-able config give Keras's numbers too."""
    model, xs, ys = keras_model_in_rnnkit(name)
    rebuilt = rk.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    for m in (model, rebuilt):
        pred = m.predict(xs if len(xs) > 1 else xs[0])
        preds = pred if isinstance(pred, list) else [pred]
        for got, want in zip(preds, ys):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["encoder_decoder", "masking_bidirectional", "merged_masks"])
def test_save_load_round_trip_matches_keras(name, tmp_path):
    """``rk.save_model`` / ``rk.load_model`` (a run directory) keep the graph, the weights and so Keras's numbers."""
    model, xs, ys = keras_model_in_rnnkit(name)
    rk.save_model(model, tmp_path / name)
    loaded = rk.load_model(tmp_path / name)
    assert isinstance(loaded, rk.Model) and [m.name for m in loaded.layers] == [m.name for m in model.layers]
    with torch.no_grad():
        out = loaded([torch.from_numpy(x) for x in xs] if len(xs) > 1 else torch.from_numpy(xs[0]))
    for got, want in zip(out if isinstance(out, list) else [out], ys):
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


def test_saved_compile_settings_of_a_one_output_model(tmp_path):
    model, xs, ys = keras_model_in_rnnkit("two_inputs")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], learning_rate=0.01)
    rk.save_model(model, tmp_path / "run")
    loaded = rk.load_model(tmp_path / "run")
    y = np.array([0, 1, 2, 0])
    assert loaded.evaluate(xs, y, return_dict=True) == model.evaluate(xs, y, return_dict=True)
    assert loaded.optimizer_name == "adam" and loaded.optimizer.param_groups[0]["lr"] == 0.01


def test_a_functional_config_with_a_huge_input_is_refused(tmp_path):
    model, _, _ = keras_model_in_rnnkit("two_inputs")
    rk.save_model(model, tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    config = json.loads(path.read_text())
    config["model"]["layers"][0]["config"]["batch_shape"] = [None, 10**9, 10**9]
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="larger than a loaded model may trace"):
        rk.load_model(tmp_path / "run")


@pytest.mark.parametrize("name", sorted(fixtures.MIXED))
def test_mixed_bfloat16_matches_keras_to_bfloat16_precision(name):
    """Layers under "mixed_bfloat16" (the same program, Keras's weights copied in): bfloat16 keeps 8 significant
    bits, 3.9e-3 on probabilities of at most 1; Keras's and rnnkit's outputs differed by 1.5e-3."""
    model, xs, ys = keras_model_in_rnnkit(name, fixtures.MIXED)
    np.testing.assert_allclose(model.predict(xs[0]), ys[0], rtol=0, atol=5e-3)
