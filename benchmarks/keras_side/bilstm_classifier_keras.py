"""A Bidirectional-LSTM classifier written with ``keras.Input``, on the data of ``examples/bilstm_classifier.py``.

The Keras side of the comparison: same generated reviews, sizes, optimizer
settings and epochs as the rnnkit example; one thread. Not run by the tests;
run with a separate environment that has Keras 3 and TensorFlow::

    python benchmarks/keras_side/bilstm_classifier_keras.py
"""

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

VOCAB, POSITIVE, NEGATIVE, NOT = 40, range(1, 9), range(9, 17), 17


def sentiment(words):  # as in examples/bilstm_classifier.py, so the data is the same
    sign = np.isin(words, POSITIVE).astype(int) - np.isin(words, NEGATIVE).astype(int)
    negated = np.r_[False, words[:-1] == NOT]
    return int(np.where(negated, -sign, sign).sum())


def make_reviews(n, rng, max_len=40):
    ids = np.zeros((n, max_len), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    i = 0
    while i < n:
        words = rng.integers(1, VOCAB, size=rng.integers(4, max_len + 1))
        score = sentiment(words)
        if score == 0:
            continue
        ids[i, : len(words)], labels[i] = words, int(score > 0)
        i += 1
    return ids, labels


def build(units=32):
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = keras.layers.Embedding(VOCAB, 32, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(units))(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def main(n_train=4000, n_test=1000, epochs=6, seed=0):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, y_train = make_reviews(n_train, rng)
    x_test, y_test = make_reviews(n_test, rng)
    model = build()
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    majority = max(y_test.mean(), 1 - y_test.mean())
    print(f"keras {keras.__version__}: test accuracy {accuracy:.3f} (majority class {majority:.3f}); training {seconds:.1f}s")


if __name__ == "__main__":
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    main()
