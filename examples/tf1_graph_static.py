"""Seed 003's static_rnn graph: ``rnnkit graph examples/tf1_graph_static.py -o static.svg`` draws it.

``static_rnn`` calls the cell once per step, so the graph holds one
``BasicRNNCell`` op per step, each reading the same kernel and bias.
Running the script prints the outputs, as the seed does.
"""

import numpy as np

import rnnkit.compat.v1 as tf

n_steps, n_inputs, n_neurons = 5, 3, 5
X = tf.placeholder(tf.float32, [None, n_steps, n_inputs], name="X")
X_seqs = tf.unstack(tf.transpose(X, perm=[1, 0, 2]))
basic_cell = tf.contrib.rnn.BasicRNNCell(num_units=n_neurons)
output_seqs, states = tf.contrib.rnn.static_rnn(basic_cell, X_seqs, dtype=tf.float32)
outputs = tf.transpose(tf.stack(output_seqs), perm=[1, 0, 2])
init = tf.global_variables_initializer()

with tf.Session() as sess:
    init.run()
    print(outputs.eval(feed_dict={X: np.random.rand(4, n_steps, n_inputs)}).shape)
