"""Keras's "Bidirectional LSTM on IMDB" example, with ``rk.Input`` and ``rk.Model`` on generated reviews.

Reviews are sequences of word ids of varying length, right-padded with 0.
Words 1-8 are "positive", 9-16 "negative", 17 is "not", which turns the
sentiment of the word right after it, and the rest are neutral. A review is
positive when its positive words outnumber its negative ones, so the model
has to count over the whole sequence and read each word in its context. ``Embedding(mask_zero=True)``
makes the padding mask, which the functional graph hands to both
``Bidirectional`` LSTMs (Keras 3 mask propagation), so padding changes
nothing. Run: ``.venv/bin/python examples/bilstm_classifier.py``.
"""

import time

import numpy as np
import torch

import rnnkit as rk

VOCAB, POSITIVE, NEGATIVE, NOT = 40, range(1, 9), range(9, 17), 17


def sentiment(words: np.ndarray) -> int:
    """Positive minus negative words, a word right after "not" counting for the other side."""
    sign = np.isin(words, POSITIVE).astype(int) - np.isin(words, NEGATIVE).astype(int)
    negated = np.r_[False, words[:-1] == NOT]
    return int(np.where(negated, -sign, sign).sum())


def make_reviews(n: int, rng: np.random.Generator, max_len: int = 40) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((n, max_len), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    i = 0
    while i < n:
        words = rng.integers(1, VOCAB, size=rng.integers(4, max_len + 1))
        score = sentiment(words)
        if score == 0:  # no ties: every review has an answer
            continue
        ids[i, : len(words)], labels[i] = words, int(score > 0)
        i += 1
    return ids, labels


def build(units: int = 32) -> rk.Model:
    inputs = rk.Input(shape=(None,), dtype="int64")
    x = rk.Embedding(VOCAB, 32, mask_zero=True)(inputs)
    x = rk.Bidirectional(rk.LSTM(units, return_sequences=True))(x)
    x = rk.Bidirectional(rk.LSTM(units))(x)
    outputs = rk.Dense(2, activation="softmax")(x)
    return rk.Model(inputs, outputs)


def main(n_train: int = 4000, n_test: int = 1000, epochs: int = 6, seed: int = 0, verbose: int = 0) -> float:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, y_train = make_reviews(n_train, rng)
    x_test, y_test = make_reviews(n_test, rng)

    model = build()
    if verbose:
        model.summary()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], learning_rate=3e-3)
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1, verbose=verbose)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test)
    majority = max(y_test.mean(), 1 - y_test.mean())
    print(f"test accuracy {accuracy:.3f} (majority class {majority:.3f}); training {seconds:.1f}s")
    print(rk.explain(model))
    return float(accuracy)


if __name__ == "__main__":
    torch.set_num_threads(1)  # small matrices: a second thread costs more than it gives on a busy 2-core machine
    main(verbose=2)
