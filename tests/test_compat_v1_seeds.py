"""Seeds 003 and 004's TF1 scripts, pasted, run on rnnkit's graph mode.

Changed from the seeds, and only this: ``import tensorflow as tf`` is
``import rnnkit.compat.v1 as tf``; MNIST (a download) is scikit-learn's
bundled 8x8 digits, so 28 steps of 28 pixels become 8 of 8, and Keras's
``to_categorical`` a numpy one-hot; the epoch counts are cut to test time.
Where a seed's text leaves out a line its book had (``reset_graph``,
``shuffle_batch``, ``init`` in the MNIST snippet) the book's line is added,
and seed 003's ``tf.nn.rnn.BasicRNNCell`` typo is ``tf.nn.rnn_cell``.
"""

# The seeds' code is pasted as written, unused names and old string formatting included.
# ruff: noqa: F841, B007, UP031, UP032

import numpy as np
import pytest
from sklearn.datasets import load_digits

import rnnkit.compat.v1 as tf

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def reset_graph(seed=42):  # the book's helper the seed calls
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    np.random.seed(seed)


def shuffle_batch(X, y, batch_size):  # the book's helper the seed calls
    rnd_idx = np.random.permutation(len(X))
    n_batches = len(X) // batch_size
    for batch_idx in np.array_split(rnd_idx, n_batches):
        X_batch, y_batch = X[batch_idx], y[batch_idx]
        yield X_batch, y_batch


def digits_like_mnist():
    """``(X_train, y_train), (X_test, y_test)`` as keras's mnist.load_data gives them: uint8 images, int labels."""
    d = load_digits()
    images = (d.images * 255 / 16).astype(np.uint8)
    order = np.random.RandomState(0).permutation(len(images))
    train, test = order[:1437], order[1437:]
    return (images[train], d.target[train]), (images[test], d.target[test])


# ------------------------------------------------------------------ seed 003


def test_seed003_static_rnn_two_steps():
    n_inputs = 3
    n_neurons = 5
    X0 = tf.placeholder(tf.float32, [None, n_inputs])
    X1 = tf.placeholder(tf.float32, [None, n_inputs])
    basic_cell = tf.contrib.rnn.BasicRNNCell(num_units=n_neurons)
    output_seqs, states = tf.contrib.rnn.static_rnn(basic_cell, [X0, X1], dtype=tf.float32)
    Y0, Y1 = output_seqs
    init = tf.global_variables_initializer()
    X0_batch = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 1]])
    X1_batch = np.array([[9, 8, 7], [0, 0, 0], [6, 5, 4], [3, 2, 1]])
    with tf.Session() as sess:
        init.run()
        Y0_val, Y1_val = sess.run([Y0, Y1], feed_dict={X0: X0_batch, X1: X1_batch})
    print(Y0_val)
    print(Y1_val)
    assert Y0_val.shape == Y1_val.shape == (4, 5)
    np.testing.assert_allclose(Y1_val, states.eval(feed_dict={X0: X0_batch, X1: X1_batch}, session=tf.Session()))


def test_seed003_unstacked_static_and_dynamic():
    n_steps, n_inputs, n_neurons = 2, 3, 5
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    X_seqs = tf.unstack(tf.transpose(X, perm=[1, 0, 2]))
    basic_cell = tf.contrib.rnn.BasicRNNCell(num_units=n_neurons)
    output_seqs, states = tf.contrib.rnn.static_rnn(basic_cell, X_seqs, dtype=tf.float32)
    outputs = tf.transpose(tf.stack(output_seqs), perm=[1, 0, 2])
    init = tf.global_variables_initializer()
    X_batch = np.array([[[0, 1, 2], [9, 8, 7]], [[3, 4, 5], [0, 0, 0]], [[6, 7, 8], [6, 5, 4]], [[9, 0, 1], [3, 2, 1]]])
    with tf.Session() as sess:
        init.run()
        outputs_val = outputs.eval(feed_dict={X: X_batch})
    assert outputs_val.shape == (4, 2, 5)

    tf.reset_default_graph()
    n_steps = 20
    n_neurons = 5
    n_inputs = 3
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    basic_cell = tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons)
    outputs, states = tf.nn.dynamic_rnn(basic_cell, X, dtype=tf.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        outputs_val, states_val = sess.run([outputs, states], feed_dict={X: np.random.rand(4, 20, 3)})
    assert outputs_val.shape == (4, 20, 5)
    np.testing.assert_array_equal(outputs_val[:, -1], states_val)


def test_seed003_mnist_classifier_on_digits():
    n_steps = 8
    n_inputs = 8
    n_neurons = 150
    n_outputs = 10
    reset_graph()
    learning_rate = 0.001
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    y = tf.placeholder(tf.int32, [None])
    basic_cell = tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons)
    outputs, states = tf.nn.dynamic_rnn(basic_cell, X, dtype=tf.float32)
    logits = tf.layers.dense(states, n_outputs)
    xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    loss = tf.reduce_mean(xentropy)
    optimizer = tf.train.AdamOptimizer(learning_rate=learning_rate)
    training_op = optimizer.minimize(loss)
    correct = tf.nn.in_top_k(logits, y, 1)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    init = tf.global_variables_initializer()  # the book's line; the seed's text leaves it out
    (X_train, y_train), (X_test, y_test) = digits_like_mnist()
    X_train = X_train.astype(np.float32).reshape(-1, 8 * 8) / 255.0
    X_test = X_test.astype(np.float32).reshape(-1, 8 * 8) / 255.0
    y_train = y_train.astype(np.int32)
    y_test = y_test.astype(np.int32)
    X_valid, X_train = X_train[:200], X_train[200:]
    y_valid, y_train = y_train[:200], y_train[200:]
    X_test = X_test.reshape((-1, n_steps, n_inputs))
    n_epochs = 6
    batch_size = 150
    with tf.Session() as sess:
        init.run()
        for epoch in range(n_epochs):
            for X_batch, y_batch in shuffle_batch(X_train, y_train, batch_size):
                X_batch = X_batch.reshape((-1, n_steps, n_inputs))
                sess.run(training_op, feed_dict={X: X_batch, y: y_batch})
            acc_batch = accuracy.eval(feed_dict={X: X_batch, y: y_batch})
            acc_test = accuracy.eval(feed_dict={X: X_test, y: y_test})
            print(epoch, "Last batch accuracy:", acc_batch, "Test accuracy:", acc_test)
    assert acc_test > 0.8  # chance is 0.1; 30 epochs reach ~0.97


def test_seed003_time_series_and_creative_rnn():
    t_min, t_max = 0, 30
    resolution = 0.1

    def time_series(t):
        return t * np.sin(t) / 3 + 2 * np.sin(t * 5)

    def next_batch(batch_size, n_steps):
        t0 = np.random.rand(batch_size, 1) * (t_max - t_min - n_steps * resolution)
        Ts = t0 + np.arange(0.0, n_steps + 1) * resolution
        ys = time_series(Ts)
        return ys[:, :-1].reshape(-1, n_steps, 1), ys[:, 1:].reshape(-1, n_steps, 1)

    np.random.seed(42)
    n_steps = 20
    n_inputs = 1
    n_neurons = 100
    n_outputs = 1
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    y = tf.placeholder(tf.float32, [None, n_steps, n_outputs])
    cell = tf.contrib.rnn.OutputProjectionWrapper(
        tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons, activation=tf.nn.relu), output_size=n_outputs
    )
    outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    learning_rate = 0.001
    loss = tf.reduce_mean(tf.square(outputs - y))  # MSE
    optimizer = tf.train.AdamOptimizer(learning_rate=learning_rate)
    training_op = optimizer.minimize(loss)
    init = tf.global_variables_initializer()
    n_iterations = 300
    batch_size = 50
    mses = []
    with tf.Session() as sess:
        init.run()
        for iteration in range(n_iterations):
            X_batch, y_batch = next_batch(batch_size, n_steps)
            sess.run(training_op, feed_dict={X: X_batch, y: y_batch})
            if iteration % 100 == 0:
                mse = loss.eval(feed_dict={X: X_batch, y: y_batch})
                print(iteration, "\tMSE:", mse)
                mses.append(mse)
        sequence = [0.0] * n_steps
        for iteration in range(30):
            X_batch = np.array(sequence[-n_steps:]).reshape(1, n_steps, 1)
            y_pred = sess.run(outputs, feed_dict={X: X_batch})
            sequence.append(y_pred[0, -1, 0])
    assert mses[-1] < mses[0] / 10
    assert len(sequence) == 50 and np.all(np.isfinite(sequence))


def test_seed003_deep_device_dropout_and_lstm():
    n_steps, n_inputs = 20, 1
    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    n_neurons = 100
    n_layers = 3
    layers = [tf.contrib.rnn.BasicRNNCell(num_units=n_neurons, activation=tf.nn.relu) for layer in range(n_layers)]
    multi_layer_cell = tf.contrib.rnn.MultiRNNCell(layers)
    outputs, states = tf.nn.dynamic_rnn(multi_layer_cell, X, dtype=tf.float32)
    assert len(states) == 3 and tuple(outputs.shape) == (None, 20, 100)

    class DeviceCellWrapper(tf.contrib.rnn.RNNCell):
        def __init__(self, device, cell):
            self._cell = cell
            self._device = device

        @property
        def state_size(self):
            return self._cell.state_size

        @property
        def output_size(self):
            return self._cell.output_size

        def __call__(self, inputs, state, scope=None):
            with tf.device(self._device):
                return self._cell(inputs, state, scope)

    devices = ["/gpu:0", "/gpu:1", "/gpu:2"]
    cells = [DeviceCellWrapper(dev, tf.contrib.rnn.BasicRNNCell(num_units=n_neurons)) for dev in devices]
    multi_layer_cell = tf.contrib.rnn.MultiRNNCell(cells)
    outputs, states = tf.nn.dynamic_rnn(multi_layer_cell, X, dtype=tf.float32)

    keep_prob = 0.5
    cells = [tf.contrib.rnn.BasicRNNCell(num_units=n_neurons) for layer in range(n_layers)]
    cells_drop = [tf.contrib.rnn.DropoutWrapper(cell, input_keep_prob=keep_prob) for cell in cells]
    multi_layer_cell = tf.contrib.rnn.MultiRNNCell(cells_drop)
    rnn_outputs, states = tf.nn.dynamic_rnn(multi_layer_cell, X, dtype=tf.float32)

    n_neurons, n_inputs, n_steps = 5, 3, 2
    X0 = tf.placeholder(tf.float32, [None, n_inputs])
    X1 = tf.placeholder(tf.float32, [None, n_inputs])
    X2 = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    X_seqs = tf.unstack(tf.transpose(X2, perm=[1, 0, 2]))
    basic_cell = tf.contrib.rnn.BasicLSTMCell(num_units=n_neurons)
    output_seqs, lstm_states = tf.contrib.rnn.static_rnn(basic_cell, X_seqs, dtype=tf.float32)
    lstm_outputs = tf.transpose(tf.stack(output_seqs), perm=[1, 0, 2])

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        a, b, c, (lc, lh) = sess.run([outputs, rnn_outputs, lstm_outputs, lstm_states],
                                     feed_dict={X: np.random.rand(2, 20, 1), X2: np.random.rand(4, 2, 3)})
    assert a.shape == b.shape == (2, 20, 100) and c.shape == (4, 2, 5)
    np.testing.assert_array_equal(c[:, -1], lh)
    kernel = [v for v in tf.global_variables() if v.op.name.endswith("basic_lstm_cell/kernel")][0]
    assert tuple(kernel.shape) == (3, 20)  # TF1's (20, 8) kernel is this kernel over [x, h], split by rows
    gpus = {op.device for op in tf.get_default_graph().get_operations() if op.type == "BasicRNNCell"}
    assert {"/gpu:0", "/gpu:1", "/gpu:2"} <= gpus


# ------------------------------------------------------------------ seed 004


def to_categorical(labels, num_classes):  # Keras's, for the seed's DataLoader
    return np.eye(num_classes, dtype=np.float32)[labels]


class DataLoader:
    """Container for a dataset."""

    def __init__(self, images, labels, num_classes):
        if images.shape[0] != labels.shape[0]:
            raise ValueError("images.shape: %s labels.shape: %s" % (images.shape, labels.shape))
        self.num_classes = num_classes
        self._images = images
        self._labels = labels
        self._num_examples = images.shape[0]
        self._epochs_completed = 0
        self._index_in_epoch = 0

    def next_batch(self, batch_size, shuffle=True):
        """Return the next `batch_size` examples from this data set."""
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle_images_and_labels()
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            rest_num_examples = self._num_examples - start
            rest_images = self._images[start : self._num_examples]
            rest_labels = self._labels[start : self._num_examples]
            if shuffle:
                self._shuffle_images_and_labels()
            start = 0
            self._index_in_epoch = batch_size - rest_num_examples
            end = self._index_in_epoch
            new_images = self._images[start:end]
            new_labels = self._labels[start:end]
            images = np.concatenate((rest_images, new_images), axis=0)
            labels = np.concatenate((rest_labels, new_labels), axis=0)
            return images, to_categorical(labels, self.num_classes)
        else:
            self._index_in_epoch += batch_size
            end = self._index_in_epoch
            return (self._images[start:end], to_categorical(self._labels[start:end], self.num_classes))

    def _shuffle_images_and_labels(self):
        permutated = np.arange(self._num_examples)
        np.random.shuffle(permutated)
        self._images[permutated]
        self._labels[permutated]


def test_seed004_scratch_rnn_over_scan():
    np.random.seed(0)
    tf.set_random_seed(0)
    (X_train, Y_train), (X_test, Y_test) = digits_like_mnist()
    X_train = X_train.astype("float32")
    X_test = X_test.astype("float32")
    X_train /= 255
    X_test /= 255
    element_size = 8
    time_steps = 8
    num_classes = 10
    batch_size = 128
    hidden_layer_size = 128
    data_loader = DataLoader(X_train, Y_train, num_classes)
    X_batch, y_batch = data_loader.next_batch(batch_size)
    assert y_batch.shape == (128, 10) and X_batch.shape == (128, 8, 8)

    inputs = tf.placeholder(tf.float32, shape=[None, time_steps, element_size], name="inputs")
    labels = tf.placeholder(tf.float32, shape=[None, num_classes], name="labels")
    Wx = tf.Variable(tf.zeros([element_size, hidden_layer_size]))
    Wh = tf.Variable(tf.zeros([hidden_layer_size, hidden_layer_size]))
    bx = tf.Variable(tf.zeros([hidden_layer_size]))

    def rnn_step(previous_hidden_state, x):
        current_hidden_state = tf.tanh(tf.matmul(previous_hidden_state, Wh) + tf.matmul(x, Wx) + bx)
        return current_hidden_state

    input_reshaped = tf.transpose(inputs, perm=[1, 0, 2])
    initial_hidden = tf.zeros([batch_size, hidden_layer_size])
    all_hidden_states = tf.scan(rnn_step, input_reshaped, initializer=initial_hidden, name="hidden_states")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        data_loader = DataLoader(X_train, Y_train, num_classes)
        X_batch, y_batch = data_loader.next_batch(batch_size)
        temp = sess.run(all_hidden_states, feed_dict={inputs: X_batch, labels: y_batch})
        print(temp.shape)
    assert temp.shape == (8, 128, 128)

    Wl = tf.Variable(tf.truncated_normal([hidden_layer_size, num_classes], mean=0, stddev=0.01))
    bl = tf.Variable(tf.truncated_normal([num_classes], mean=0, stddev=0.01))
    output = tf.matmul(all_hidden_states[-1], Wl) + bl
    learning_rate = 0.001
    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(logits=output, labels=labels))
    train_step = tf.train.RMSPropOptimizer(learning_rate).minimize(cross_entropy)
    correct_prediction = tf.equal(tf.argmax(labels, axis=1), tf.argmax(output, axis=1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32)) * 100

    X_test_batch = X_test[:batch_size]
    y_test_batch = to_categorical(Y_test[:batch_size], num_classes)
    data_loader = DataLoader(X_train, Y_train, num_classes)
    epochs = 400
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(epochs):
            X_batch, y_batch = data_loader.next_batch(batch_size)
            sess.run(train_step, feed_dict={inputs: X_batch, labels: y_batch})
            if i % 100 == 0:
                acc, loss = sess.run([accuracy, cross_entropy], feed_dict={inputs: X_batch, labels: y_batch})
                print("Iter " + str(i) + ", Minibatch Loss =", "{:.6f}".format(loss) + ", Training Accuracy =", "{:.5f}".format(acc))
        print("Optimization finished!")
        acc_test = sess.run(accuracy, feed_dict={inputs: X_test_batch, labels: y_test_batch})
        print("Test Accuracy: ", acc_test)
    assert acc_test > 60  # percent; chance is 10
