"""model.save("x.keras") / save_weights / load_weights / rk.load_model on Keras 3 files (issue 12).

The rk_* fixtures were written by rnnkit and loaded by Keras 3.15.1
(scripts/make_keras_save_fixtures.py): their npz holds rnnkit's outputs
``y`` and Keras's ``y_keras`` (from the .keras file) and ``y_keras_weights``
(from the .weights.h5 file), so these tests check without Keras that Keras
computed what rnnkit computes.
"""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk

h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install 'rnnkit[interop]')")

DATA = Path(__file__).parent / "data" / "keras"
RK_FIXTURES = ["simple_rnn", "gru", "lstm_bidirectional_masked", "embedding_lstm", "seq2seq"]


@pytest.mark.parametrize("name", RK_FIXTURES)
def test_keras_computed_what_rnnkit_computes(name):
    data = np.load(DATA / f"rk_{name}.npz", allow_pickle=False)
    np.testing.assert_allclose(data["y_keras"], data["y"], atol=1e-5)
    np.testing.assert_allclose(data["y_keras_weights"], data["y"], atol=1e-5)
    model = rk.load_model(DATA / f"rk_{name}.keras")
    np.testing.assert_allclose(model.predict(data["x"]), data["y"], atol=1e-6)


@pytest.mark.parametrize("name", RK_FIXTURES)
def test_the_writer_still_writes_the_checked_files(name, tmp_path):
    """Saving the loaded fixture again gives the same config and the same arrays (what Keras was shown)."""
    model = rk.load_model(DATA / f"rk_{name}.keras")
    if not model._output_shapes:  # load_keras traces only fixed input shapes; rk_gru's time axis is None
        model.build((None, 3))
    model.save(tmp_path / "again.keras")
    with zipfile.ZipFile(DATA / f"rk_{name}.keras") as a, zipfile.ZipFile(tmp_path / "again.keras") as b:
        assert sorted(a.namelist()) == sorted(b.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(a.read("config.json")) == json.loads(b.read("config.json"))
        assert json.loads(b.read("metadata.json"))["keras_version"].startswith("3.")
    model.save_weights(tmp_path / "again.weights.h5")
    with h5py.File(DATA / f"rk_{name}.weights.h5") as a, h5py.File(tmp_path / "again.weights.h5") as b:
        names_a, names_b = [], []
        a.visit(names_a.append)
        b.visit(names_b.append)
        assert names_a == names_b
        for key in names_a:
            if isinstance(a[key], h5py.Dataset):
                np.testing.assert_array_equal(a[key][()], b[key][()])


def test_load_model_reads_a_keras_made_seq2seq():
    data = np.load(DATA / "keras_seq2seq.npz", allow_pickle=False)
    model = rk.load_model(str(DATA / "keras_seq2seq.keras"))
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "RepeatVector", "LSTM", "TimeDistributed"]
    np.testing.assert_allclose(model.predict(data["x"]), data["y"], atol=1e-5)


def small_model(seed=0):
    torch.manual_seed(seed)
    return rk.Sequential([rk.Input((5, 3)), rk.GRU(4, return_sequences=True), rk.LSTM(3), rk.Dense(2)])


X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")


@pytest.mark.parametrize("filename", ["w.weights.h5", "w.safetensors", "w.keras"])
def test_weights_round_trip(tmp_path, filename):
    src, dst = small_model(0), small_model(1)
    path = tmp_path / filename
    src.save(path) if filename.endswith(".keras") else src.save_weights(path)
    assert not np.allclose(src.predict(X), dst.predict(X))
    dst.load_weights(path)
    np.testing.assert_array_equal(dst.predict(X), src.predict(X))


def test_load_weights_checks_before_copying(tmp_path):
    small_model().save_weights(tmp_path / "w.weights.h5")
    other = rk.Sequential([rk.Input((5, 3)), rk.GRU(5, return_sequences=True), rk.LSTM(3), rk.Dense(2)])
    before = [p.detach().clone() for p in other.parameters()]
    with pytest.raises(ValueError, match="shape"):
        other.load_weights(tmp_path / "w.weights.h5")
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))
    small_model().save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        other.load_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="does not exist"):
        other.load_weights(tmp_path / "missing.weights.h5")


def test_save_refuses_what_keras_cannot_read(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        small_model().save(tmp_path / "model.h5")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        small_model().save_weights(tmp_path / "model.h5")
    with pytest.raises(ValueError, match="input shape"):
        rk.Sequential([rk.LSTM(3)]).save(tmp_path / "lazy.keras")
    custom = rk.Sequential([rk.Input((5, 3)), rk.SimpleRNN(2, activation=lambda t: t * 2)])
    with pytest.raises(ValueError, match="custom activation"):
        custom.save(tmp_path / "custom.keras")
    plain = rk.Sequential([rk.Input((5, 3)), rk.LSTM(3), torch.nn.Linear(3, 2)])
    with pytest.raises(ValueError, match="no Keras counterpart"):
        plain.save(tmp_path / "plain.keras")
    model = small_model()
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="overwrite"):
        model.save(tmp_path / "m.keras", overwrite=False)
    assert not (tmp_path / "custom.keras").exists() and not (tmp_path / "plain.keras").exists()


def test_model_checkpoint_writes_keras_files(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")
    model = small_model()
    model.compile("adam", "mse")
    model.fit(x, np.zeros((8, 2), "float32"), epochs=2, verbose=0,
              callbacks=[rk.ModelCheckpoint(str(tmp_path / "model.{epoch:02d}.keras"), monitor="loss")])
    for epoch in ("01", "02"):
        path = tmp_path / f"model.{epoch}.keras"
        assert path.is_file() and zipfile.is_zipfile(path)
    np.testing.assert_array_equal(rk.load_model(tmp_path / "model.02.keras").predict(x), model.predict(x))


def test_load_model_still_reads_run_directories(tmp_path):
    model = small_model()
    rk.save_model(model, tmp_path / "run")
    np.testing.assert_array_equal(rk.load_model(tmp_path / "run").predict(X), model.predict(X))
