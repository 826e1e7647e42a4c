"""Seed 004's from-scratch RNN in TF1 graph style: ``h_t = tanh(h_{t-1} Wh + x_t Wx + b)`` over ``tf.scan``.

No cell class: the step is a Python function of graph tensors, and
``tf.scan`` records it once and runs it at every time step (rnnkit.scan at
run time). The last hidden state goes through a linear layer to 10 logits;
RMSProp minimizes the softmax cross-entropy on one-hot labels, logging
loss and accuracy as the seed does. Data: scikit-learn's 8x8 digits, rows
as steps (the seed used 28x28 MNIST).

    python examples/tf1_scratch_scan.py
    RNNKIT_TF1=tensorflow.compat.v1 python examples/tf1_scratch_scan.py   # the same code on TF1
"""

import importlib
import os

import numpy as np
from sklearn.datasets import load_digits

tf = importlib.import_module(os.environ.get("RNNKIT_TF1", "rnnkit.compat.v1"))
if hasattr(tf, "disable_eager_execution"):
    tf.disable_eager_execution()

element_size, time_steps, num_classes = 8, 8, 10
batch_size, hidden_layer_size = 128, 128


def one_hot(labels, n):
    return np.eye(n, dtype=np.float32)[labels]


def main(steps: int = 2000, learning_rate: float = 0.001, seed: int = 42) -> float:
    """Train for ``steps`` batches; print the loss/accuracy every 250; return the test accuracy (percent)."""
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    data = load_digits()
    X_all = (data.images / 16.0).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(X_all))
    X_train, y_train = X_all[order[:1437]], data.target[order[:1437]]
    X_test, y_test = X_all[order[1437:]], data.target[order[1437:]]

    inputs = tf.placeholder(tf.float32, shape=[None, time_steps, element_size], name="inputs")
    labels = tf.placeholder(tf.float32, shape=[None, num_classes], name="labels")
    Wx = tf.Variable(tf.truncated_normal([element_size, hidden_layer_size], mean=0, stddev=0.1))
    Wh = tf.Variable(tf.truncated_normal([hidden_layer_size, hidden_layer_size], mean=0, stddev=0.1))
    bx = tf.Variable(tf.zeros([hidden_layer_size]))

    def rnn_step(previous_hidden_state, x):
        return tf.tanh(tf.matmul(previous_hidden_state, Wh) + tf.matmul(x, Wx) + bx)

    input_reshaped = tf.transpose(inputs, perm=[1, 0, 2])  # (time, batch, features): scan runs along axis 0
    initial_hidden = tf.zeros([batch_size, hidden_layer_size])
    all_hidden_states = tf.scan(rnn_step, input_reshaped, initializer=initial_hidden, name="hidden_states")

    Wl = tf.Variable(tf.truncated_normal([hidden_layer_size, num_classes], mean=0, stddev=0.01))
    bl = tf.Variable(tf.truncated_normal([num_classes], mean=0, stddev=0.01))
    output = tf.matmul(all_hidden_states[-1], Wl) + bl

    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(logits=output, labels=labels))
    train_step = tf.train.RMSPropOptimizer(learning_rate).minimize(cross_entropy)
    correct_prediction = tf.equal(tf.argmax(labels, axis=1), tf.argmax(output, axis=1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32)) * 100

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(steps):
            batch = rng.choice(len(X_train), batch_size, replace=False)
            feed = {inputs: X_train[batch], labels: one_hot(y_train[batch], num_classes)}
            sess.run(train_step, feed_dict=feed)
            if i % 250 == 0:
                acc, loss = sess.run([accuracy, cross_entropy], feed_dict=feed)
                print(f"Iter {i}, Minibatch Loss = {loss:.6f}, Training Accuracy = {acc:.5f}")
        # The graph's initial state has batch_size rows, as in the seed: test in batches of that size.
        accs = []
        for start in range(0, len(X_test) - batch_size + 1, batch_size):
            sl = slice(start, start + batch_size)
            accs.append(sess.run(accuracy, feed_dict={inputs: X_test[sl], labels: one_hot(y_test[sl], num_classes)}))
    acc_test = float(np.mean(accs))
    print(f"Test Accuracy: {acc_test:.2f}")
    return acc_test


if __name__ == "__main__":
    main()
