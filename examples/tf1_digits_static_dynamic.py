"""Seed 003's row-by-row classifier in TF1 graph style: ``static_rnn`` against ``dynamic_rnn``.

Each 8x8 digit (scikit-learn's bundled set, no download) is 8 time steps of
8 pixels; a BasicRNNCell of 150 units reads them, a dense layer maps the
last state to 10 logits, Adam minimizes the cross-entropy. Both loops run
the same cell: ``static_rnn`` records one cell op per step (the graph grows
with the steps), ``dynamic_rnn`` one loop op holding the cell once.

    python examples/tf1_digits_static_dynamic.py
    RNNKIT_TF1=tensorflow.compat.v1 python examples/tf1_digits_static_dynamic.py   # the same code on TF1

The second line is how docs/tf1.md's accuracy figures against TF1 were made.
"""

import importlib
import os

import numpy as np
from sklearn.datasets import load_digits

tf = importlib.import_module(os.environ.get("RNNKIT_TF1", "rnnkit.compat.v1"))
if hasattr(tf, "disable_eager_execution"):  # TensorFlow 2's compat.v1: TF1 graphs need this
    tf.disable_eager_execution()

n_steps, n_inputs, n_neurons, n_outputs = 8, 8, 150, 10


def digits(seed: int = 0):
    """(X_train, y_train, X_test, y_test): 1437 / 360 digits, pixels in [0, 1], shape (n, 8 steps, 8 inputs)."""
    data = load_digits()
    X = (data.images / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    order = np.random.RandomState(seed).permutation(len(X))
    train, test = order[:1437], order[1437:]
    return X[train], y[train], X[test], y[test]


def build(kind: str, learning_rate: float = 0.001):
    """The seed's graph, with ``static_rnn`` (one cell per step) or ``dynamic_rnn`` (one loop)."""
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs], name="X")
    y = tf.placeholder(tf.int32, [None], name="y")
    cell = tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons)
    if kind == "static":
        X_seqs = tf.unstack(tf.transpose(X, perm=[1, 0, 2]))
        outputs, states = tf.nn.static_rnn(cell, X_seqs, dtype=tf.float32)
    else:
        outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    logits = tf.layers.dense(states, n_outputs)
    xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    loss = tf.reduce_mean(xentropy)
    training_op = tf.train.AdamOptimizer(learning_rate=learning_rate).minimize(loss)
    correct = tf.nn.in_top_k(logits, y, 1)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return X, y, loss, training_op, accuracy


def main(kind: str = "dynamic", n_epochs: int = 30, batch_size: int = 150, seed: int = 42) -> float:
    """Train one model; print each epoch's loss and accuracy; return the final test accuracy."""
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    X_train, y_train, X_test, y_test = digits()
    X, y, loss, training_op, accuracy = build(kind)
    init = tf.global_variables_initializer()
    n_ops = len(tf.get_default_graph().get_operations())
    with tf.Session() as sess:
        init.run()
        for epoch in range(n_epochs):
            for batch in np.array_split(rng.permutation(len(X_train)), len(X_train) // batch_size):
                sess.run(training_op, feed_dict={X: X_train[batch], y: y_train[batch]})
            loss_val, acc_test = sess.run([loss, accuracy], feed_dict={X: X_test, y: y_test})
            print(f"{kind} epoch {epoch}: test loss {loss_val:.4f}, test accuracy {acc_test:.4f}")
    print(f"{kind}_rnn: {n_ops} ops in the graph, final test accuracy {acc_test:.4f}")
    return float(acc_test)


if __name__ == "__main__":
    for kind in ("static", "dynamic"):
        main(kind)
