"""Keras's model API on Sequential (issue 12): losses, optimizers, weights, data sources, callbacks, utilities.

Numbers marked "Keras 3.15.1" were computed once by Keras (TensorFlow
backend) on the same inputs; the rest are checked against the formulas
Keras documents.
"""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.losses import get_loss, get_metric
from rnnkit.optimizers import get_optimizer
from rnnkit.utils import pad_sequences


def probe_arrays():
    """The arrays the Keras numbers below were computed on (same generator, same order of draws)."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, size=(4, 3)).astype("float32")
    y = (rng.uniform(size=(4, 3)) > 0.5).astype("float32")
    big_p = rng.normal(size=(4, 5, 3)).astype("float32")
    big_y = rng.normal(size=(4, 5, 3)).astype("float32")
    step_w = rng.uniform(size=(4, 5)).astype("float32")
    return p, y, big_p, big_y, step_w


W = torch.tensor([1.0, 2.0, 0.5, 0.0])


# ------------------------------------------------------------------ losses


def test_binary_crossentropy_and_huber_match_keras():
    p, y, *_ = (torch.from_numpy(a) for a in probe_arrays())
    bce = get_loss("binary_crossentropy")
    assert float(bce(y, p)) == pytest.approx(0.7975918054580688, abs=1e-6)  # Keras 3.15.1
    assert float(bce(y, p, sample_weight=W)) == pytest.approx(0.8205974102020264, abs=1e-6)
    logits = rk.BinaryCrossentropy(from_logits=True)
    assert float(logits(y, p * 6 - 3)) == pytest.approx(0.8185436725616455, abs=1e-6)
    clipped = p.clone()
    clipped[0, 0], clipped[1, 1] = 0.0, 1.0  # clipped to [1e-7, 1 - 1e-7] as Keras does
    assert float(bce(y, clipped)) == pytest.approx(2.0348074436187744, abs=1e-5)
    huber = get_loss("huber")
    assert float(huber(y * 3, p * 2)) == pytest.approx(0.7027849555015564, abs=1e-6)
    assert float(huber(y * 3, p * 2, sample_weight=W)) == pytest.approx(0.5422200560569763, abs=1e-6)
    assert float(get_metric("accuracy", bce)(y, p)) == pytest.approx(0.6666666865348816)


def test_sample_weight_is_keras_sum_over_batch_size():
    _, _, big_p, big_y, step_w = (torch.from_numpy(a) for a in probe_arrays())
    mse = get_loss("mse")
    assert float(mse(big_y, big_p, sample_weight=step_w)) == pytest.approx(0.9230149388313293, abs=1e-6)  # Keras
    # the definition: sum(w * per-sample loss) / count, not / sum(w)
    per_sample = ((big_y - big_p) ** 2).mean(-1).mean(-1)
    assert float(mse(big_y, big_p, sample_weight=W)) == pytest.approx(float((per_sample * W).sum() / 4), rel=1e-6)
    with pytest.raises(ValueError, match="sample_weight"):
        mse(big_y, big_p, sample_weight=torch.ones(3))


def test_binary_loss_lines_up_targets_and_refuses_logits():
    p = torch.tensor([[0.9], [0.2]])
    assert torch.allclose(get_loss("binary_crossentropy")(torch.tensor([1, 0]), p),
                          -(torch.log(torch.tensor(0.9)) + torch.log(torch.tensor(0.8))) / 2)
    with pytest.raises(ValueError, match="from_logits=True"):
        get_loss("binary_crossentropy")(torch.tensor([1.0]), torch.tensor([3.0]))
    with pytest.raises(ValueError, match="delta"):
        rk.Huber(delta=0)


def test_accuracy_follows_the_loss_and_takes_bool_targets():
    onehot = torch.tensor([[True, False], [False, True]])
    probs = torch.tensor([[0.8, 0.2], [0.7, 0.3]])
    assert float(get_metric("accuracy", get_loss("categorical_crossentropy"))(onehot.float(), probs)) == 0.5
    binary = get_metric("accuracy", get_loss("binary_crossentropy"))
    assert float(binary(torch.tensor([True, False]), torch.tensor([[0.6], [0.5]]))) == 1.0  # 0.5 is not > 0.5


# -------------------------------------------------------------- optimizers

# Keras 3.15.1: five steps of each optimizer (defaults) on sum(c * v**2) from v0.
V0, C = [1.0, -2.0, 0.5, 3.0], [1.0, 0.5, 2.0, 0.1]
KERAS_STEPS = {
    "adamw": [[0.9989960193634033, -1.9989919662475586, 0.4989980161190033, 2.998988151550293],
              [0.9979920387268066, -1.9979840517044067, 0.49799609184265137, 2.997976303100586],
              [0.9969881176948547, -1.9969761371612549, 0.4969942271709442, 2.996964454650879],
              [0.9959842562675476, -1.995968222618103, 0.495992511510849, 2.995952606201172],
              [0.9949804544448853, -1.9949603080749512, 0.4949909448623657, 2.994940757751465]],
    "nadam": [[0.99893718957901, -1.9989372491836548, 0.4989372193813324, 2.9989371299743652],
              [0.9981639385223389, -1.9981638193130493, 0.4981643557548523, 2.9981637001037598],
              [0.9974530935287476, -1.997452735900879, 0.4974540174007416, 2.9974524974823],
              [0.9967519640922546, -1.996751308441162, 0.4967535436153412, 2.996751070022583],
              [0.9960424304008484, -1.9960414171218872, 0.49604475498199463, 2.9960410594940186]],
}


@pytest.mark.parametrize("name", sorted(KERAS_STEPS))
def test_adamw_and_nadam_step_as_keras(name):
    v = torch.nn.Parameter(torch.tensor(V0))
    opt, key = get_optimizer(name.upper(), [v])
    assert key == name
    for expected in KERAS_STEPS[name]:
        opt.zero_grad()
        (torch.tensor(C) * v * v).sum().backward()
        opt.step()
        np.testing.assert_allclose(v.detach().numpy(), expected, atol=1e-6)


# ---------------------------------------------------------------- training


def dense_model(seed=0, units=2, activation="softmax"):
    torch.manual_seed(seed)
    return rk.Sequential([rk.Dense(units, activation=activation, input_shape=(3,))])


def toy(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype("float32"), np.array([0, 1, 1, 0, 1, 1][:n])


def test_evaluate_and_on_batch_weight_the_loss_as_keras():
    x, y = toy()
    sw = np.array([1, 2, 3, 0, 1, 1], "float32")
    m = dense_model()
    m.compile(torch.optim.SGD(m.parameters(), lr=0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
    p = torch.from_numpy(m.predict(x))
    ce = -torch.log(p[torch.arange(6), torch.from_numpy(y)])
    # Keras: each batch's loss is sum(w * ce) / batch size; the epoch's is the size-weighted mean of the batches
    batches = [(ce[:4] * torch.from_numpy(sw[:4])).sum() / 4, (ce[4:] * torch.from_numpy(sw[4:])).sum() / 2]
    expected = float((batches[0] * 4 + batches[1] * 2) / 6)
    loss, acc = m.evaluate(x, y, batch_size=4, sample_weight=sw)
    assert loss == pytest.approx(expected, rel=1e-6)
    assert acc == pytest.approx(float((p.argmax(-1).numpy() == y).mean()))  # metrics stay unweighted
    assert m.test_on_batch(x, y, sample_weight=sw)[0] == pytest.approx(float((ce * torch.from_numpy(sw)).sum() / 6), rel=1e-6)
    logs = m.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"} and logs["loss"] == pytest.approx(float(ce.mean()), rel=1e-6)
    np.testing.assert_allclose(m.predict_on_batch(x), p.numpy(), rtol=1e-6)
    m.compile("sgd", "sparse_categorical_crossentropy")
    assert isinstance(m.train_on_batch(x, y), float)  # the loss alone without metrics, as Keras


def test_class_weight_is_sample_weight_by_class():
    x, y = toy()
    weights = {0: 2.0, 1: 0.5}
    a, b = dense_model(), dense_model()
    for m in (a, b):
        m.compile("sgd", "sparse_categorical_crossentropy")
    ha = a.fit(x, y, class_weight=weights, batch_size=3, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x, y, sample_weight=np.where(y == 0, 2.0, 0.5), batch_size=3, epochs=2, shuffle=False, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    onehot = np.eye(2, dtype="float32")[y]
    c = dense_model()
    c.compile("sgd", "categorical_crossentropy")
    assert c.fit(x, onehot, class_weight=weights, batch_size=3, epochs=2, shuffle=False, verbose=0).history["loss"] == ha.history["loss"]
    with pytest.raises(ValueError, match="class_weight"):
        a.fit(x, y, class_weight=weights, sample_weight=np.ones(6), verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        a.fit(x, y, class_weight={"a": 1}, verbose=0)


def test_dataloader_and_generator_train_as_arrays():
    x, y = toy(6)
    ref = dense_model()
    ref.compile("sgd", "sparse_categorical_crossentropy")
    ref.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=2)
    via_loader = dense_model()
    via_loader.compile("sgd", "sparse_categorical_crossentropy")
    h = via_loader.fit(loader, epochs=2, verbose=0, validation_data=loader)
    assert set(h.history) == {"loss", "val_loss"}
    for a, b in zip(ref.parameters(), via_loader.parameters()):
        assert torch.equal(a, b)

    def batches():
        while True:
            for i in range(0, 6, 2):
                yield x[i:i + 2], y[i:i + 2]

    via_gen = dense_model()
    via_gen.compile("sgd", "sparse_categorical_crossentropy")
    via_gen.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0)
    for a, b in zip(ref.parameters(), via_gen.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(via_gen.predict(loader), ref.predict(x))
    np.testing.assert_array_equal(via_gen.predict((xb for xb, _ in [(x[:4], None), (x[4:], None)])), ref.predict(x))
    assert ref.evaluate(loader) == pytest.approx(ref.evaluate(x, y))


def test_generator_that_runs_out_stops_training_with_a_warning():
    x, y = toy(4)
    m = dense_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    gen = ((x[i:i + 2], y[i:i + 2], np.ones(2)) for i in (0, 2))
    with pytest.warns(UserWarning, match="ran out of data"):
        h = m.fit(gen, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_steps_limit_arrays_and_validation():
    x, y = toy(6)
    seen = []

    class Count(rk.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    m = dense_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=2, steps_per_epoch=2, epochs=1, verbose=0, callbacks=[Count()],
          validation_data=(x, y), validation_steps=1)
    assert seen == [0, 1]


def test_bad_data_sources_are_named():
    m = dense_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="DataLoader"):
        m.fit(42, verbose=0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 3), torch.zeros(4)), batch_size=2)
    with pytest.raises(ValueError, match="y: give y only"):
        m.fit(loader, np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        m.fit(iter([np.zeros((2, 3))]), verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(loader, validation_split=0.5, verbose=0)
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(3), torch.tensor(0)

    with pytest.raises(TypeError, match="DataLoader"):
        m.fit(Stream(), verbose=0)


def test_inputs_are_cast_as_keras_casts_them():
    rng = np.random.default_rng(0)
    x_bool = rng.uniform(size=(8, 4, 3)) > 0.5
    y_onehot = np.eye(2, dtype=bool)[rng.integers(0, 2, 8)]
    torch.manual_seed(0)
    m = rk.Sequential([rk.LSTM(4, input_shape=(4, 3)), rk.Dense(2, activation="softmax")])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x_bool, y_onehot, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0]) and 0 <= h.history["accuracy"][0] <= 1
    np.testing.assert_array_equal(m.predict(x_bool.astype("int32")), m.predict(x_bool.astype("float32")))
    emb = rk.Sequential([rk.Embedding(10, 3, input_shape=(5,)), rk.GRU(2), rk.Dense(1, activation="sigmoid")])
    emb.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    assert emb.metric_names == ["accuracy"]
    emb.fit(rng.integers(0, 10, (8, 5)), rng.integers(0, 2, 8) > 0, epochs=1, verbose=0)


# --------------------------------------------------------------- callbacks


@pytest.mark.parametrize("make", [
    lambda: rk.EarlyStopping("val_loss", patience=0),
    lambda: rk.ReduceLROnPlateau("val_loss", patience=0),
    lambda: rk.ModelCheckpoint("unused-{epoch}", monitor="val_loss", save_best_only=True),
])
def test_val_loss_without_validation_warns_once_and_trains_on(make):
    x, y = toy()
    m = dense_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    cb = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = m.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    ours = [w for w in caught if "val_loss" in str(w.message)]
    assert len(ours) == 1 and "loss" in str(ours[0].message)
    assert type(cb).__name__ in str(ours[0].message) and "_Monitor" not in str(ours[0].message)
    assert len(h.history["loss"]) == 3


# -------------------------------------------------------------- utilities


def test_pad_sequences_matches_keras():
    seqs = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
    # keras.utils.pad_sequences, Keras 3.15.1
    assert pad_sequences(seqs).tolist() == [[0, 0, 1, 2, 3], [0, 0, 0, 0, 4], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9]]
    assert pad_sequences(seqs).dtype == np.int32
    assert pad_sequences(seqs, maxlen=3).tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0], [7, 8, 9]]
    assert pad_sequences(seqs, maxlen=3, padding="post", truncating="post").tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0], [5, 6, 7]]
    assert pad_sequences(seqs, maxlen=4, padding="post", value=-1).tolist() == [
        [1, 2, 3, -1], [4, -1, -1, -1], [-1, -1, -1, -1], [6, 7, 8, 9]]
    out = pad_sequences(seqs, dtype="float32", value=0.5, maxlen=2, truncating="post")
    assert out.dtype == np.float32 and out.tolist() == [[1.0, 2.0], [0.5, 4.0], [0.5, 0.5], [5.0, 6.0]]
    assert pad_sequences([np.ones((2, 3)), np.zeros((1, 3))]).shape == (2, 2, 3)
    assert pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>").tolist() == [["a", "b"], ["<pad>", "c"]]
    assert pad_sequences([]).shape == (0, 0) and rk.utils.pad_sequences is pad_sequences
    with pytest.raises(ValueError, match="value"):
        pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="padding"):
        pad_sequences(seqs, padding="middle")


def test_repeat_vector():
    layer = rk.RepeatVector(3)
    x = torch.arange(6.0).reshape(2, 3)
    out = layer(x)
    assert out.shape == (2, 3, 3) and torch.equal(out[:, 1], x)
    assert rk.layers.deserialize(rk.layers.serialize(layer)).n == 3
    with pytest.raises(ValueError, match="batch, features"):
        layer(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="n"):
        rk.RepeatVector(0)


def test_repeat_vector_in_a_run_directory(tmp_path):
    torch.manual_seed(0)
    m = rk.Sequential([rk.LSTM(4, input_shape=(5, 2)), rk.RepeatVector(3), rk.LSTM(2, return_sequences=True)])
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype("float32")
    rk.save_model(m, tmp_path / "run")
    np.testing.assert_array_equal(rk.load_model(tmp_path / "run").predict(x), m.predict(x))


def test_summary_of_a_model_from_torch(capsys):
    model = rk.interop.from_torch(torch.nn.LSTM(3, 4, num_layers=2))
    assert model.built
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 272" in out and "?" in out


@pytest.mark.slow
def test_addition_rnn_example_learns(capsys):
    """keras-io's addition_rnn with rnnkit layers (examples/addition_rnn.py): it learns to add."""
    path = Path(__file__).resolve().parent.parent / "examples" / "addition_rnn.py"
    spec = importlib.util.spec_from_file_location("addition_rnn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() > 0.9  # 25 epochs reach about 1.0 per character
    assert "val_accuracy" in capsys.readouterr().out


def test_new_losses_and_optimizers_survive_a_run_directory(tmp_path):
    for loss, optimizer in ((rk.Huber(delta=2.0), "adamw"), (rk.BinaryCrossentropy(from_logits=True), "nadam")):
        m = dense_model(units=1, activation=None)
        m.compile(optimizer, loss)
        rk.save_model(m, tmp_path / optimizer)
        loaded = rk.load_model(tmp_path / optimizer)
        assert loaded.optimizer_name == optimizer and loaded.loss.get_config() == loss.get_config()


@pytest.mark.slow
def test_review_classifier_example_learns(capsys):
    """keras-io's Bidirectional-LSTM review classifier as a Sequential with pad_sequences (examples/review_classifier.py)."""
    path = Path(__file__).resolve().parent.parent / "examples" / "review_classifier.py"
    spec = importlib.util.spec_from_file_location("review_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() > 0.9  # 5 epochs reach about 0.99; chance is about 0.5
    assert "test accuracy" in capsys.readouterr().out


def test_integer_ids_stay_integers_for_a_torch_embedding():
    torch.manual_seed(0)
    m = rk.Sequential([torch.nn.Embedding(10, 4), rk.LSTM(3), rk.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    assert np.isfinite(m.fit(rng.integers(0, 10, (8, 5)), rng.integers(0, 2, 8), verbose=0).history["loss"][0])
