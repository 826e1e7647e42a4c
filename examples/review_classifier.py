"""keras-io's "Bidirectional LSTM on IMDB" as a ``Sequential``, with ``rk.utils.pad_sequences``, on generated reviews.

The Keras example pads the reviews' word ids with ``keras.utils.pad_sequences``
(zeros in front, Keras's default), embeds them, runs two ``Bidirectional``
LSTMs and ends in one sigmoid, trained with ``binary_crossentropy`` and
``metrics=["accuracy"]`` (binary accuracy, as Keras picks it for that loss).
The same code runs here with ``rk`` in place of ``keras.layers``. Nothing is
downloaded: a review is a list of word ids of random length; words 1-6 are
positive, 7-12 negative, the rest neutral, and a review is positive when its
positive words outnumber its negative ones. ``Embedding(mask_zero=True)`` masks
the padding. Run: ``.venv/bin/python examples/review_classifier.py``.
"""

import time

import numpy as np
import torch

import rnnkit as rk

VOCAB, MAXLEN = 30, 40
POSITIVE, NEGATIVE = range(1, 7), range(7, 13)


def make_reviews(n: int, rng: np.random.Generator) -> tuple[list[list[int]], np.ndarray]:
    """``n`` reviews (lists of ids in 1..VOCAB-1, 5 to 60 words: some longer than MAXLEN) and their labels."""
    reviews, labels = [], []
    while len(reviews) < n:
        words = rng.integers(1, VOCAB, size=int(rng.integers(5, 61)))
        score = np.isin(words[-MAXLEN:], POSITIVE).sum() - np.isin(words[-MAXLEN:], NEGATIVE).sum()
        if score == 0:  # no ties: every review has a label
            continue
        reviews.append(words.tolist())
        labels.append(int(score > 0))
    return reviews, np.array(labels)


def main(n_train: int = 2000, n_test: int = 500, epochs: int = 5, seed: int = 0, verbose: int = 0) -> float:
    """Train and return the test accuracy."""
    torch.set_num_threads(1)  # many small steps: one CPU thread is the fastest
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    reviews, labels = make_reviews(n_train + n_test, rng)
    # As in the Keras example: pad (and cut) to MAXLEN words, keeping each review's end.
    x = rk.utils.pad_sequences(reviews, maxlen=MAXLEN)
    x_train, y_train, x_test, y_test = x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]

    model = rk.Sequential([
        rk.Input((MAXLEN,)),
        rk.Embedding(VOCAB, 16, mask_zero=True),
        rk.Bidirectional(rk.LSTM(16, return_sequences=True)),
        rk.Bidirectional(rk.LSTM(16)),
        rk.Dense(1, activation="sigmoid"),
    ])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], learning_rate=3e-3)
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_test, y_test), verbose=verbose)
    loss, accuracy = model.evaluate(x_test, y_test)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f} after {epochs} epochs in {time.perf_counter() - start:.1f}s")
    return accuracy


if __name__ == "__main__":
    main(verbose=2)
