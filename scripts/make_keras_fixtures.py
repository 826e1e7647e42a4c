"""Regenerate tests/data/keras/: small Keras 3 models and the outputs Keras computes for them.

The tests read these files without Keras. Run with Keras 3 installed in a
separate environment (never rnnkit's own), e.g.::

    python3 -m venv /tmp/kerasenv
    /tmp/kerasenv/bin/pip install torch keras h5py numpy
    KERAS_BACKEND=torch /tmp/kerasenv/bin/python scripts/make_keras_fixtures.py
    KERAS_BACKEND=tensorflow /path/to/keras-env/bin/python scripts/make_keras_fixtures.py added [NAME ...]

The second form writes only the models of ``added`` (those named, when names follow; they were made
so, with Keras 3.15.1 on TensorFlow).

For each model NAME it writes ``NAME.keras`` and ``NAME.npz`` with the fixed
input ``x`` and Keras's ``predict(x)`` as ``y`` (plain arrays, readable with
``allow_pickle=False``). It also writes files load_keras must refuse: a
``Lambda`` layer, a functional model, and configs tampered by hand.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402 - the backend is chosen by the environment variable above
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"


def masked_batch(rng, batch, time, features):
    """Random inputs with zero (masked) steps: right padding and one gap in the middle."""
    x = rng.normal(size=(batch, time, features)).astype("float32")
    x[0, -2:] = 0.0
    x[1, 2] = 0.0
    return x


def models(rng):
    """name -> (model, input)."""
    x63 = rng.normal(size=(4, 6, 3)).astype("float32")
    yield "simple_rnn", keras.Sequential([
        keras.Input((6, 3)),
        layers.SimpleRNN(4, return_sequences=True),
        layers.SimpleRNN(3, activation="relu", go_backwards=True),
        layers.Dense(2, activation="tanh"),
    ]), x63
    yield "gru_reset_after", keras.Sequential([
        keras.Input((None, 3)),  # any length
        layers.GRU(5, return_sequences=True),
        layers.TimeDistributed(layers.Dense(2, activation="sigmoid")),
    ]), rng.normal(size=(3, 9, 3)).astype("float32")
    yield "gru_reset_before", keras.Sequential([
        keras.Input((6, 3)),
        layers.GRU(4, reset_after=False, return_sequences=True),
        layers.GRU(3, reset_after=False, go_backwards=True, use_bias=False),
        layers.Dense(1),
    ]), x63
    yield "lstm_bidirectional_masked", keras.Sequential([
        keras.Input((6, 3)),
        layers.Masking(0.0),
        layers.Bidirectional(layers.LSTM(4, return_sequences=True)),
        layers.Bidirectional(layers.GRU(3), merge_mode="ave"),
        layers.Dropout(0.5),
        layers.Dense(2),
    ]), masked_batch(rng, 4, 6, 3)
    ids = rng.integers(1, 12, size=(3, 8)).astype("int32")
    ids[0, -3:] = 0  # padding, masked by mask_zero
    yield "embedding_lstm", keras.Sequential([
        keras.Input((8,), dtype="int32"),
        layers.Embedding(12, 4, mask_zero=True),
        layers.LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid"),
        layers.SimpleRNN(3),
        layers.Dense(2, activation="sigmoid"),
    ]), ids
    inner = keras.Sequential([layers.LSTM(4, return_sequences=True), layers.Dense(3, activation="relu")])
    yield "nested_sequential", keras.Sequential([keras.Input((6, 3)), inner, layers.LSTM(2)]), x63


def added(rng):
    """Models added later, written alone (``added`` argument) so the files above stay as they were."""
    yield "lstm_flatten", keras.Sequential([
        keras.Input((5, 3)),
        layers.LSTM(4, return_sequences=True),
        layers.Flatten(),
        layers.Dense(2),
    ]), rng.normal(size=(3, 5, 3)).astype("float32")
    ids = rng.integers(1, 12, size=(4, 8)).astype("int32")
    ids[0, 5:], ids[2, 1:] = 0, 0  # padding, masked by mask_zero; one row with a single token
    yield "embedding_pooled", keras.Sequential([
        keras.Input((8,), dtype="int32"),
        layers.Embedding(12, 4, mask_zero=True),
        layers.SpatialDropout1D(0.2),
        layers.LSTM(5, return_sequences=True),
        layers.LayerNormalization(),
        layers.Activation("relu"),
        layers.GlobalAveragePooling1D(),
        layers.Rescaling(0.5, 0.25),
        layers.Dense(2, activation="softmax"),
    ]), ids
    yield "gru_max_pooled", keras.Sequential([
        keras.Input((6, 3)),
        layers.Masking(0.0),
        layers.GRU(4, return_sequences=True),
        layers.GlobalMaxPooling1D(data_format="channels_first"),  # over the features: one value per step
        layers.Dense(2),
    ]), masked_batch(rng, 4, 6, 3)


def refused(rng):
    """name -> model that load_keras must refuse (and one functional model of known layers, which it reads),
    saved as Keras writes it."""
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    lam = keras.Sequential([keras.Input((6, 3)), layers.Lambda(lambda t: t * 2.0), layers.SimpleRNN(2)])
    inputs = keras.Input((6, 3))
    functional = keras.Model(inputs, layers.Dense(1)(layers.LSTM(2)(inputs)))
    return {"refused_lambda": (lam, x), "functional_known_layers": (functional, x)}


def tamper(src: Path, dst: Path, edit) -> None:
    """Copy a .keras archive, passing its config.json through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def rnn_from_elsewhere(config):
    # A layer whose class name is allowed but which claims another module.
    layer = config["config"]["layers"][1]
    layer["module"], layer["registered_name"] = "evil_pkg.layers", "evil_pkg>SimpleRNN"


def custom_activation(config):
    # The shape Keras writes for a custom function as activation.
    dense = config["config"]["layers"][-1]
    dense["config"]["activation"] = {
        "module": "builtins", "class_name": "function", "config": "system", "registered_name": "function",
    }


def main(only_added: bool = False, names=()) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for name, model, x in added(np.random.default_rng(1)) if only_added else models(rng):
        # Random biases too (Keras initialises them to zeros), so every array is tested.
        for w in model.weights:
            w.assign(rng.normal(scale=0.5, size=w.shape).astype("float32"))
        if names and name not in names:  # drawn all the same, so each model's numbers do not depend on the names
            continue
        model.save(OUT / f"{name}.keras")
        np.savez(OUT / f"{name}.npz", x=x, y=np.asarray(model.predict(x, verbose=0), dtype="float32"))
        if name == "simple_rnn":
            model.save_weights(OUT / f"{name}.weights.h5")
        print(f"{name}: x {x.shape} -> y {model.output_shape}")
    if only_added:
        return
    for name, (model, _) in refused(rng).items():
        model.save(OUT / f"{name}.keras")
        print(f"{name}: written")
    tamper(OUT / "simple_rnn.keras", OUT / "refused_module.keras", rnn_from_elsewhere)
    tamper(OUT / "simple_rnn.keras", OUT / "refused_activation.keras", custom_activation)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, python {sys.version.split()[0]} -> {OUT}")


if __name__ == "__main__":
    main(only_added=sys.argv[1:2] == ["added"], names=sys.argv[2:])
