"""rk.TensorBoard writes Keras's event files: read back with TensorBoard's own EventAccumulator."""

import numpy as np
import pytest
import torch

import rnnkit as rk

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def read(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def fit(callback, epochs=3, **kwargs):
    torch.manual_seed(0)
    m = rk.Sequential([rk.SimpleRNN(4, input_shape=(3, 2)), rk.Dense(1)])
    m.compile("sgd", "mse", learning_rate=0.1, metrics=["mae"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3, 2)).astype(np.float32), rng.normal(size=(20, 1)).astype(np.float32)
    return m, m.fit(x, y, epochs=epochs, batch_size=5, callbacks=[callback], verbose=0, **kwargs)


def test_epoch_loss_and_metrics_go_to_train_and_validation(tmp_path):
    _, history = fit(rk.TensorBoard(tmp_path), validation_split=0.25)
    train, val = read(tmp_path / "train"), read(tmp_path / "validation")
    assert {"epoch_loss", "epoch_mae"} <= set(train.Tags()["scalars"])
    assert {"epoch_loss", "epoch_mae"} <= set(val.Tags()["scalars"])
    for acc, prefix in ((train, ""), (val, "val_")):
        for name in ("loss", "mae"):
            events = acc.Scalars(f"epoch_{name}")
            assert [e.step for e in events] == [0, 1, 2]
            np.testing.assert_allclose([e.value for e in events], history.history[prefix + name], rtol=1e-6)
    assert "graph/text_summary" in train.Tags()["tensors"]  # write_graph: the model's structure as text


def test_batch_values_and_histograms(tmp_path):
    model, _ = fit(rk.TensorBoard(tmp_path, histogram_freq=1, write_graph=False, update_freq=2), epochs=2)
    train = read(tmp_path / "train")
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8]  # 4 batches an epoch, every 2nd
    names = [n for n, _ in model.named_parameters()]
    assert set(names) <= set(train.Tags()["histograms"])
    assert [e.step for e in train.Histograms(names[0])] == [0, 1]
    assert not (tmp_path / "validation").exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match="update_freq"):
        rk.TensorBoard("logs", update_freq="sometimes")
    with pytest.raises(ValueError, match="histogram_freq"):
        rk.TensorBoard("logs", histogram_freq=-1)
    with pytest.raises(ValueError, match="profile_batch"):
        rk.TensorBoard("logs", profile_batch=5)
    with pytest.raises(TypeError, match="log_dir"):
        rk.TensorBoard(3)
