"""compile/fit/evaluate/predict against independent references (torch.nn.functional, numpy, manual steps)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit as rk
from rnnkit.callbacks import Callback
from rnnkit.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy, get_loss
from rnnkit.training import History


def classifier(seed=0, units=6, softmax=True, dropout=0.0):
    torch.manual_seed(seed)
    layers = [rk.GRU(units, input_shape=(5, 3))]
    if dropout:
        layers.append(rk.Dropout(dropout))
    layers.append(rk.Dense(4, activation="softmax" if softmax else None))
    return rk.Sequential(layers)


def toy_data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 5, 3).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64) + 2 * (x[:, -1, 1] > 0)
    return x, y


def test_losses_match_torch_functional():
    torch.manual_seed(0)
    logits = torch.randn(6, 3, 5, dtype=torch.float64)
    ids = torch.randint(0, 5, (6, 3))
    probs = logits.softmax(-1)
    ref = F.cross_entropy(logits.reshape(-1, 5), ids.reshape(-1))
    assert torch.allclose(get_loss("sparse_categorical_crossentropy")(ids, probs), ref)
    assert torch.allclose(SparseCategoricalCrossentropy(from_logits=True)(ids, logits), ref)
    onehot = F.one_hot(ids, 5).double()
    assert torch.allclose(get_loss("categorical_crossentropy")(onehot, probs), ref)
    assert torch.allclose(CategoricalCrossentropy(from_logits=True)(onehot, logits), ref)
    a, b = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    assert np.isclose(float(get_loss("mse")(a, b)), float(((a - b) ** 2).mean()))
    assert np.isclose(float(get_loss("mae")(a, b)), float((a - b).abs().mean()))


def test_probability_loss_rejects_logits_and_bad_targets():
    with pytest.raises(ValueError, match="from_logits=True"):
        get_loss("sparse_categorical_crossentropy")(torch.tensor([0]), torch.tensor([[2.0, -1.0]]))
    with pytest.raises(ValueError, match="class ids must lie"):
        get_loss("sparse_categorical_crossentropy")(torch.tensor([3]), torch.tensor([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="shape"):
        get_loss("mse")(torch.zeros(3), torch.zeros(3, 1))


def test_compile_errors_name_the_argument():
    m = classifier()
    with pytest.raises(ValueError, match="optimizer"):
        m.compile("lion")  # not built by name (adamw is, since issue 12)
    with pytest.raises(ValueError, match="clipnorm"):
        m.compile("adam", clipnorm=-1)
    with pytest.raises(ValueError, match="accuracy"):
        m.compile("adam", loss="mse", metrics=["accuracy"])
    with pytest.raises(ValueError, match="loss"):
        m.compile("adam", loss="hinge")
    with pytest.raises(ValueError, match="compile"):
        m.fit(*toy_data())


def test_fit_lowers_loss_and_history_has_every_metric():
    x, y = toy_data()
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], learning_rate=0.02)
    h = m.fit(x, y, epochs=8, batch_size=8, validation_split=0.25, verbose=0)
    assert isinstance(h, History)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 8 for v in h.history.values())
    assert h.history["loss"][-1] < 0.7 * h.history["loss"][0]
    # The last validation numbers are evaluate() on the held-out last quarter.
    ev = m.evaluate(x[30:], y[30:], return_dict=True)
    assert np.isclose(ev["loss"], h.history["val_loss"][-1], rtol=1e-5)
    assert np.isclose(ev["accuracy"], h.history["val_accuracy"][-1])


def test_evaluate_and_predict_match_a_direct_forward_pass():
    x, y = toy_data(23)
    m = classifier()
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    with torch.no_grad():
        probs = m(torch.from_numpy(x))
    np.testing.assert_allclose(m.predict(x, batch_size=5), probs.numpy(), rtol=1e-6, atol=1e-7)
    ev = m.evaluate(x, y, batch_size=4, return_dict=True)
    ref = F.nll_loss(torch.log(probs.clamp(1e-7, 1 - 1e-7)), torch.from_numpy(y))
    assert np.isclose(ev["loss"], float(ref), rtol=1e-5)
    assert np.isclose(ev["accuracy"], float((probs.argmax(-1).numpy() == y).mean()))
    # Keras's default return: [loss, *metrics], or the loss alone without metrics
    loss, acc = m.evaluate(x, y, batch_size=100)
    assert loss == pytest.approx(ev["loss"], rel=1e-5) and acc == pytest.approx(ev["accuracy"])
    m.compile("sgd", "sparse_categorical_crossentropy")
    assert m.evaluate(x, y) == pytest.approx(ev["loss"], rel=1e-5)


def test_one_sgd_step_with_clipnorm_matches_a_manual_step():
    x, y = toy_data(8)
    m = classifier()
    ref = classifier()
    m.compile(torch.optim.SGD(m.parameters(), lr=0.5), "sparse_categorical_crossentropy", clipnorm=0.01)
    m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    loss = F.nll_loss(torch.log(ref(torch.from_numpy(x)).clamp(1e-7, 1 - 1e-7)), torch.from_numpy(y))
    loss.backward()
    norm = torch.sqrt(sum((p.grad**2).sum() for p in ref.parameters()))
    with torch.no_grad():
        for p in ref.parameters():
            p -= 0.5 * p.grad * min(1.0, 0.01 / (float(norm) + 1e-6))
    for a, b in zip(m.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)


def test_seeded_runs_repeat_and_datasets_train_like_arrays():
    x, y = toy_data()

    def run(data):
        m = classifier(seed=3, dropout=0.3)
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(*data, epochs=2, batch_size=7, verbose=0)
        return [p.detach().clone() for p in m.parameters()]

    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    a, b, c = run((x, y)), run((x, y)), run((ds,))
    for p, q, r in zip(a, b, c):
        assert torch.equal(p, q) and torch.equal(p, r)


def test_train_mode_in_fit_eval_mode_in_predict():
    seen = []

    class Spy(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(self.model.training)

    x, y = toy_data(10)
    m = classifier(dropout=0.5)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=5, callbacks=[Spy()], verbose=0)
    assert seen == [True, True]
    np.testing.assert_array_equal(m.predict(x), m.predict(x))  # no dropout in predict
    assert not m.training


def test_one_line_per_epoch_off_a_terminal(capsys):
    x, y = toy_data(10)
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=3, batch_size=5, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3") and "accuracy:" in lines[0]


def test_fit_argument_errors():
    x, y = toy_data(10)
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="y: expected 10"):
        m.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        m.fit(x, y, validation_split=0.2, validation_data=(x, y), verbose=0)


def test_resolve_device_auto_is_cpu_without_cuda():
    from rnnkit.training import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
