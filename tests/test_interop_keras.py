"""load_keras: Keras 3 files read as data, checked against the outputs Keras computed.

tests/data/keras/ holds small .keras models and, for each, a fixed input x
and Keras's predict(x) as y (scripts/make_keras_fixtures.py regenerates
them with Keras installed; these tests need no Keras).
"""

import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk

h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install 'rnnkit[interop]')")

from rnnkit.interop import load_keras  # noqa: E402 - after the skip

DATA = Path(__file__).parent / "data" / "keras"
MODELS = ["simple_rnn", "gru_reset_after", "gru_reset_before", "lstm_bidirectional_masked", "embedding_lstm",
          "nested_sequential", "lstm_flatten", "embedding_pooled", "gru_max_pooled"]
TOL = 1e-5


def expected(name):
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as d:
        return d["x"], d["y"]


def predict(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x) if x.dtype.kind == "f" else torch.from_numpy(x).long()).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_load_keras_matches_keras(name):
    model = load_keras(DATA / f"{name}.keras")
    assert isinstance(model, rk.Sequential) and not model.training
    x, y = expected(name)
    err = np.abs(predict(model, x) - y).max()
    assert err <= TOL, f"{name}: max abs error {err:.3g} against Keras"


def test_loaded_structure_follows_the_config():
    model = load_keras(DATA / "gru_reset_before.keras")
    gru1, gru2, dense = model.layers
    assert [type(layer) for layer in model.layers] == [rk.GRU, rk.GRU, rk.Dense]
    assert not gru1.cell.reset_after and gru1.return_sequences and gru2.go_backwards and not gru2.cell.use_bias
    with zipfile.ZipFile(DATA / "gru_reset_before.keras") as z:
        names = [spec["config"]["name"] for spec in json.loads(z.read("config.json"))["config"]["layers"][1:]]
    assert [layer.name for layer in model.layers] == names and dense.units == 1  # Keras's layer names are kept
    bi = load_keras(DATA / "lstm_bidirectional_masked.keras")
    assert [type(layer).__name__ for layer in bi.layers] == ["Masking", "Bidirectional", "Bidirectional", "Dropout", "Dense"]
    assert bi.layers[2].merge_mode == "ave" and bi.layers[3].rate == 0.5
    nested = load_keras(DATA / "nested_sequential.keras")  # the inner Sequential is inlined
    assert [type(layer) for layer in nested.layers] == [rk.LSTM, rk.Dense, rk.LSTM]


def test_any_length_and_batch_when_the_file_says_none():
    # gru_reset_after was saved with Input((None, 3)); a prefix of the input gives a prefix of the output.
    model = load_keras(DATA / "gru_reset_after.keras")
    x, y = expected("gru_reset_after")
    assert np.abs(predict(model, x[:1, :4]) - y[:1, :4]).max() <= TOL


def test_weights_h5_into_a_model_built_in_code():
    model = rk.Sequential([
        rk.SimpleRNN(4, return_sequences=True),
        rk.SimpleRNN(3, activation="relu", go_backwards=True),
        rk.Dense(2, activation="tanh"),
    ], input_shape=(6, 3))
    assert load_keras(DATA / "simple_rnn.weights.h5", model=model) is model
    x, y = expected("simple_rnn")
    assert np.abs(predict(model, x) - y).max() <= TOL
    # The archive's weights load into a given model the same way.
    again = rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3, activation="relu", go_backwards=True),
                           rk.Dense(2, activation="tanh")], input_shape=(6, 3))
    load_keras(DATA / "simple_rnn.keras", model=again)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_that_do_not_fit_the_model():
    h5 = DATA / "simple_rnn.weights.h5"
    with pytest.raises(ValueError, match=r"layers/simple_rnn/cell/vars.*expects shape \(3, 5\)"):
        load_keras(h5, model=rk.Sequential([rk.SimpleRNN(5, return_sequences=True), rk.SimpleRNN(3), rk.Dense(2)],
                                           input_shape=(6, 3)))
    with pytest.raises(ValueError, match="no layer for"):  # the file's Dense is left over
        load_keras(h5, model=rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3)], input_shape=(6, 3)))
    with pytest.raises(ValueError, match="not built yet"):
        load_keras(h5, model=rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3), rk.Dense(2)]))
    with pytest.raises(ValueError, match="no group 'layers/lstm/cell/vars'"):
        load_keras(h5, model=rk.Sequential([rk.LSTM(4, input_size=3)]))
    with pytest.raises(ValueError, match="pass the rnnkit model"):
        load_keras(h5)
    with pytest.raises(ValueError, match="no Keras counterpart"):
        load_keras(h5, model=rk.Sequential([torch.nn.Linear(3, 3)]))


@pytest.mark.parametrize(
    "name, match",
    [
        ("refused_lambda", "layers\\[1\\]: layer class 'Lambda' is not supported"),
        ("refused_module", "'SimpleRNN' \\(module='evil_pkg.layers', registered_name='evil_pkg>SimpleRNN'\\)"),
        ("refused_activation", "activation: 'function' \\(module='builtins'"),
    ],
)
def test_refuses_what_it_does_not_know(name, match):
    with pytest.raises(ValueError, match=match):
        load_keras(DATA / f"{name}.keras")
    assert "keras" not in sys.modules  # nothing was imported to find out


def test_reads_a_functional_model_of_known_layers():
    """Keras's functional Input -> LSTM -> Dense loads as an rk.Model (it was refused before Model existed)."""
    model = load_keras(DATA / "functional_known_layers.keras")
    assert isinstance(model, rk.Model)
    assert [type(m).__name__ for m in model.layers] == ["InputLayer", "LSTM", "Dense"]
    assert model(torch.zeros(2, 6, 3)).shape == (2, 1)


def test_refuses_a_functional_model_with_an_unknown_layer(tmp_path):
    def edit(data):
        config = json.loads(data)
        config["config"]["layers"][1]["class_name"] = "GaussianNoise"
        return json.dumps(config).encode()

    with pytest.raises(ValueError, match="layers\\[1\\]: layer class 'GaussianNoise' is not supported"):
        load_keras(_tampered(tmp_path, edit, source="functional_known_layers.keras"))


def _tampered(tmp_path, edit, source="simple_rnn.keras", member="config.json"):
    """A copy of a fixture with one archive member rewritten by ``edit(bytes) -> bytes``."""
    dst = tmp_path / "tampered.keras"
    with zipfile.ZipFile(DATA / source) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, edit(data) if item.filename == member else data)
    return dst


def _edit_config(change):
    def edit(data):
        config = json.loads(data)
        change(config)
        return json.dumps(config).encode()

    return edit


def _set(path, value):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


@pytest.mark.parametrize(
    "change, match",
    [
        (_set(["class_name"], "Functional"), "layers\\[0\\].name: expected a layer name"),  # a Sequential's layers
        (_set(["module"], "keras.src.models.functional"), "only Keras's own layers"),
        (_set(["config", "layers", 1, "class_name"], "TFSMLayer"), "'TFSMLayer' is not supported"),
        (_set(["config", "layers", 1, "config", "units"], "4"), "units: expected int, got '4'"),
        (_set(["config", "layers", 1, "config", "activation"], "my_act"), "activation 'my_act' is not supported"),
        (_set(["config", "layers", 3, "config", "kernel_initializer", "registered_name"], "Custom>Init"), "Custom>Init"),
        (_set(["config", "layers", 2, "class_name"], "LSTM"), "no group 'layers/lstm/cell/vars'"),
        (_set(["config", "layers", 0], {"module": "keras.layers", "class_name": "Lambda", "config": {}}), "'Lambda'"),
    ],
)
def test_tampered_configs_are_refused(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        load_keras(_tampered(tmp_path, _edit_config(change)))


def test_bidirectional_wrapping_a_lambda_is_refused(tmp_path):
    lam = {"module": "keras.layers", "class_name": "Lambda", "config": {"function": {"class_name": "__lambda__"}}}
    path = _tampered(tmp_path, _edit_config(_set(["config", "layers", 2, "config", "layer"], lam)),
                     source="lstm_bidirectional_masked.keras")
    with pytest.raises(ValueError, match="layer class 'Lambda' is not supported"):
        load_keras(path)


def test_a_sequential_cannot_pass_two_bidirectional_halves_on(tmp_path):
    path = _tampered(tmp_path, _edit_config(_set(["config", "layers", 2, "config", "merge_mode"], None)),
                     source="lstm_bidirectional_masked.keras")
    with pytest.raises(ValueError, match="merge_mode: expected 'concat', 'sum', 'mul', 'ave', got None; null returns "
                                         "two tensors, which a Sequential cannot pass on"):
        load_keras(path)


def test_broken_archives(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_keras(_tampered(tmp_path, lambda data: data[:-5]))
    with pytest.raises(ValueError, match="Keras 2.15.0"):
        load_keras(_tampered(tmp_path, lambda data: b'{"keras_version": "2.15.0"}', member="metadata.json"))
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        load_keras(_tampered(tmp_path, lambda data: b"not hdf5", member="model.weights.h5"))
    no_weights = tmp_path / "no_weights.keras"
    with zipfile.ZipFile(no_weights, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="has no model.weights.h5"):
        load_keras(no_weights)
    with pytest.raises(ValueError, match="expected a .keras archive or a .weights.h5 file"):
        load_keras(DATA / "simple_rnn.npz")


def test_links_out_of_the_weights_file_are_refused(tmp_path):
    # An HDF5 link can point into another file on disk; the loader reads only data stored in the file itself.
    h5 = tmp_path / "linked.weights.h5"
    shutil.copy(DATA / "simple_rnn.weights.h5", h5)
    with h5py.File(h5, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/other.h5", "/data")
    model = rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3), rk.Dense(2)], input_shape=(6, 3))
    with pytest.raises(ValueError, match="vars/0: is a ExternalLink"):
        load_keras(h5, model=model)


def test_clear_error_without_h5py(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[interop\]'"):
        load_keras(DATA / "simple_rnn.keras")
