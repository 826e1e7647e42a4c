"""Regenerate tests/data/keras_functional/: small Keras 3 functional models and the outputs Keras computes.

Each model below is written once against Keras's names (``L.Input``,
``L.Model``, ``L.LSTM``...). This script runs it with ``L`` = Keras, and
tests/test_functional_keras.py runs the same function with ``L`` = rnnkit,
copies the weights and compares the outputs: so the test also shows a Keras
functional program running with only the import changed. Run once, with
Keras 3 in a separate environment (never rnnkit's own)::

    /path/to/keras-env/bin/python scripts/make_functional_fixtures.py
    /path/to/keras-env/bin/python scripts/make_functional_fixtures.py keras-files

The second form saves, for each model of ``KERAS_FILES``, ``NAME.keras``
(``model.save``) with the weights of ``NAME.npz``, for ``rk.load_model``'s tests.
Model names after either form limit it to those models.

For each model NAME it writes ``NAME.npz`` (plain arrays, readable with
``allow_pickle=False``):

- ``x_0``, ``x_1``...: the inputs, in the model's input order;
- ``w_000``, ``w_001``...: random weights, in Keras's ``model.get_weights()`` order;
- ``layer_names``, ``layer_counts``: the layers that own them, in that order, and how many each has;
- ``y_0``, ``y_1``...: Keras's outputs for the inputs (flat, in the model's output order).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras_functional"


# ------------------------------------------------------------------ models
# name -> (build(L), inputs(rng)). Every layer is named, so the test finds it by name.


def two_inputs(L):
    seq, side = L.Input((6, 3), name="seq"), L.Input((4,), name="side")
    h = L.SimpleRNN(5, name="rnn")(seq)
    s = L.Dense(2, activation="tanh", name="side_dense")(side)
    joined = L.Concatenate(name="join")([h, s])
    return L.Model([seq, side], L.Dense(3, activation="softmax", name="head")(joined))


def encoder_decoder(L):
    """keras-io's lstm_seq2seq: the decoder starts from the encoder's return_state; three outputs."""
    enc_in, dec_in = L.Input((None, 3), name="enc_in"), L.Input((None, 2), name="dec_in")
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    seq, h2, c2 = L.LSTM(4, return_sequences=True, return_state=True, name="decoder")(dec_in, initial_state=[h, c])
    probs = L.Dense(3, activation="softmax", name="probs")(seq)
    return L.Model([enc_in, dec_in], [probs, h2, c2])


def gru_state_chain(L):
    """A GRU's state seeds a GRU (reset_after) and a SimpleRNN, merged by Add."""
    a_in, b_in = L.Input((5, 3), name="a_in"), L.Input((7, 2), name="b_in")
    _, h = L.GRU(4, return_state=True, name="gru_a")(a_in)
    from_gru = L.GRU(4, name="gru_b")(b_in, initial_state=[h])
    from_rnn = L.SimpleRNN(4, name="rnn_b")(b_in, initial_state=[h])
    return L.Model([a_in, b_in], L.Add(name="add")([from_gru, from_rnn]))


def shared_layer(L):
    """One LSTM called on two inputs (same weights), the results added and concatenated."""
    a, b = L.Input((5, 3), name="a"), L.Input((5, 3), name="b")
    shared = L.LSTM(4, name="shared")
    ha, hb = shared(a), shared(b)
    joined = L.Concatenate(name="join")([L.Add(name="add")([ha, hb]), hb])
    return L.Model([a, b], L.Dense(2, name="head")(joined))


def embedding_mask(L):
    """Embedding(mask_zero=True) -> LSTM (sequences) -> LSTM: the padding mask reaches both."""
    ids = L.Input((None,), dtype="int32", name="ids")
    x = L.Embedding(12, 3, mask_zero=True, name="embed")(ids)
    x = L.LSTM(4, return_sequences=True, name="lstm_seq")(x)
    return L.Model(ids, L.LSTM(3, name="lstm_last")(x))


def masking_bidirectional(L):
    """Masking -> Bidirectional(LSTM, sequences) -> Dense (passes the mask) -> Bidirectional(GRU, ave)."""
    inp = L.Input((6, 2), name="inp")
    x = L.Masking(name="masking")(inp)
    x = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), name="bi_lstm")(x)
    x = L.Dense(3, name="dense")(x)
    return L.Model(inp, L.Bidirectional(L.GRU(2, name="gru"), merge_mode="ave", name="bi_gru")(x))


def merged_masks(L):
    """Two masked inputs through one shared Embedding, joined by Concatenate: a step counts where both have a token."""
    a_in, b_in = L.Input((5,), dtype="int32", name="a_ids"), L.Input((5,), dtype="int32", name="b_ids")
    emb = L.Embedding(9, 2, mask_zero=True, name="embed")
    joined = L.Concatenate(name="join")([emb(a_in), emb(b_in)])
    return L.Model([a_in, b_in], L.GRU(3, name="gru")(joined))


def bidirectional_pair(L):
    """Masking -> Bidirectional(LSTM, sequences, merge_mode=None): the two halves are two outputs."""
    inp = L.Input((6, 2), name="inp")
    x = L.Masking(name="masking")(inp)
    forward, backward = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), merge_mode=None, name="bi")(x)
    return L.Model(inp, [forward, L.Dense(2, name="head")(backward)])


def bidirectional_halves_masked(L):
    """Each unmerged half of a masked Bidirectional goes on with the mask, to a GRU of its own."""
    inp = L.Input((6, 2), name="inp")
    forward, backward = L.Bidirectional(L.GRU(3, return_sequences=True, name="gru"), merge_mode=None,
                                        name="bi")(L.Masking(name="masking")(inp))
    return L.Model(inp, [L.GRU(2, name="gru_f")(forward), L.GRU(2, name="gru_b")(backward)])


def masked_add(L):
    """Two masked inputs through one shared Embedding, joined by Add: an elementwise merge of masks."""
    a_in, b_in = L.Input((5,), dtype="int32", name="a_ids"), L.Input((5,), dtype="int32", name="b_ids")
    emb = L.Embedding(9, 2, mask_zero=True, name="embed")
    return L.Model([a_in, b_in], L.GRU(3, name="gru")(L.Add(name="add")([emb(a_in), emb(b_in)])))


def bilstm_classifier(L):
    """keras-io's bidirectional_lstm_imdb, small: Embedding(mask_zero) -> BiLSTM (sequences) -> BiLSTM -> Dense."""
    ids = L.Input((None,), dtype="int32", name="ids")
    x = L.Embedding(20, 4, mask_zero=True, name="embed")(ids)
    x = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm_a"), name="bi_a")(x)
    x = L.Bidirectional(L.LSTM(3, name="lstm_b"), name="bi_b")(x)
    return L.Model(ids, L.Dense(1, activation="sigmoid", name="head")(x))


def seq2seq_decoder(L):
    """keras-io lstm_seq2seq's inference decoder: the states come in as inputs and go out with the probabilities."""
    dec_in, h_in, c_in = L.Input((None, 3), name="dec_in"), L.Input((4,), name="h_in"), L.Input((4,), name="c_in")
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="decoder")(dec_in, initial_state=[h_in, c_in])
    return L.Model([dec_in, h_in, c_in], [L.Dense(3, activation="softmax", name="probs")(seq), h, c])


def concat_partly_masked(L):
    """A masked and an unmasked sequence joined on the features: Keras counts the unmasked one valid everywhere."""
    a_in, b_in = L.Input((6, 2), name="a"), L.Input((6, 3), name="b")
    joined = L.Concatenate(name="join")([L.Masking(name="masking")(a_in), b_in])
    return L.Model([a_in, b_in], L.GRU(3, name="gru")(joined))


def concat_time(L):
    """Two masked sequences joined end to end on the time axis, and their masks with them."""
    a_in, b_in = L.Input((6, 2), name="a"), L.Input((4, 2), name="b")
    joined = L.Concatenate(axis=1, name="join")([L.Masking(name="mask_a")(a_in), L.Masking(-1.0, name="mask_b")(b_in)])
    return L.Model([a_in, b_in], L.LSTM(3, name="lstm")(joined))


def subtract_flatten(L):
    """Subtract of two sequences, flattened into a Dense: layers a Keras program uses around RNNs."""
    a_in, b_in = L.Input((5, 3), name="a"), L.Input((5, 3), name="b")
    diff = L.Subtract(name="diff")([L.LSTM(4, return_sequences=True, name="lstm_a")(a_in),
                                    L.GRU(4, return_sequences=True, name="gru_b")(b_in)])
    return L.Model([a_in, b_in], L.Dense(2, name="head")(L.Flatten(name="flat")(diff)))


def bilstm_average_pooled(L):
    """The usual BiLSTM classifier head: Embedding(mask_zero) -> BiLSTM (sequences) -> GlobalAveragePooling1D
    (the mean of the valid steps only) -> Dense."""
    ids = L.Input((None,), dtype="int32", name="ids")
    x = L.Embedding(20, 4, mask_zero=True, name="embed")(ids)
    x = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), name="bi")(x)
    x = L.GlobalAveragePooling1D(name="avg")(x)
    return L.Model(ids, L.Dense(2, activation="softmax", name="head")(x))


def normalized_pooled(L):
    """Masking -> GRU (sequences) -> LayerNormalization, Activation, SpatialDropout1D, Rescaling (each passes the
    mask on) -> the average (masked), the max over steps (reads no mask) and the max over features per step
    (channels_first); a second branch normalizes over steps and features together and averages with keepdims."""
    inp = L.Input((6, 2), name="inp")
    x = L.GRU(4, return_sequences=True, name="gru")(L.Masking(name="masking")(inp))
    x = L.LayerNormalization(name="norm")(x)
    x = L.Activation("tanh", name="act")(x)
    x = L.SpatialDropout1D(0.3, name="drop")(x)
    x = L.Rescaling(2.0, -0.5, name="rescale")(x)
    avg = L.GlobalAveragePooling1D(name="avg")(x)
    top = L.GlobalMaxPooling1D(name="max")(x)
    per_step = L.GlobalMaxPooling1D(data_format="channels_first", name="max_features")(x)
    whole = L.LayerNormalization(axis=[1, 2], epsilon=0.01, center=False, name="norm_all")(x)
    kept = L.Flatten(name="flat")(L.GlobalAveragePooling1D(keepdims=True, name="avg_kept")(whole))
    return L.Model(inp, L.Dense(3, name="head")(L.Concatenate(name="join")([avg, top, per_step, kept])))


def mixed_bfloat16(L):
    """A model under the dtype policy "mixed_bfloat16" (weights float32, computed in bfloat16), its head float32."""
    inp = L.Input((6, 3), name="inp")
    x = L.LSTM(8, return_sequences=True, dtype="mixed_bfloat16", name="lstm")(inp)
    x = L.LayerNormalization(dtype="mixed_bfloat16", name="norm")(x)
    x = L.GlobalAveragePooling1D(dtype="mixed_bfloat16", name="avg")(x)
    return L.Model(inp, L.Dense(3, activation="softmax", dtype="float32", name="head")(x))


def _sequences(rng, batch, time, features):
    return rng.normal(size=(batch, time, features)).astype("float32")


def _ids(rng, lengths, time, vocab):
    ids = np.zeros((len(lengths), time), dtype="int32")
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, vocab, size=n)
    return ids


def _padded(rng):
    x = _sequences(rng, 4, 6, 2)
    x[0, 4:] = 0.0  # right padding
    x[2, 1:] = 0.0  # one real step
    x[3, 2] = 0.0  # a gap in the middle
    return [x]


def _time_padded(rng):
    x = _sequences(rng, 4, 4, 2)
    x[1, 2:] = -1.0  # Masking(-1.0) drops these steps
    x[3, 0] = -1.0
    return x


MODELS = {
    "two_inputs": (two_inputs, lambda rng: [_sequences(rng, 4, 6, 3), rng.normal(size=(4, 4)).astype("float32")]),
    "encoder_decoder": (encoder_decoder, lambda rng: [_sequences(rng, 3, 7, 3), _sequences(rng, 3, 5, 2)]),
    "gru_state_chain": (gru_state_chain, lambda rng: [_sequences(rng, 3, 5, 3), _sequences(rng, 3, 7, 2)]),
    "shared_layer": (shared_layer, lambda rng: [_sequences(rng, 4, 5, 3), _sequences(rng, 4, 5, 3)]),
    "embedding_mask": (embedding_mask, lambda rng: [_ids(rng, [3, 1, 7, 5], 7, 12)]),
    "masking_bidirectional": (masking_bidirectional, _padded),
    "merged_masks": (merged_masks, lambda rng: [_ids(rng, [3, 5, 2], 5, 9), _ids(rng, [4, 1, 5], 5, 9)]),
    "bidirectional_pair": (bidirectional_pair, _padded),
    "masked_add": (masked_add, lambda rng: [_ids(rng, [3, 5, 2], 5, 9), _ids(rng, [4, 1, 5], 5, 9)]),
    "bilstm_classifier": (bilstm_classifier, lambda rng: [_ids(rng, [6, 2, 8, 1], 8, 20)]),
    "concat_partly_masked": (concat_partly_masked, lambda rng: [_padded(rng)[0], _sequences(rng, 4, 6, 3)]),
    "concat_time": (concat_time, lambda rng: [_padded(rng)[0], _time_padded(rng)]),
    "seq2seq_decoder": (seq2seq_decoder,
                        lambda rng: [_sequences(rng, 3, 5, 3), rng.normal(size=(3, 4)).astype("float32"),
                                     rng.normal(size=(3, 4)).astype("float32")]),
    "subtract_flatten": (subtract_flatten, lambda rng: [_sequences(rng, 4, 5, 3), _sequences(rng, 4, 5, 3)]),
    "bidirectional_halves_masked": (bidirectional_halves_masked, _padded),
    "bilstm_average_pooled": (bilstm_average_pooled, lambda rng: [_ids(rng, [6, 2, 8, 1], 8, 20)]),
    "normalized_pooled": (normalized_pooled, _padded),
}

#: Models whose layers compute in bfloat16: Keras's and rnnkit's numbers agree to bfloat16's precision only,
#: so their tests take a tolerance of their own.
MIXED = {"mixed_bfloat16": (mixed_bfloat16, lambda rng: [_sequences(rng, 4, 6, 3)])}

#: The names ``L`` holds: Keras's (or rnnkit's) Input, Model and these layers.
LAYER_NAMES = ("Activation", "Add", "Bidirectional", "Concatenate", "Dense", "Embedding", "Flatten",
               "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GRU", "LayerNormalization", "LSTM", "Masking",
               "Rescaling", "SimpleRNN", "SpatialDropout1D", "Subtract")


# ------------------------------------------------------------------- Keras


def keras_names():
    """``L`` for Keras: ``Input``, ``Model`` and the layers under one name each."""
    import keras  # lazy: only this script's separate environment has Keras

    class L:
        Input, Model = keras.Input, keras.Model

    for name in LAYER_NAMES:
        setattr(L, name, getattr(keras.layers, name))
    return L


def main(names=()):
    """Write ``NAME.npz`` for each of ``names`` (all of ``MODELS`` when empty)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    L = keras_names()
    OUT.mkdir(parents=True, exist_ok=True)
    for k, (name, (build, make_inputs)) in enumerate({**MODELS, **MIXED}.items()):
        if names and name not in names:
            continue
        rng = np.random.default_rng(100 + k)
        model = build(L)
        # Random weights everywhere (Keras starts biases at zero, which would hide a bias mix-up).
        model.set_weights([(0.5 * rng.normal(size=w.shape)).astype("float32") for w in model.get_weights()])
        owners = [layer for layer in model.layers if layer.weights]
        per_layer = [w for layer in owners for w in layer.get_weights()]
        flat = model.get_weights()
        assert len(per_layer) == len(flat) and all(np.array_equal(a, b) for a, b in zip(per_layer, flat)), name
        xs = make_inputs(rng)
        ys = model(xs if len(xs) > 1 else xs[0], training=False)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        arrays = {f"x_{i}": x for i, x in enumerate(xs)}
        arrays |= {f"w_{i:03d}": w for i, w in enumerate(flat)}
        arrays |= {f"y_{i}": np.asarray(y) for i, y in enumerate(ys)}
        arrays["layer_names"] = np.array([layer.name for layer in owners])
        arrays["layer_counts"] = np.array([len(layer.weights) for layer in owners])
        np.savez(OUT / f"{name}.npz", **arrays)
        print(f"{name}: inputs {[x.shape for x in xs]}, {len(flat)} weights, outputs {[a.shape for a in map(np.asarray, ys)]}")


#: The models also saved as Keras 3 ``.keras`` archives: all of them, for rk.load_model's tests.
KERAS_FILES = (*MODELS, *MIXED)


def keras_files(names=()):
    """Save ``NAME.keras`` for each of ``names`` (all of ``KERAS_FILES`` when empty), with the weights
    the npz already holds."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    L = keras_names()
    for name in names or KERAS_FILES:
        data = np.load(OUT / f"{name}.npz")
        model = {**MODELS, **MIXED}[name][0](L)
        model.set_weights([data[k] for k in sorted(data.files) if k.startswith("w_")])
        model.save(OUT / f"{name}.keras")
        print(f"{name}.keras written")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["keras-files"]:
        keras_files(sys.argv[2:])
    else:
        main(sys.argv[1:])
