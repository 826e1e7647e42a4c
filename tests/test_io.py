"""Run directories: save -> load gives identical predictions; resume equals an uninterrupted run; bad files fail clearly."""

import json
import os
import signal

import numpy as np
import pytest
import safetensors.torch
import torch

import rnnkit as rk
from rnnkit import checkpoint, files, serialization


def gru_model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return rk.Sequential([
        rk.GRU(5, return_sequences=True, dropout=dropout, recurrent_dropout=dropout, input_shape=(6, 3)),
        rk.LSTM(4),
        rk.Dropout(dropout),
        rk.Dense(3, activation="softmax"),
    ])


def data(n=24):
    rng = np.random.RandomState(1)
    x = rng.randn(n, 6, 3).astype(np.float32)
    return x, (x[:, :, 0].mean(1) > 0).astype(np.int64) + (x[:, -1, 2] > 0.5)


@pytest.mark.parametrize("build", [
    lambda: gru_model(),
    lambda: rk.Sequential([rk.Bidirectional(rk.SimpleRNN(3, return_sequences=True), input_shape=(6, 3)),
                           rk.TimeDistributed(rk.Dense(2))]),
    lambda: rk.Sequential([rk.Embedding(7, 4, input_shape=(6,)), rk.LSTM(3), rk.Dense(2)]),
])
def test_save_load_gives_identical_predictions(tmp_path, build):
    m = build()
    x = np.random.RandomState(0).randint(0, 7, (5, 6)) if isinstance(m.layers[0], rk.Embedding) else data(5)[0]
    serialization.save_model(m, tmp_path / "run")
    loaded = serialization.load_model(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["format"] == "rnnkit-run" and cfg["format_version"] == serialization.FORMAT_VERSION
    names = safetensors.torch.load_file(tmp_path / "run" / "model.safetensors").keys()
    assert set(names) == set(m.state_dict())


def test_compile_settings_travel_with_the_model(tmp_path):
    m = gru_model()
    m.compile("rmsprop", rk.losses.SparseCategoricalCrossentropy(from_logits=False), ["accuracy"],
              clipnorm=1.0, learning_rate=0.01)
    serialization.save_model(m, tmp_path / "run")
    loaded = serialization.load_model(tmp_path / "run")
    assert loaded.optimizer_name == "rmsprop" and loaded.metric_names == ["accuracy"] and loaded.clipnorm == 1.0
    assert loaded.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    x, y = data()
    assert loaded.evaluate(x, y) == m.evaluate(x, y)


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    x, y = data()

    def fresh():
        m = gru_model(seed=5, dropout=0.3)  # dropout: the RNG state must be restored too
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        return m

    straight = fresh()
    h_straight = straight.fit(x, y, epochs=4, batch_size=5, validation_split=0.2, verbose=0)

    first = fresh()
    h1 = first.fit(x, y, epochs=2, batch_size=5, validation_split=0.2, verbose=0)
    checkpoint.save_checkpoint(tmp_path / "run", first, epoch=2, history=h1.history)
    torch.manual_seed(123)  # a new process would start from other RNG states
    np.random.seed(123)
    resumed, epoch, history, _ = checkpoint.load_checkpoint(tmp_path / "run")
    assert epoch == 2 and history == h1.history
    h2 = resumed.fit(x, y, epochs=4, batch_size=5, validation_split=0.2, initial_epoch=epoch, verbose=0)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert h1.history["loss"] + h2.history["loss"] == h_straight.history["loss"]


def test_optimizer_state_round_trips_as_safetensors_and_json(tmp_path):
    m = gru_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(*data(), epochs=1, verbose=0)
    checkpoint.save_checkpoint(tmp_path / "run", m, epoch=1)
    doc = json.loads((tmp_path / "run" / "optimizer.json").read_text())
    assert doc["optimizer"] == "Adam" and doc["param_groups"][0]["betas"] == [0.9, 0.999]
    loaded, *_ = checkpoint.load_checkpoint(tmp_path / "run")
    a, b = m.optimizer.state_dict(), loaded.optimizer.state_dict()
    for idx, st in a["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][idx][k]))


def test_bad_tensors_are_named(tmp_path):
    m = gru_model()
    serialization.save_model(m, tmp_path / "run")
    path = tmp_path / "run" / "model.safetensors"
    good = safetensors.torch.load_file(path)
    key = next(iter(good))

    def expect(tensors, match):
        safetensors.torch.save_file(tensors, path)
        with pytest.raises(ValueError, match=match):
            serialization.load_model(tmp_path / "run")

    expect({**good, key: torch.zeros(2, 2)}, f"{key}.*shape")
    expect({**good, key: good[key].double()}, f"{key}.*dtype")
    expect({k: v for k, v in good.items() if k != key}, f"missing \\['{key}'\\]")
    expect({**good, "extra": torch.zeros(1)}, "unexpected \\['extra'\\]")
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        serialization.load_model(tmp_path / "run")


def test_bad_configs_are_clear_errors(tmp_path):
    m = gru_model()
    run = tmp_path / "run"
    serialization.save_model(m, run)
    cfg_path = run / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        serialization.load_model(run)
    bad = json.loads(json.dumps(cfg))
    bad["model"]["layers"][0]["class_name"] = "os.system"
    cfg_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown layer class 'os.system'"):
        serialization.load_model(run)
    cfg_path.write_text("{ truncated")
    with pytest.raises(ValueError, match="not readable JSON"):
        serialization.load_model(run)
    with pytest.raises(ValueError, match="does not exist"):
        serialization.load_model(tmp_path / "nowhere")


def test_mixed_epochs_are_detected(tmp_path):
    m = gru_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    checkpoint.save_checkpoint(tmp_path / "a", m, epoch=1)
    checkpoint.save_checkpoint(tmp_path / "b", m, epoch=2)
    os.replace(tmp_path / "b" / "optimizer.safetensors", tmp_path / "a" / "optimizer.safetensors")
    with pytest.raises(ValueError, match="different epochs"):
        checkpoint.load_checkpoint(tmp_path / "a")


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    files.write_json(target, {"v": 1})

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        files.write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_leftovers_of_a_killed_writer_are_cleaned(tmp_path):
    m = gru_model()
    run = tmp_path / "run"
    serialization.save_model(m, run)
    (run / ".model.safetensors.tmp-deadbeef").write_bytes(b"half")
    serialization.save_model(m, run)
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]


def test_ctrl_c_waits_for_the_block_to_finish():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with files.deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append(True)
    assert done == [True]


def test_atomic_write_replaces_whole_file_and_clears_a_killed_writers_leftovers(tmp_path):
    from rnnkit.files import atomic_write

    target = tmp_path / "model.onnx"
    stale = tmp_path / ".model.onnx.tmp-deadbeef"  # what a writer killed before its rename leaves
    stale.write_bytes(b"half")
    other = tmp_path / ".other.bin.tmp-deadbeef"  # another file's temporary: not ours to delete
    other.write_bytes(b"x")
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.bin.tmp-deadbeef", "model.onnx"]


def test_a_flag_spelled_as_a_number_is_refused():
    """return_sequences: 1 would load a different model than the one saved; a file must say true or false."""
    from rnnkit.layers import deserialize, serialize

    spec = serialize(rk.LSTM(3, input_size=2))
    spec["config"]["return_sequences"] = 1
    with pytest.raises(ValueError, match=r"LSTM\.return_sequences: expected true or false, got 1"):
        deserialize(spec)
