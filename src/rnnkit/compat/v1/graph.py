"""The recorded graph: ``Graph``, ``Operation``, ``Tensor``, ``placeholder`` and ``constant``.

TF1 code builds first and runs later. Here every TF1 call on graph tensors
records an ``Operation``: its type (TF's op name: ``MatMul``, ``Tanh``...),
a unique scoped name (``rnn/basic_rnn_cell_1``), the torch function that
computes it, its input tensors and attributes. Nothing is computed until a
``Session`` runs it::

    g = Graph()
    with g.as_default():
        x = placeholder(float32, [None, 3], name="X")    # Tensor "X:0", shape (None, 3)
        y = x @ constant(np.ones((3, 2)))                # Operation "MatMul", output shape (None, 2)

Shapes are inferred when an op is recorded, by small rules per op (``None``
is a size known only at run time; ``None`` meets ``k`` as ``k``, as in TF),
so layers and cells can create their weights while the graph is built.
Variables and their scopes are ``variables.py``; the ops' functions and
shape rules ``ops.py``.

Ops of a loop body (``dynamic_rnn``'s cell, ``scan``'s function) are
recorded once, with ``op.loop`` set to the loop's op: the graph of a
dynamic loop does not grow with the steps.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

float16, float32, float64 = torch.float16, torch.float32, torch.float64
int32, int64, bool_ = torch.int32, torch.int64, torch.bool
uint8, int8, int16 = torch.uint8, torch.int8, torch.int16

_DTYPE_NAMES = {"float": float32, "double": float64, "int": int32, "bool": bool_}


def as_dtype(dtype, arg: str = "dtype") -> torch.dtype:
    """A torch dtype from ``tf.float32`` (a torch dtype here), a numpy dtype or a name."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    try:
        return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype
    except TypeError as e:
        raise TypeError(f"{arg}: expected a dtype such as tf.float32, got {dtype!r}") from e


def shape_str(shape) -> str:
    """TF's spelling: ``(?, 28, 28)``."""
    if shape is None:
        return "<unknown>"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class TensorShape(tuple):
    """A tuple of sizes (``None``: known at run time) with TF's ``as_list`` and ``ndims``."""

    def as_list(self) -> list:
        return list(self)

    @property
    def ndims(self) -> int:
        return len(self)

    def __repr__(self):
        return f"TensorShape({list(self)})"


class FailedPreconditionError(RuntimeError):
    """A variable was read before its initializer ran (TF1's name)."""


class InvalidArgumentError(ValueError):
    """A placeholder the fetches need was not fed (TF1's name)."""


# ----------------------------------------------------------------- tensors


class Tensor:
    """One output of an op: shape (``None`` = any size), dtype, and the op that makes it.

    Arithmetic and indexing record ops, as in TF1: ``x @ w + b``,
    ``h[-1]``, ``-x``, ``2 * x``. ``eval(feed_dict)`` runs it in the default
    session. Hashed by identity (feed_dict keys), so ``==`` is not elementwise:
    use ``tf.equal``.
    """

    __array_priority__ = 100  # numpy defers to our operators: np_array * tensor records an op

    def __init__(self, op: Operation, index: int, shape, dtype: torch.dtype):
        self.op = op
        self.value_index = index
        self._shape = None if shape is None else TensorShape(shape)
        self.dtype = dtype

    @property
    def shape(self) -> TensorShape | None:
        return self._shape

    def get_shape(self) -> TensorShape | None:
        return self._shape

    @property
    def graph(self) -> Graph:
        return self.op.graph

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    def eval(self, feed_dict=None, session=None):
        """This tensor's value (numpy), computed by ``session`` or the default session."""
        from_session = session or _current_session(self.graph, "eval")
        return from_session.run(self, feed_dict)

    def __repr__(self):
        return f"<tf.Tensor '{self.name}' shape={shape_str(self._shape)} dtype={str(self.dtype).removeprefix('torch.')}>"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        raise TypeError(
            f"{self.name}: a graph tensor has no value while the graph is built, so it cannot be used as a Python bool; "
            "use tf.cond-free code or run it in a Session"
        )

    def __iter__(self):
        raise TypeError(f"{self.name}: graph tensors are not iterable; use tf.unstack(x) to split one along an axis")

    def __len__(self):
        raise TypeError(f"{self.name}: graph tensors have no len(); use x.shape[0] (None when known only at run time)")

    # The operators record ops (defined in ops.py, attached there to avoid a cycle of modules).


class Operation:
    """One node of the graph.

    ``type`` is TF's op name (``MatMul``), ``name`` is unique and scoped
    (``rnn/basic_rnn_cell_1``), ``fn(*input values, **attrs)`` computes the
    outputs from torch tensors. ``control_inputs`` run first without
    feeding values (``global_variables_initializer``'s group). ``loop`` is
    the loop op whose body this op belongs to, else None. ``device`` is what
    ``tf.device`` said (recorded and shown, not used: tensors stay where
    their inputs and variables are).
    """

    def __init__(self, graph, type_, name, fn, inputs, attrs, control_inputs=()):
        self.graph = graph
        self.type = type_
        self.name = name
        self.fn = fn
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.control_inputs = list(control_inputs)
        self.outputs: list[Tensor] = []
        self.loop = graph._loop
        self.device = graph._device
        self.trains = False  # a minimize op: sessions that run it enable autograd

    def run(self, feed_dict=None, session=None):
        """Run this op in ``session`` or the default session (``init.run()``)."""
        (session or _current_session(self.graph, "run")).run(self, feed_dict)

    def __repr__(self):
        return f"<tf.Operation '{self.name}' type={self.type}>"


# ------------------------------------------------------------------- graph


class Graph:
    """A recorded TF1 graph: its ops in order, its variables, its scopes.

    ``with g.as_default():`` makes it where new ops go. ``get_operations()``
    lists every op, ``get_tensor_by_name("rnn/transpose:0")`` finds one.
    """

    def __init__(self):
        self._ops: list[Operation] = []
        self._names: dict[str, Operation] = {}
        self._used: set[str] = set()
        self._name_stack = ""  # "rnn/while/" while inside those scopes
        self._var_stack = ""
        self._reuse = False
        self._initializer = None  # a variable_scope's default initializer
        self._variables: list = []  # the Variables (variables.py), in order made
        self._by_parameter: dict = {}  # id(Parameter) -> its Variable
        self._store: dict = {}  # get_variable's full names -> Variables
        self._loop: Operation | None = None
        self._device = ""
        self.version = 0  # bumped at each new op: sessions' cached plans stay valid while it is unchanged

    # ---- scopes and names
    def unique_name(self, base: str) -> str:
        """``base`` under the current name scope, made unique TF's way (``MatMul``, ``MatMul_1``...)."""
        name = self._name_stack + base
        if name not in self._used:
            self._used.add(name)
            return name
        k = 1
        while f"{name}_{k}" in self._used:
            k += 1
        self._used.add(f"{name}_{k}")
        return f"{name}_{k}"

    @contextlib.contextmanager
    def name_scope(self, name: str | None):
        """Ops recorded inside are named ``name/...`` (made unique: a second ``rnn`` scope is ``rnn_1``)."""
        saved = self._name_stack
        if name:
            if name.endswith("/"):  # an absolute scope, re-entered as it is
                self._name_stack = name
            else:
                self._name_stack = self.unique_name(name) + "/"
        try:
            yield self._name_stack
        finally:
            self._name_stack = saved

    @contextlib.contextmanager
    def name_scope_reset(self):
        """The variable scope as the name scope: variables are named by their variable scope alone."""
        saved = self._name_stack
        self._name_stack = self._var_stack
        try:
            yield
        finally:
            self._name_stack = saved

    # ---- ops
    def _add(self, op: Operation) -> None:
        if op.name in self._names:
            raise ValueError(f"name: an op named {op.name!r} already exists in this graph")
        self._used.add(op.name)
        self._ops.append(op)
        self._names[op.name] = op
        self.version += 1

    def record_op(
        self, type_, fn, inputs, attrs=None, name=None, shapes=((),), dtypes=None, n_out=1, control_inputs=(), absolute=False
    ):
        """Record one op and return it; its output tensors are ``op.outputs``.

        ``name`` (default: the type) is put under the current name scope and
        made unique; with ``absolute`` it is taken as the full name.
        """
        for t in inputs:
            if t.graph is not self:
                raise ValueError(
                    f"inputs: Tensor {t.name} must be from the same graph as the op being built ({type_}); "
                    "it belongs to another tf.Graph (reset_default_graph() since it was made?)"
                )
        full = name if absolute else self.unique_name(name or type_)
        op = Operation(self, type_, full, fn, inputs, attrs or {}, control_inputs)
        dtypes = dtypes or [inputs[0].dtype if inputs else float32] * n_out
        op.outputs = [Tensor(op, k, shapes[k] if k < len(shapes) else None, dtypes[k]) for k in range(n_out)]
        self._add(op)
        return op

    def get_operations(self) -> list[Operation]:
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        if name not in self._names:
            raise KeyError(f"name: no op named {name!r} in this graph")
        return self._names[name]

    def get_tensor_by_name(self, name: str) -> Tensor:
        op_name, _, index = name.rpartition(":")
        if not op_name or not index.isdigit():
            raise ValueError(f"name: expected a tensor name such as 'X:0', got {name!r}")
        op = self.get_operation_by_name(op_name)
        return op.outputs[int(index)]

    def top_level_ops(self) -> list[Operation]:
        """The ops outside every loop body: what grows with ``static_rnn``'s steps and not with ``dynamic_rnn``'s."""
        return [op for op in self._ops if op.loop is None]

    # ---- defaults
    @contextlib.contextmanager
    def as_default(self):
        _graphs.append(self)
        try:
            yield self
        finally:
            _graphs.pop()

    @contextlib.contextmanager
    def device(self, name):
        saved = self._device
        self._device = "" if name is None else str(name)
        try:
            yield
        finally:
            self._device = saved

    @contextlib.contextmanager
    def loop_body(self, loop_op: Operation):
        """Ops recorded inside belong to ``loop_op``'s body."""
        saved = self._loop
        self._loop = loop_op
        try:
            yield
        finally:
            self._loop = saved


_graphs: list[Graph] = []  # graphs made default by ``as_default``, innermost last
_global_graph = [Graph()]  # the default graph when none is entered


def get_default_graph() -> Graph:
    return _graphs[-1] if _graphs else _global_graph[0]


def reset_default_graph() -> None:
    """A fresh default graph; ops and variables of the old one stay in the old one."""
    if _graphs:
        raise AssertionError("reset_default_graph: called inside a `with graph.as_default()` block (TF1 refuses too)")
    _global_graph[0] = Graph()


def device(name):
    """``with tf.device('/gpu:0'):`` records the device on the ops made inside (shown in the graph, not used to place)."""
    return get_default_graph().device(name)


def placeholder(dtype, shape=None, name=None) -> Tensor:
    """A tensor fed at run time: ``placeholder(tf.float32, [None, 28, 28])`` (``None``: any size)."""
    dtype = as_dtype(dtype)
    if shape is not None:
        if isinstance(shape, int) or not all(d is None or (isinstance(d, int) and d >= 0) for d in shape):
            raise TypeError(f"shape: expected a list of sizes (ints or None), got {shape!r}")
        shape = tuple(shape)
    graph = get_default_graph()
    op = graph.record_op("Placeholder", _unfed, [], {"dtype": dtype, "shape": shape}, name=name or "Placeholder",
                         shapes=[shape], dtypes=[dtype])
    return op.outputs[0]


def _unfed(**_attrs):
    raise InvalidArgumentError("a placeholder was evaluated without a feed")  # sessions check feeds before running


# -------------------------------------------------------- default session

_sessions: list = []  # sessions entered with ``with``, innermost last


def _current_session(graph, what):
    if _sessions and _sessions[-1].graph is graph:
        return _sessions[-1]
    raise ValueError(
        f"{what}: no default session for this graph; call it inside `with tf.Session() as sess:` "
        "or pass session=sess"
    )


def get_default_session():
    return _sessions[-1] if _sessions else None


# ---------------------------------------------------------------- constants


def _const_value(value, dtype):
    if isinstance(value, torch.Tensor):
        t = value.detach().clone()
    else:
        arr = np.asarray(value)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # TF1: a Python float is float32
        if dtype is None and arr.dtype == np.int64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.int32)  # TF1: a Python int is int32
        t = torch.as_tensor(arr)
    return t if dtype is None else t.to(dtype)


def constant(value, dtype=None, shape=None, name="Const") -> Tensor:
    """A constant op holding ``value`` (an array, a nested list or a number), optionally broadcast to ``shape``."""
    t = _const_value(value, None if dtype is None else as_dtype(dtype))
    if shape is not None:
        t = t.expand(tuple(shape)).clone() if t.numel() == 1 else t.reshape(tuple(shape))
    op = get_default_graph().record_op(
        "Const", lambda value: value, [], {"value": t}, name=name, shapes=[tuple(t.shape)], dtypes=[t.dtype]
    )
    return op.outputs[0]


def convert_to_tensor(value, dtype=None, name="Const") -> Tensor:
    """A graph tensor as it is (checked against ``dtype``), anything else as a ``Const`` op."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != dtype:
            raise TypeError(f"{value.name}: expected dtype {dtype}, got {value.dtype}")
        return value
    if isinstance(value, Operation):
        raise TypeError(f"{value.name}: an Operation has no value to use as a tensor (it is run, not read)")
    return constant(value, dtype=dtype, name=name)


def unsupported(namespace: str, name: str) -> AttributeError:
    """The error for a TF1 name rnnkit's graph mode does not have: it names the op and where to look."""
    if name.startswith("__"):
        return AttributeError(name)
    return AttributeError(
        f"{namespace}.{name}: TF1's {name!r} is not supported by rnnkit's graph mode (rnnkit.compat.v1); "
        "docs/tf1.md, section 'Graph mode', lists what is"
    )
