"""Task data: the seeds' encodings, MNIST readers on small generated files (and corrupt ones), generation."""

import gzip
import struct

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.data import build_model, hello, load_task, series, text
from rnnkit.data import digits as dg

# ------------------------------------------------------------------ hello


def test_hello_is_the_seeds_one_hot_code():
    task = load_task("hello")
    h, e, l, o = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]  # seed 000 # noqa: E741
    np.testing.assert_array_equal(task.x_train, np.array([[h, e, l, l]], np.float32))
    np.testing.assert_array_equal(hello.one_hot("o"), [o])
    assert hello.decode(np.eye(4)[task.y_train[0]]) == "ello"
    with pytest.raises(ValueError, match="one-hot"):
        hello.one_hot("hex")


# ----------------------------------------------------------------- digits


def test_default_digits_are_8_steps_of_8_features():
    task = load_task("digits")
    assert task.x_train.shape[1:] == (8, 8) and len(task.x_train) + len(task.x_test) == 1797
    assert task.x_train.min() >= 0 and task.x_train.max() <= 1 and set(np.unique(task.y_test)) == set(range(10))


def mnist_arrays(seed=0):
    rng = np.random.RandomState(seed)
    return {
        "x_train": rng.randint(0, 256, (6, 28, 28)).astype(np.uint8),
        "y_train": rng.randint(0, 10, 6).astype(np.uint8),
        "x_test": rng.randint(0, 256, (4, 28, 28)).astype(np.uint8),
        "y_test": rng.randint(0, 10, 4).astype(np.uint8),
    }


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}i", *a.shape) + a.tobytes()


def write_idx_folder(folder, arrays, gz: bool, dotted: bool = False):
    folder.mkdir()
    for key, stem in dg.IDX_FILES.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        raw = idx_bytes(arrays[key])
        (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)


def check_task(task, arrays):
    assert task.x_train.shape == (6, 28, 28) and task.x_train.dtype == np.float32
    np.testing.assert_allclose(task.x_train, arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(task.y_test, arrays["y_test"])


def test_mnist_npz(tmp_path):
    a = mnist_arrays()
    np.savez(tmp_path / "mnist.npz", **a)
    check_task(load_task("digits", data=tmp_path / "mnist.npz"), a)


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (True, True)])
def test_mnist_idx_folder(tmp_path, gz, dotted):
    a = mnist_arrays(1)
    write_idx_folder(tmp_path / "mnist", a, gz, dotted)
    check_task(load_task("digits", data=tmp_path / "mnist"), a)


def test_corrupt_mnist_files_are_clear_errors(tmp_path):
    a = mnist_arrays()
    np.savez(tmp_path / "partial.npz", x_train=a["x_train"], y_train=a["y_train"])
    with pytest.raises(ValueError, match=r"lacks the arrays \['x_test', 'y_test'\]"):
        dg.read_mnist(tmp_path / "partial.npz")
    np.savez(tmp_path / "pickled.npz", **{**a, "y_test": np.array([{"a": 1}] * 4, dtype=object)})
    with pytest.raises(ValueError, match="plain-array"):
        dg.read_mnist(tmp_path / "pickled.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        dg.read_mnist(tmp_path / "junk.npz")
    np.savez(tmp_path / "labels.npz", **{**a, "y_test": np.array([1, 2, 3, 12], np.uint8)})
    with pytest.raises(ValueError, match="labels 0..9"):
        dg.read_mnist(tmp_path / "labels.npz")
    with pytest.raises(ValueError, match="does not exist"):
        dg.read_mnist(tmp_path / "missing.npz")

    write_idx_folder(tmp_path / "idx", a, gz=False)
    f = tmp_path / "idx" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(ValueError, match="holds .* bytes of data"):
        dg.read_mnist(tmp_path / "idx")
    f.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        dg.read_mnist(tmp_path / "idx")
    f.write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(ValueError, match="cannot read IDX"):
        dg.read_mnist(tmp_path / "idx")
    f.unlink()
    with pytest.raises(ValueError, match="no t10k-images-idx3-ubyte"):
        dg.read_mnist(tmp_path / "idx")


# ----------------------------------------------------------------- series


def test_series_windows_follow_the_seed_and_keep_test_time_apart():
    task = load_task("series")
    assert task.x_train.shape[1:] == (20, 1) and task.y_train.shape == task.x_train.shape
    np.testing.assert_array_equal(task.y_train[:, :-1], task.x_train[:, 1:])  # targets: the next value
    t = np.array([1.3])
    np.testing.assert_allclose(series.windows(t)[0][0, :, 0], series.signal(1.3 + np.arange(20) * 0.1), rtol=1e-6)
    assert np.isclose(series.signal(2.0), 2.0 * np.sin(2.0) / 3 + 2 * np.sin(10.0))
    base = float(((task.x_test - task.y_test) ** 2).mean())
    assert series.persistence_mse(task) == pytest.approx(base)


@pytest.mark.parametrize("cell,layers", [("gru", 1), ("lstm", 2), ("simple", 1)])
def test_generation_with_carried_state_equals_rerunning_the_whole_sequence(cell, layers):
    torch.manual_seed(0)
    task = load_task("series", seed=1)
    model = build_model(task, cell, units=7, layers=layers)
    window = task.x_test[:3]
    gen = series.generate(model, window, steps=6)
    # Reference: the full model over window + generated[:-1] predicts each generated value.
    full = model.predict(np.concatenate([window, gen[:, :-1]], axis=1))
    np.testing.assert_allclose(gen, full[:, 19:], rtol=1e-5, atol=1e-6)


def test_generation_rejects_a_model_that_cannot_step():
    task = load_task("series")
    model = build_model(task, "gru", units=4, bidirectional=True)
    with pytest.raises(ValueError, match="cannot run step by step"):
        series.generate(model, task.x_test[0], 3)
    with pytest.raises(ValueError, match="steps"):
        series.generate(build_model(task, "gru", units=4), task.x_test[0], 0)


# ------------------------------------------------------------------- text


def test_stdlib_corpus_is_repeatable_and_plain():
    a, b = text.stdlib_docstrings(5000), text.stdlib_docstrings(5000)
    assert a == b and len(a) == 5000 and a.isascii()


def test_text_file_task_shifts_targets(tmp_path):
    body = "the quick brown fox jumps over the lazy dog. " * 20
    (tmp_path / "t.txt").write_text(body)
    task = load_task("text", data=tmp_path / "t.txt")
    vocab = task.info["vocab"]
    assert "".join(vocab[i] for i in task.x_train[0]) == body[:64]
    np.testing.assert_array_equal(task.y_train[0, :-1], task.x_train[0, 1:])
    (tmp_path / "short.txt").write_text("tiny")
    with pytest.raises(ValueError, match="at least"):
        load_task("text", data=tmp_path / "short.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad" * 40)
    with pytest.raises(ValueError, match="UTF-8"):
        load_task("text", data=tmp_path / "bin.txt")


def test_sampling_follows_the_models_distribution(tmp_path):
    torch.manual_seed(0)
    (tmp_path / "t.txt").write_text("abcabcabd" * 30)
    task = load_task("text", data=tmp_path / "t.txt")
    model = build_model(task, "gru", units=8)
    vocab = task.info["vocab"]
    a = text.sample(model, vocab, prime="ab", length=15, temperature=0.5, seed=3)
    assert a == text.sample(model, vocab, prime="ab", length=15, temperature=0.5, seed=3)
    # At temperature 1e-3 sampling is greedy: compare with argmax of full re-runs (the reference).
    greedy = text.sample(model, vocab, prime="ab", length=5, temperature=1e-3, seed=0)
    seq = [vocab.index(c) for c in "ab"]
    for _ in range(5):
        seq.append(int(model.predict(np.array([seq]))[0, -1].argmax()))
    assert greedy == "".join(vocab[i] for i in seq[2:])
    with pytest.raises(ValueError, match="temperature"):
        text.sample(model, vocab, temperature=1e-4)
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        text.sample(model, vocab, prime="xyz")


# ------------------------------------------------------------------ models


def test_build_model_options():
    task = load_task("hello")
    m = build_model(task, "lstm", units=5, layers=2, bidirectional=True, dropout=0.1)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["Bidirectional", "Bidirectional", "Dropout", "Dense"]
    assert m.predict(task.x_train).shape == (1, 4, 4)
    assert isinstance(m.layers[0].forward_layer, rk.LSTM)
    with pytest.raises(ValueError, match="cell"):
        build_model(task, "transformer")
    with pytest.raises(ValueError, match="unknown task"):
        load_task("mnist")
    with pytest.raises(ValueError, match="takes no --data"):
        load_task("series", data="x")


def test_stepper_steps_stacked_cells_natively_and_equals_the_full_model():
    from rnnkit.data.stepping import ModelStepper

    torch.manual_seed(0)
    model = rk.Sequential([rk.RNN([rk.LSTMCell(6), rk.GRUCell(5)], return_sequences=True, input_shape=(None, 2)),
                           rk.Dense(2)])
    x = np.random.RandomState(0).randn(3, 9, 2).astype(np.float32)
    stepper = ModelStepper(model)
    outs = [stepper.warm_up(x[:, :5])] + [stepper.step(torch.from_numpy(x[:, t])) for t in range(5, 9)]
    np.testing.assert_allclose(np.stack([o.numpy() for o in outs], 1), model.predict(x)[:, 4:], rtol=1e-5, atol=1e-6)
    if rk.kernels.native_available()[0]:
        assert [c.kernel_used for c in stepper._cells[id(model.layers[0])]] == ["native", "native"]
