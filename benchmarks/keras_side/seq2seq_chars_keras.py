"""keras-io's ``lstm_seq2seq`` in Keras 3, on the data of ``examples/seq2seq_chars.py``: the Keras side of the comparison.

Same generated task (reverse a string of letters), sizes, optimizer settings,
epochs and greedy decoding as the rnnkit example; one thread. Not run by the
tests; run with a separate environment that has Keras 3 and TensorFlow::

    python benchmarks/keras_side/seq2seq_chars_keras.py
"""

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

LETTERS = "abcdefgh"
START, END = "\t", "\n"


def make_pairs(n, rng, max_len=8):  # as in examples/seq2seq_chars.py, so the data is the same
    words = ["".join(rng.choice(list(LETTERS), size=rng.integers(1, max_len + 1))) for _ in range(n)]
    return [(w, w[::-1]) for w in words]


def one_hot(texts, chars, steps):
    index = {c: i for i, c in enumerate(chars)}
    out = np.zeros((len(texts), steps, len(chars)), dtype=np.float32)
    for i, text in enumerate(texts):
        for t, c in enumerate(text):
            out[i, t, index[c]] = 1.0
    return out


def build(n_in, n_out, latent_dim):
    encoder_inputs = keras.Input(shape=(None, n_in))
    masked = keras.layers.Masking()(encoder_inputs)
    _, state_h, state_c = keras.layers.LSTM(latent_dim, return_state=True)(masked)
    encoder_states = [state_h, state_c]

    decoder_inputs = keras.Input(shape=(None, n_out))
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(n_out, activation="softmax")
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_dense(decoder_outputs))

    encoder_model = keras.Model(encoder_inputs, encoder_states)
    state_inputs = [keras.Input(shape=(latent_dim,)), keras.Input(shape=(latent_dim,))]
    step_outputs, h, c = decoder_lstm(decoder_inputs, initial_state=state_inputs)
    decoder_model = keras.Model([decoder_inputs, *state_inputs], [decoder_dense(step_outputs), h, c])
    return model, encoder_model, decoder_model


def decode(encoder_model, decoder_model, x, target_chars, max_steps):
    states = list(encoder_model(x, training=False))
    token = np.zeros((len(x), 1, len(target_chars)), dtype=np.float32)
    token[:, 0, target_chars.index(START)] = 1.0
    picked = []
    for _ in range(max_steps):
        probs, *states = decoder_model([keras.ops.convert_to_tensor(token), *states], training=False)
        best = np.asarray(probs)[:, -1].argmax(-1)
        picked.append(best)
        token = np.eye(len(target_chars), dtype=np.float32)[best][:, None]
    return ["".join(target_chars[i] for i in row).split(END)[0] for row in np.stack(picked, 1).tolist()]


def main(n_train=6000, n_test=500, epochs=12, latent_dim=96, seed=0):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = make_pairs(n_train, rng), make_pairs(n_test, rng)
    input_chars, target_chars = LETTERS, LETTERS + START + END
    enc_steps = max(len(a) for a, _ in train + test)
    dec_steps = enc_steps + 2
    targets = [START + b + END for _, b in train]
    encoder_input = one_hot([a for a, _ in train], input_chars, enc_steps)
    decoder_input = one_hot([t[:-1] for t in targets], target_chars, dec_steps - 1)
    decoder_target = one_hot([t[1:] for t in targets], target_chars, dec_steps - 1)

    model, encoder_model, decoder_model = build(len(input_chars), len(target_chars), latent_dim)
    model.compile(keras.optimizers.Adam(3e-3, clipnorm=1.0), loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit([encoder_input, decoder_input], decoder_target, batch_size=64, epochs=epochs,
                        validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - start
    decoded = decode(encoder_model, decoder_model, one_hot([a for a, _ in test], input_chars, enc_steps),
                     target_chars, dec_steps)
    accuracy = float(np.mean([d == b for d, (_, b) in zip(decoded, test)]))
    print(f"keras {keras.__version__}: val_loss {history.history['val_loss'][-1]:.4f}; exact-match accuracy on "
          f"{n_test} unseen strings: {accuracy:.3f}; training {seconds:.1f}s")


if __name__ == "__main__":
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    main()
