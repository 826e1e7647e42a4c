"""Seed 003's dynamic_rnn graph: ``rnnkit graph examples/tf1_graph_dynamic.py -o dynamic.svg`` draws it.

``dynamic_rnn`` records one ``While`` op whose body holds the cell once,
however many steps the input has. Running the script prints the outputs'
shape, as the seed does.
"""

import numpy as np

import rnnkit.compat.v1 as tf

n_steps, n_inputs, n_neurons = 5, 3, 5
X = tf.placeholder(tf.float32, [None, n_steps, n_inputs], name="X")
basic_cell = tf.nn.rnn_cell.BasicRNNCell(num_units=n_neurons)
outputs, states = tf.nn.dynamic_rnn(basic_cell, X, dtype=tf.float32)
init = tf.global_variables_initializer()

with tf.Session() as sess:
    init.run()
    print(outputs.eval(feed_dict={X: np.random.rand(4, n_steps, n_inputs)}).shape)
