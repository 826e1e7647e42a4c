"""Keras's CSVLogger: a header, one row per epoch in sorted key order, append, separator, "NA", Ctrl-C."""

import csv

import numpy as np
import pytest

import rnnkit as rk


def model_and_data():
    rng = np.random.RandomState(0)
    x, y = rng.rand(16, 5, 3).astype(np.float32), rng.randint(0, 2, 16)
    model = rk.Sequential([rk.GRU(4, input_shape=(5, 3)), rk.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model, x, y


def test_rows_per_epoch_sorted_keys_and_append(tmp_path):
    model, x, y = model_and_data()
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[rk.CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history.history["loss"])
    # append=True continues the table without a second header; the default starts the file again.
    model.fit(x, y, epochs=5, initial_epoch=3, validation_split=0.25, verbose=0,
              callbacks=[rk.CSVLogger(path, append=True)])
    assert [r["epoch"] for r in csv.DictReader(path.open())] == ["0", "1", "2", "3", "4"]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[rk.CSVLogger(path)])
    assert path.read_text().splitlines()[0] == "epoch,accuracy,loss"
    assert len(path.read_text().splitlines()) == 2


def test_separator_missing_values_and_bad_arguments(tmp_path):
    logger = rk.CSVLogger(tmp_path / "log.tsv", separator="\t")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "note": "a\tb", "acc": 1.0})
    logger.on_epoch_end(1, {"loss": 0.25})  # an epoch cut short: Keras writes NA
    logger.on_train_end()
    assert list(csv.reader((tmp_path / "log.tsv").open(), delimiter="\t")) == [
        ["epoch", "acc", "loss", "note"], ["0", "1.0", "0.5", "a\tb"], ["1", "NA", "0.25", "NA"]]
    with pytest.raises(ValueError, match="separator: expected one character"):
        rk.CSVLogger(tmp_path / "x.csv", separator=", ")


def test_rows_reach_the_file_before_an_interrupt(tmp_path):
    model, x, y = model_and_data()

    class Stop(rk.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[rk.CSVLogger(tmp_path / "log.csv"), Stop()])
    assert [r["epoch"] for r in csv.DictReader((tmp_path / "log.csv").open())] == ["0", "1"]
