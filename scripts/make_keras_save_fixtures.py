"""Regenerate tests/data/keras/rk_*: Keras 3 files written by rnnkit, checked by Keras itself.

Two steps, in two environments (Keras is never a dependency of rnnkit)::

    PYTHONPATH=src python scripts/make_keras_save_fixtures.py write
    KERAS_BACKEND=tensorflow /path/to/keras-venv/bin/python scripts/make_keras_save_fixtures.py keras

``write`` (rnnkit's environment) builds small Sequentials of rnnkit layers
with random weights and saves, for each NAME, ``rk_NAME.keras``
(``model.save``), ``rk_NAME.weights.h5`` (``model.save_weights``) and
``rk_NAME.npz`` with the fixed input ``x`` and rnnkit's output ``y``.

``keras`` (an environment with Keras 3 and h5py) loads every ``rk_NAME.keras``
with ``keras.saving.load_model``, and every ``rk_NAME.weights.h5`` into a
clone of it with ``load_weights``, and adds Keras's outputs to the npz as
``y_keras`` and ``y_keras_weights``; it prints the largest difference from
rnnkit's. It also saves ``keras_seq2seq.keras`` + ``.npz``: an encoder,
``RepeatVector``, decoder and ``TimeDistributed(Dense(softmax))`` model as
keras-io's addition_rnn builds it, for ``rk.load_model`` to read.

Functional models go to tests/data/keras_functional/, in two steps of their own
(``write-functional`` then ``keras-functional``, run as above): the first builds
``FUNCTIONAL`` (scripts/make_functional_fixtures.py's Keras programs run with
rnnkit's names, with the weights of their Keras-made npz, and a branching
graph whose Keras layer order differs from rnnkit's) and saves
``rk_NAME.keras`` and ``rk_NAME.npz`` (``x_0``..., rnnkit's ``y_0``...);
the second loads each with Keras and adds Keras's outputs as ``y_keras_0``...
Model names after either functional step limit it to those models.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"
FUNCTIONAL_OUT = OUT.parent / "keras_functional"
#: Functional models of make_functional_fixtures.py saved by rnnkit, and one of this script's own.
FUNCTIONAL = ("two_inputs", "encoder_decoder", "gru_state_chain", "shared_layer", "embedding_mask",
              "masking_bidirectional", "merged_masks", "branch_order", "bidirectional_pair", "masked_add",
              "bilstm_classifier", "concat_partly_masked", "concat_time", "seq2seq_decoder", "subtract_flatten",
              "bidirectional_halves_masked", "bilstm_average_pooled", "normalized_pooled", "mixed_bfloat16")


def branch_order(rk):
    """Dense "c" feeds "b" while "a" reads the input: Keras lists c, a, b (by depth), rnnkit a, c, b."""
    inp = rk.Input((4,), name="inp")
    p = rk.Dense(3, name="a")(inp)
    q = rk.Dense(3, activation="tanh", name="b")(rk.Dense(5, name="c")(inp))
    return rk.Model(inp, rk.Concatenate(name="join")([p, q]))


def rnnkit_functional(rk, rng, names=FUNCTIONAL):
    """name -> (model, inputs) for ``names``, some of ``FUNCTIONAL``."""
    from make_functional_fixtures import LAYER_NAMES, MIXED, MODELS

    class L:  # the Keras programs of make_functional_fixtures.py, with rnnkit's names
        Input, Model = rk.Input, rk.Model

    for layer in LAYER_NAMES:
        setattr(L, layer, getattr(rk, layer))
    programs = {**MODELS, **MIXED}
    for name in (n for n in names if n in programs):
        data = np.load(FUNCTIONAL_OUT / f"{name}.npz")
        model = programs[name][0](L)
        model.set_weights([data[k] for k in sorted(data.files) if k.startswith("w_")])
        yield name, model, [data[k] for k in sorted(data.files) if k.startswith("x_")]
    if "branch_order" in names:
        model = branch_order(rk)
        model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()])
        yield "branch_order", model, [rng.normal(size=(3, 4)).astype("float32")]


def _flat(ys):
    return [np.asarray(y, dtype="float32") for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


def rnnkit_models(rk, rng):
    """name -> (model, input), one per layer kind a .keras file holds."""
    x63 = rng.normal(size=(4, 6, 3)).astype("float32")
    masked = x63.copy()
    masked[0, -2:] = 0.0
    masked[1, 2] = 0.0
    ids = rng.integers(1, 12, size=(3, 8)).astype("int64")
    ids[0, -3:] = 0
    yield "simple_rnn", rk.Sequential([
        rk.Input((6, 3)), rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3, activation="relu", go_backwards=True),
        rk.Dense(2, activation="tanh")]), x63
    yield "gru", rk.Sequential([
        rk.Input((None, 3)), rk.GRU(5, return_sequences=True), rk.GRU(3, reset_after=False), rk.Dense(1)]), x63
    yield "lstm_bidirectional_masked", rk.Sequential([
        rk.Input((6, 3)), rk.Masking(0.0), rk.Bidirectional(rk.LSTM(4, return_sequences=True)),
        rk.Bidirectional(rk.GRU(3), merge_mode="ave"), rk.Dropout(0.5), rk.Dense(2)]), masked
    yield "embedding_lstm", rk.Sequential([
        rk.Input((8,)), rk.Embedding(12, 4, mask_zero=True),
        rk.LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid"),
        rk.TimeDistributed(rk.Dense(3, activation="relu")), rk.SimpleRNN(2)]), ids
    yield "seq2seq", rk.Sequential([
        rk.Input((7, 5)), rk.LSTM(6), rk.RepeatVector(4), rk.LSTM(6, return_sequences=True),
        rk.TimeDistributed(rk.Dense(5, activation="softmax"))]), rng.normal(size=(3, 7, 5)).astype("float32")


def write() -> None:
    import torch

    import rnnkit as rk

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for name, model, x in rnnkit_models(rk, rng):
        with torch.no_grad():  # random biases too, so every array is checked
            for p in model.parameters():
                p.copy_(torch.from_numpy(rng.normal(scale=0.5, size=tuple(p.shape)).astype("float32")))
        model.save(OUT / f"rk_{name}.keras")
        model.save_weights(OUT / f"rk_{name}.weights.h5")
        np.savez(OUT / f"rk_{name}.npz", x=x, y=model.predict(x))
        print(f"rk_{name}: x {x.shape} -> y {model.predict(x).shape}")


def write_functional(*names: str) -> None:
    import rnnkit as rk

    for name, model, xs in rnnkit_functional(rk, np.random.default_rng(2), names or FUNCTIONAL):
        model.save(FUNCTIONAL_OUT / f"rk_{name}.keras")
        ys = _flat(model.predict(xs if len(xs) > 1 else xs[0]))
        np.savez(FUNCTIONAL_OUT / f"rk_{name}.npz", **{f"x_{i}": x for i, x in enumerate(xs)},
                 **{f"y_{i}": y for i, y in enumerate(ys)})
        print(f"rk_{name} (functional): {len(xs)} inputs -> {len(ys)} outputs")


def keras_check() -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import layers

    worst = 0.0
    for path in sorted(OUT.glob("rk_*.keras")):
        data = dict(np.load(path.with_suffix(".npz")))
        model = keras.saving.load_model(path)
        data["y_keras"] = np.asarray(model.predict(data["x"], verbose=0), dtype="float32")
        twin = keras.models.clone_model(model)
        twin.load_weights(path.with_suffix(".weights.h5"))
        data["y_keras_weights"] = np.asarray(twin.predict(data["x"], verbose=0), dtype="float32")
        diff = max(float(np.abs(data[k] - data["y"]).max()) for k in ("y_keras", "y_keras_weights"))
        worst = max(worst, diff)
        np.savez(path.with_suffix(".npz"), **data)
        print(f"{path.name}: Keras's outputs differ from rnnkit's by at most {diff:.2e}")
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((7, 5)), layers.LSTM(6), layers.RepeatVector(4), layers.LSTM(6, return_sequences=True),
        layers.TimeDistributed(layers.Dense(5, activation="softmax"))])
    for w in model.weights:
        w.assign(rng.normal(scale=0.5, size=w.shape).astype("float32"))
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    model.save(OUT / "keras_seq2seq.keras")
    np.savez(OUT / "keras_seq2seq.npz", x=x, y=np.asarray(model.predict(x, verbose=0), dtype="float32"))
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}: worst difference {worst:.2e}")


def keras_functional(*names: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    worst = 0.0
    for name in names or FUNCTIONAL:
        path = FUNCTIONAL_OUT / f"rk_{name}.keras"
        data = dict(np.load(path.with_suffix(".npz")))
        xs = [data[k] for k in sorted(data) if k.startswith("x_")]
        ys = _flat(keras.saving.load_model(path)(xs if len(xs) > 1 else xs[0], training=False))
        data |= {f"y_keras_{i}": y for i, y in enumerate(ys)}
        diff = max(float(np.abs(y - data[f"y_{i}"]).max()) for i, y in enumerate(ys))
        worst = max(worst, diff)
        np.savez(path.with_suffix(".npz"), **data)
        print(f"{path.name}: Keras's outputs differ from rnnkit's by at most {diff:.2e}")
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}: worst difference {worst:.2e}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # make_functional_fixtures, beside this script
    steps = {"write": write, "keras": keras_check, "write-functional": write_functional,
             "keras-functional": keras_functional}
    if len(sys.argv) < 2 or sys.argv[1] not in steps or (sys.argv[2:] and "functional" not in sys.argv[1]):
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(steps)} (the functional steps: model names to limit them to)")
    steps[sys.argv[1]](*sys.argv[2:])
