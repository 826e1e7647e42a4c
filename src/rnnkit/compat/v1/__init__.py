"""TF1's graph mode on PyTorch: ``import rnnkit.compat.v1 as tf`` and seed 003's and 004's scripts run.

    import rnnkit.compat.v1 as tf

    X = tf.placeholder(tf.float32, [None, n_steps, n_inputs])
    y = tf.placeholder(tf.int32, [None])
    cell = tf.nn.rnn_cell.BasicRNNCell(num_units=150)
    outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)   # one While op, the cell inside once
    logits = tf.layers.dense(states, 10)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    training_op = tf.train.AdamOptimizer(learning_rate=0.001).minimize(loss)
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        init.run()
        sess.run(training_op, feed_dict={X: X_batch, y: y_batch})

Building records a graph (``graph.py``: ops with their torch functions,
inferred shapes, scoped names); a ``Session`` (``session.py``) runs the part
the fetches need, planned once per fetches and feeds. The cells are
rnnkit.v1's (``rnn.py``), so ``dynamic_rnn`` runs the fused kernels and
gives eager mode's numbers. ``draw`` draws a graph (SVG, PNG) and writes it
for TensorBoard. A TF1 name not here raises AttributeError naming it.

What differs from TF1: variables live in the graph, not the session (two
sessions on one graph share them); ``tf.device`` is recorded, not used to
place; ops not listed in docs/tf1.md ("Graph mode") are missing.
"""

import torch

from . import contrib, draw, layers, nn, train
from .graph import (
    FailedPreconditionError,
    Graph,
    InvalidArgumentError,
    Operation,
    Tensor,
    TensorShape,
    bool_,
    constant,
    convert_to_tensor,
    device,
    float16,
    float32,
    float64,
    get_default_graph,
    get_default_session,
    int8,
    int16,
    int32,
    int64,
    placeholder,
    reset_default_graph,
    uint8,
    unsupported,
)
from .initializers import (
    constant_initializer,
    glorot_normal_initializer,
    glorot_uniform_initializer,
    ones_initializer,
    orthogonal_initializer,
    random_normal_initializer,
    random_uniform_initializer,
    truncated_normal_initializer,
    zeros_initializer,
)
from .loops import scan
from .ops import (
    abs,
    add,
    argmax,
    argmin,
    cast,
    clip_by_value,
    concat,
    divide,
    equal,
    exp,
    expand_dims,
    greater,
    greater_equal,
    identity,
    less,
    less_equal,
    log,
    matmul,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    ones,
    ones_like,
    pow,
    random_normal,
    random_uniform,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_sum,
    reshape,
    sigmoid,
    sqrt,
    square,
    squeeze,
    stack,
    strided_slice,
    subtract,
    tanh,
    transpose,
    truncated_normal,
    unstack,
    zeros,
    zeros_like,
)
from .session import InteractiveSession, Session
from .variables import (
    AUTO_REUSE,
    Variable,
    VariableScope,
    get_variable,
    get_variable_scope,
    global_variables,
    global_variables_initializer,
    name_scope,
    trainable_variables,
    variable_scope,
    variables_initializer,
)

bool = bool_  # noqa: A001 - TF1's name for the dtype
sub, mul, div, truediv = subtract, multiply, divide, divide
initialize_all_variables = global_variables_initializer  # TF1's old name


def set_random_seed(seed: int) -> None:
    """Seeds torch's global RNG, which every random op and initializer draws from."""
    torch.manual_seed(int(seed))


__all__ = [
    "AUTO_REUSE",
    "FailedPreconditionError",
    "Graph",
    "InteractiveSession",
    "InvalidArgumentError",
    "Operation",
    "Session",
    "Tensor",
    "TensorShape",
    "Variable",
    "VariableScope",
    "abs",
    "add",
    "argmax",
    "argmin",
    "bool",
    "bool_",
    "cast",
    "clip_by_value",
    "concat",
    "constant",
    "constant_initializer",
    "contrib",
    "convert_to_tensor",
    "device",
    "div",
    "divide",
    "draw",
    "equal",
    "exp",
    "expand_dims",
    "float16",
    "float32",
    "float64",
    "get_default_graph",
    "get_default_session",
    "get_variable",
    "get_variable_scope",
    "global_variables",
    "global_variables_initializer",
    "glorot_normal_initializer",
    "glorot_uniform_initializer",
    "greater",
    "greater_equal",
    "identity",
    "initialize_all_variables",
    "int16",
    "int32",
    "int64",
    "int8",
    "layers",
    "less",
    "less_equal",
    "log",
    "matmul",
    "maximum",
    "minimum",
    "mul",
    "multiply",
    "name_scope",
    "negative",
    "nn",
    "not_equal",
    "ones",
    "ones_initializer",
    "ones_like",
    "orthogonal_initializer",
    "placeholder",
    "pow",
    "random_normal",
    "random_normal_initializer",
    "random_uniform",
    "random_uniform_initializer",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_sum",
    "reset_default_graph",
    "reshape",
    "scan",
    "set_random_seed",
    "sigmoid",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "strided_slice",
    "sub",
    "subtract",
    "tanh",
    "train",
    "trainable_variables",
    "transpose",
    "truediv",
    "truncated_normal",
    "truncated_normal_initializer",
    "uint8",
    "unstack",
    "variable_scope",
    "variables_initializer",
    "zeros",
    "zeros_initializer",
    "zeros_like",
]


def __getattr__(name):
    raise unsupported("tf", name)
