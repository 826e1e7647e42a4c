"""Variables and their scopes: ``Variable``, ``get_variable``, ``variable_scope``, the initializer ops.

    with tf.variable_scope("layer1"):
        W = tf.get_variable("W", [3, 5])               # "layer1/W", glorot_uniform
    with tf.variable_scope("layer1", reuse=True):
        W_again = tf.get_variable("W")                 # the same variable
    init = tf.global_variables_initializer()           # one op running every variable's Assign

Variables are ``torch.nn.Parameter``s held by the graph (not by a session:
every session of a graph sees the same values). Each has an ``Assign`` op
(its ``initializer``) that copies its initial value in: a graph tensor
(``tf.truncated_normal(...)``, drawn again at each run, as in TF1), an
array or a number. Reading a variable before then raises, as TF1's
``FailedPreconditionError`` did. The weights of cells and dense layers are
the rnnkit modules' own Parameters, adopted with the values they were
drawn with (``variable_of_parameter``).
"""

from __future__ import annotations

import contextlib
import re

import torch

from .graph import (
    FailedPreconditionError,
    Operation,
    Tensor,
    as_dtype,
    convert_to_tensor,
    float32,
    get_default_graph,
    shape_str,
)
from .initializers import glorot_uniform_initializer

AUTO_REUSE = "AUTO_REUSE"


class Variable(Tensor):
    """TF1's ``tf.Variable``: a torch Parameter held by the graph, with an initializer op.

    ``Variable(initial_value, trainable=True, name="Variable", dtype=None)``;
    used in ops like any tensor (its value is the Parameter, so gradients
    reach it).

    >>> W = tf.Variable(tf.zeros([28, 128]))       # W.initializer copies zeros in
    """

    def __init__(self, initial_value=None, trainable=True, name=None, dtype=None, _parameter=None):
        graph = get_default_graph()
        if callable(initial_value) and not isinstance(initial_value, Tensor):
            initial_value = initial_value()
        if initial_value is None:
            raise ValueError("initial_value: a Variable needs an initial value (a tensor, an array or a number)")
        with graph.loop_body(None):  # made in a loop body (a cell traced by dynamic_rnn), still one variable outside it
            var_name = graph.unique_name(name or "Variable")
            with graph.name_scope(var_name + "/"):
                init = convert_to_tensor(initial_value, dtype=None if dtype is None else as_dtype(dtype), name="initial_value")
        if init.shape is None or any(d is None for d in init.shape):
            raise ValueError(f"initial_value: a Variable needs a fully known shape, got {shape_str(init.shape)} from {init.name}")
        param = _parameter
        if param is None:
            param = torch.nn.Parameter(torch.zeros(tuple(init.shape), dtype=init.dtype), requires_grad=bool(trainable))
        op = Operation(graph, "VariableV2", var_name, self._read, [], {})
        op.loop = None
        super().__init__(op, 0, tuple(param.shape), param.dtype)
        op.outputs.append(self)
        graph._add(op)
        self.param = param
        self.trainable = bool(trainable)
        self.initial_value = init
        self.initialized = False
        with graph.loop_body(None):
            self.initializer = graph.record_op("Assign", self._assign, [init], name=f"{op.name}/Assign", n_out=0, absolute=True)
        graph._variables.append(self)
        graph._by_parameter[id(param)] = self

    def _read(self):
        if not self.initialized:
            raise FailedPreconditionError(
                f"Attempting to use uninitialized value {self.op.name}: run tf.global_variables_initializer() "
                "(or this variable's .initializer) in the session first"
            )
        return self.param

    def _assign(self, value):
        with torch.no_grad():
            self.param.copy_(value)
        self.initialized = True

    def __repr__(self):
        return f"<tf.Variable '{self.name}' shape={shape_str(self.shape)} dtype={str(self.dtype).removeprefix('torch.')}>"


def variable_of_parameter(param: torch.nn.Parameter, name: str) -> Variable:
    """The graph's Variable for a module's existing Parameter (made once; its initial value is the current one)."""
    graph = get_default_graph()
    found = graph._by_parameter.get(id(param))
    if found is not None:
        return found
    with graph.name_scope_reset():
        return Variable(param.detach().clone(), name=name, trainable=param.requires_grad, _parameter=param)


# ------------------------------------------------------------------ scopes


class VariableScope:
    """What ``variable_scope`` yields: its ``name``, ``reuse``, and ``reuse_variables()``."""

    def __init__(self, graph, name, reuse):
        self._graph, self.name, self.reuse = graph, name, reuse

    def reuse_variables(self):
        self.reuse = True
        self._graph._reuse = True


def _fresh_scope(graph, base: str) -> str:
    """``base``, or ``base_1``, ``base_2``...: the first not used by a variable or an op (TF1's default_name)."""
    name, k = base, 0
    while any(v.startswith(name + "/") for v in graph._store) or name in graph._used:
        k += 1
        name = f"{base}_{k}"
    return name


@contextlib.contextmanager
def variable_scope(name_or_scope=None, default_name=None, reuse=None, initializer=None, values=None, dtype=None):  # noqa: ARG001 - TF1's signature
    """Names variables (and ops) ``scope/...``; under ``reuse=True`` ``get_variable`` returns existing variables.

    A scope re-entered by name keeps its variable names (``rnn/kernel``)
    while its ops get a fresh name scope (``rnn_1/...``), as in TF1.
    ``reuse`` is inherited by inner scopes; ``tf.AUTO_REUSE`` makes what is
    missing and reuses the rest. With only ``default_name``, the scope is
    made unique (``dense``, ``dense_1``...).
    """
    graph = get_default_graph()
    if isinstance(name_or_scope, VariableScope):
        full, short = name_or_scope.name, name_or_scope.name.rsplit("/", 1)[-1]
    elif name_or_scope is not None:
        if not isinstance(name_or_scope, str):
            raise TypeError(f"name_or_scope: expected a str or a VariableScope, got {type(name_or_scope).__name__}")
        full, short = graph._var_stack + name_or_scope, name_or_scope
    elif default_name is not None:
        full = _fresh_scope(graph, graph._var_stack + default_name)
        short = full[len(graph._var_stack) :]
    else:
        raise ValueError("name_or_scope: variable_scope needs a name or a default_name")
    saved = graph._var_stack, graph._reuse, graph._initializer
    graph._var_stack = full + "/"
    if reuse is not None and reuse is not False:
        graph._reuse = reuse
    if initializer is not None:
        graph._initializer = initializer
    try:
        with graph.name_scope(short):
            yield VariableScope(graph, full, graph._reuse)
    finally:
        graph._var_stack, graph._reuse, graph._initializer = saved


def get_variable_scope() -> VariableScope:
    graph = get_default_graph()
    return VariableScope(graph, graph._var_stack.rstrip("/"), graph._reuse)


def name_scope(name, default_name=None, values=None):  # noqa: ARG001 - TF1's signature
    """``with tf.name_scope('loss'):`` prefixes the ops' names (not the variables')."""
    return get_default_graph().name_scope(name or default_name)


def get_variable(name, shape=None, dtype=None, initializer=None, trainable=True, **_tf1_only):
    """The variable ``scope/name``: made with ``initializer`` (default glorot_uniform), or the existing one under reuse.

    Raises ValueError when it exists and the scope does not reuse, or when
    reuse is True and it does not exist, as TF1 did. ``initializer`` is an
    initializer (``tf.zeros_initializer()``), a tensor or an array.
    """
    graph = get_default_graph()
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        raise ValueError(f"name: expected a variable name such as 'kernel', got {name!r}")
    full = graph._var_stack + name
    existing = graph._store.get(full)
    if existing is not None:
        if not graph._reuse:
            raise ValueError(
                f"Variable {full} already exists, disallowed. Did you mean to set reuse=True or reuse=tf.AUTO_REUSE in VarScope?"
            )
        if shape is not None and tuple(existing.shape) != tuple(shape):
            raise ValueError(f"shape: variable {full} has shape {shape_str(existing.shape)}, asked for {shape_str(shape)}")
        return existing
    if graph._reuse is True:
        raise ValueError(f"Variable {full} does not exist, or was not created with tf.get_variable(); reuse=True needs it")
    dtype = float32 if dtype is None else as_dtype(dtype)
    init = initializer if initializer is not None else graph._initializer or glorot_uniform_initializer()
    with graph.name_scope_reset():
        if callable(init) and not isinstance(init, Tensor):
            if shape is None or any(d is None for d in shape):
                raise ValueError(f"shape: get_variable({full!r}) needs a fully known shape, got {shape!r}")
            value = _initial_value_op(init, tuple(int(d) for d in shape), dtype, f"{name}/Initializer")
        else:
            value = init
        var = Variable(value, trainable=trainable, name=name, dtype=dtype)
    graph._store[full] = var
    return var


def _initial_value_op(init, shape, dtype, name) -> Tensor:
    """An op drawing ``init(shape, dtype)`` each time it runs (at each run of the variable's initializer)."""
    graph = get_default_graph()
    op = graph.record_op("Initializer", lambda: init(shape, dtype=dtype), [], {}, name=name,
                         shapes=[shape], dtypes=[dtype])
    return op.outputs[0]


# ----------------------------------------------------------- collections


def global_variables() -> list[Variable]:
    return list(get_default_graph()._variables)


def trainable_variables() -> list[Variable]:
    return [v for v in get_default_graph()._variables if v.trainable]


def _no_op(*_):
    return None


def variables_initializer(var_list, name="init") -> Operation:
    """One op that runs the initializers of ``var_list``."""
    graph = get_default_graph()
    return graph.record_op("NoOp", _no_op, [], name=name, n_out=0, control_inputs=[v.initializer for v in var_list])


def global_variables_initializer() -> Operation:
    """An op that initializes every variable made so far (as in TF1: made before this call)."""
    return variables_initializer(global_variables(), name="init")


__all__ = [
    "AUTO_REUSE",
    "FailedPreconditionError",
    "Variable",
    "VariableScope",
    "get_variable",
    "get_variable_scope",
    "global_variables",
    "global_variables_initializer",
    "name_scope",
    "trainable_variables",
    "variable_of_parameter",
    "variable_scope",
    "variables_initializer",
]
