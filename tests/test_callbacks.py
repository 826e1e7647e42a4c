"""Each callback's behaviour, driven by scripted logs or by a real fit."""

import math
import warnings

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from rnnkit.checkpoint import ModelCheckpoint
from rnnkit.serialization import load_model


def model(seed=0):
    torch.manual_seed(seed)
    m = rk.Sequential([rk.SimpleRNN(4, input_shape=(3, 2)), rk.Dense(1)])
    m.compile("sgd", "mse", learning_rate=0.1)
    return m


def drive(cb, m, values, key="val_loss", between=None):
    """Play ``values`` as the per-epoch logs; ``between(epoch)`` may change the model. Returns epochs run."""
    cb.set_model(m)
    m.stop_training = False
    cb.on_train_begin()
    ran = 0
    for epoch, v in enumerate(values):
        cb.on_epoch_begin(epoch)
        if between:
            between(epoch)
        cb.on_epoch_end(epoch, {key: v})
        ran += 1
        if m.stop_training:
            break
    cb.on_train_end()
    return ran


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    m = model()
    snapshots = {}

    def perturb(epoch):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1)
        snapshots[epoch] = [p.detach().clone() for p in m.parameters()]

    cb = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    ran = drive(cb, m, [1.0, 0.5, 0.6, 0.55, 0.4], between=perturb)
    assert ran == 4 and cb.stopped_epoch == 3 and cb.best_epoch == 1
    for p, q in zip(m.parameters(), snapshots[1]):
        assert torch.equal(p, q)


def test_early_stopping_mode_auto_maximises_accuracy():
    m = model()
    cb = EarlyStopping("val_accuracy", patience=0)
    assert drive(cb, m, [0.5, 0.7, 0.6, 0.9], key="val_accuracy") == 3


def test_missing_monitor_warns_once_as_keras():
    # Issue 12: Keras warns (naming the monitor and the logged keys) and skips, rather than failing.
    m = model()
    cb = EarlyStopping("val_loss")
    cb.set_model(m)
    cb.on_train_begin()
    with pytest.warns(UserWarning, match="validation_split"):
        cb.on_epoch_end(0, {"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cb.on_epoch_end(1, {"loss": 1.0})  # once per training
    assert not m.stop_training


def test_model_checkpoint_save_best_only(tmp_path):
    m = model()
    x = np.random.RandomState(0).randn(5, 3, 2).astype(np.float32)
    kept = {}

    def perturb(epoch):
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(1.1)
        kept[epoch] = m.predict(x)

    cb = ModelCheckpoint(tmp_path / "best", monitor="val_loss", save_best_only=True)
    drive(cb, m, [1.0, 0.5, 0.7], between=perturb)  # saved after epochs 0 and 1, not after 2 (worse)
    np.testing.assert_array_equal(load_model(tmp_path / "best").predict(x), kept[1])
    assert not np.array_equal(m.predict(x), kept[1])


def test_model_checkpoint_path_template(tmp_path):
    m = model()
    cb = ModelCheckpoint(str(tmp_path / "ep{epoch:02d}-{val_loss:.1f}"))
    drive(cb, m, [1.0, 0.5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep01-1.0", "ep02-0.5"]


def test_terminate_on_nan_stops_after_the_first_bad_batch():
    m = model()
    m.compile("sgd", lambda y, p: ((y - p) ** 2).mean() * float("nan"), learning_rate=0.1)

    class Count(Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Count.batches += 1

    x, y = np.zeros((8, 3, 2), np.float32), np.zeros((8, 1), np.float32)
    h = m.fit(x, y, epochs=5, batch_size=2, callbacks=[TerminateOnNaN(), Count()], verbose=0)
    assert Count.batches == 1 and len(h.history["loss"]) == 1 and math.isnan(h.history["loss"][0])


def test_reduce_lr_on_plateau_after_patience_with_floor():
    m = model()
    cb = ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=0.03)
    drive(cb, m, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # 0.1 -> 0.05 after epochs 1,2 without improvement -> 0.03 (floor) after 3,4 -> stays.
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.03)
    m2 = model()
    cb2 = ReduceLROnPlateau("val_loss", factor=0.5, patience=2)
    drive(cb2, m2, [1.0, 0.9, 0.8, 0.7])
    assert m2.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_learning_rate_scheduler_sets_each_epoch():
    m = model()
    x, y = np.zeros((4, 3, 2), np.float32), np.zeros((4, 1), np.float32)
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.param_groups[0]["lr"])

    m.fit(x, y, epochs=3, callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)), Spy()], verbose=0)
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    with pytest.raises(ValueError, match="schedule"):
        m.fit(x, y, epochs=1, callbacks=[LearningRateScheduler(lambda e, lr: -1.0)], verbose=0)
