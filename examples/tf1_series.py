"""Seed 003's time-series RNN in TF1 graph style: forecast one step ahead, then generate ("creative RNN").

The series is ``t sin(t) / 3 + 2 sin(5 t)``. Each training instance is 20
steps of it; the target is the same 20 steps shifted by one. A
BasicRNNCell of 100 ReLU units, wrapped by an OutputProjectionWrapper down
to 1 output per step, runs under ``dynamic_rnn``; Adam minimizes the MSE.
Afterwards the model is fed its own predictions, starting from zeros, to
generate a new sequence.

    python examples/tf1_series.py
    RNNKIT_TF1=tensorflow.compat.v1 python examples/tf1_series.py   # the same code on TF1
"""

import importlib
import os

import numpy as np

tf = importlib.import_module(os.environ.get("RNNKIT_TF1", "rnnkit.compat.v1"))
if hasattr(tf, "disable_eager_execution"):
    tf.disable_eager_execution()
# TF2 dropped contrib; its OutputProjectionWrapper lives in rnn_cell there.
rnn = tf.contrib.rnn if hasattr(tf, "contrib") else tf.nn.rnn_cell

t_min, t_max, resolution = 0, 30, 0.1
n_steps, n_inputs, n_neurons, n_outputs = 20, 1, 100, 1


def time_series(t):
    return t * np.sin(t) / 3 + 2 * np.sin(t * 5)


def next_batch(batch_size, n_steps, rng):
    """``batch_size`` windows of ``n_steps + 1`` points at random starts: (inputs, targets shifted by one)."""
    t0 = rng.rand(batch_size, 1) * (t_max - t_min - n_steps * resolution)
    Ts = t0 + np.arange(0.0, n_steps + 1) * resolution
    ys = time_series(Ts)
    return ys[:, :-1].reshape(-1, n_steps, 1), ys[:, 1:].reshape(-1, n_steps, 1)


def main(n_iterations: int = 1500, batch_size: int = 50, n_generate: int = 300, seed: int = 42):
    """Train, print the MSE every 100 iterations; return (last MSE, test MSE, generated sequence)."""
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs], name="X")
    y = tf.placeholder(tf.float32, [None, n_steps, n_outputs], name="y")
    cell = rnn.OutputProjectionWrapper(tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons, activation=tf.nn.relu),
                                       output_size=n_outputs)
    outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    loss = tf.reduce_mean(tf.square(outputs - y))  # MSE
    training_op = tf.train.AdamOptimizer(learning_rate=0.001).minimize(loss)
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        init.run()
        for iteration in range(n_iterations):
            X_batch, y_batch = next_batch(batch_size, n_steps, rng)
            sess.run(training_op, feed_dict={X: X_batch, y: y_batch})
            if iteration % 100 == 0:
                mse = loss.eval(feed_dict={X: X_batch, y: y_batch})
                print(iteration, "\tMSE:", mse)
        X_test, y_test = next_batch(200, n_steps, np.random.RandomState(seed + 1))
        test_mse = loss.eval(feed_dict={X: X_test, y: y_test})
        print("test MSE (200 fresh windows):", test_mse)
        sequence = [0.0] * n_steps  # the creative RNN: start from zeros, feed predictions back
        for _ in range(n_generate):
            X_batch = np.array(sequence[-n_steps:]).reshape(1, n_steps, 1)
            y_pred = sess.run(outputs, feed_dict={X: X_batch})
            sequence.append(float(y_pred[0, -1, 0]))
    print("generated:", np.round(sequence[n_steps : n_steps + 10], 3), "...")
    return float(mse), float(test_mse), np.array(sequence)


if __name__ == "__main__":
    main()
