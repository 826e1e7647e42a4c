"""TF1's RNN cells and loops in the graph: the rnnkit.v1 cells, recorded as graph ops.

    cell = tf.nn.rnn_cell.BasicRNNCell(num_units=5)            # wraps rnnkit.v1.BasicRNNCell
    outputs, states = tf.contrib.rnn.static_rnn(cell, [X0, X1], dtype=tf.float32)
    outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)

The two loops build the graphs seed 003 draws:

* ``static_rnn`` calls the cell once per step: one cell op per step
  (``rnn/basic_rnn_cell``, ``rnn/basic_rnn_cell_1``, ...), all reading the
  same kernel and bias. The graph grows with the steps.
* ``dynamic_rnn`` records one ``While`` op whose body holds the cell once
  (``rnn/while/basic_rnn_cell``). The graph does not grow with the steps.

A built-in cell (and ``MultiRNNCell`` or a wrapper over built-in cells) is a
graph-side handle on an rnnkit module, its ``core``: its cell op runs
``core(x_t, state)``, and ``dynamic_rnn``'s loop runs ``rnnkit.v1.dynamic_rnn(core, ...)``,
the fused kernels, so the numbers are eager mode's. A user's ``RNNCell``
subclass (seed 003's ``DeviceCellWrapper``) writes its step with graph ops;
``dynamic_rnn`` then runs its traced body once per step.

The weights are the core's Parameters, adopted as graph variables
(``rnn/basic_rnn_cell/kernel``...) the first time the cell is called.
"""

from __future__ import annotations

import re
import weakref

import torch

from ... import v1 as eager
from ...cells import initial_state_of
from . import loops, ops
from .graph import Tensor, as_dtype, convert_to_tensor, get_default_graph, shape_str
from .loops import flatten, pack_as
from .variables import variable_of_parameter, variable_scope


def _activation(activation, arg="activation"):
    """A graph activation (``tf.nn.relu``) as the torch function the core cell runs; None and names pass."""
    if activation is None or isinstance(activation, str):
        return activation
    fn = getattr(activation, "_torch_fn", None)
    if fn is None:
        raise TypeError(
            f"{arg}: expected None, a name ('relu') or one of tf.nn.relu/tanh/sigmoid/elu/softplus, "
            f"got {activation!r}; a cell's activation runs inside the cell, so it must be one rnnkit knows"
        )
    return fn


def _sizes(state_size) -> list[int]:
    return [int(s) for s in flatten(state_size)]


def _zero_state_op(cell, x: Tensor):
    """Zeros in ``cell``'s state structure, one row per row of ``x`` (``<Cell>ZeroState``)."""
    sizes = _sizes(cell.state_size)
    batch = x.shape[0] if x.shape is not None else None

    def zeros(x, sizes):
        return tuple(x.new_zeros(x.shape[0], s) for s in sizes) if len(sizes) > 1 else x.new_zeros(x.shape[0], sizes[0])

    recorded = get_default_graph().record_op(
        "ZeroState", zeros, [x], {"sizes": sizes}, name=f"{type(cell).__name__}ZeroState",
        shapes=[(batch, s) for s in sizes], dtypes=[x.dtype] * len(sizes), n_out=len(sizes),
    )
    return pack_as(cell.state_size, iter(recorded.outputs))


def _build_core(core, n_in: int, dtype: torch.dtype) -> None:
    """Create the core's weights by calling it once on zeros (no gradients, the state as the core makes it)."""
    x = torch.zeros(1, n_in, dtype=dtype)
    with torch.no_grad():
        core(x, initial_state_of(core, 1, x))


def _snake(name: str) -> str:
    """TF's scope name for a class: ``DeviceCellWrapper`` -> ``device_cell_wrapper``, ``RNNCell`` -> ``rnn_cell``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


class RNNCell:
    """TF1's cell interface: ``state_size``, ``output_size``, ``cell(inputs, state) -> (output, new_state)``, ``zero_state``.

    Subclass it for a cell of your own (write ``__call__`` or ``call`` with
    graph ops). The built-in cells set ``core``, an rnnkit module, and are
    recorded as one op per call.
    """

    core = None
    _scope_name = None

    @property
    def state_size(self):
        raise NotImplementedError(f"{type(self).__name__}: a cell must define state_size")

    @property
    def output_size(self):
        raise NotImplementedError(f"{type(self).__name__}: a cell must define output_size")

    def call(self, inputs, state):
        raise NotImplementedError(f"{type(self).__name__}: a cell must define call(inputs, state) or __call__")

    def __call__(self, inputs, state, scope=None):
        if self.core is not None:
            return _record_cell(self, convert_to_tensor(inputs), state)
        with variable_scope(scope, default_name=self._scope_name or _snake(type(self).__name__)):
            return self.call(inputs, state)

    def zero_state(self, batch_size, dtype):
        """Zeros in the state's structure, ``(batch_size, size)`` each."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
        return pack_as(self.state_size, iter(ops.zeros([batch_size, s], dtype=dtype) for s in _sizes(self.state_size)))


def _record_cell(cell: RNNCell, x: Tensor, state):
    """One op for one step of a core cell: inputs ``x``, the state's tensors and the weights; outputs y and the new state."""
    core = cell.core
    if x.shape is None or len(x.shape) != 2 or x.shape[-1] is None:
        raise ValueError(f"inputs: {type(cell).__name__} needs (batch, features) inputs with features known, got {x.name} {shape_str(x.shape)}")
    graph = get_default_graph()
    weights = cell._weights.get(graph)
    if weights is None:  # the first call in this graph: build the core, adopt its weights as the graph's variables
        if not core.built:
            _build_core(core, x.shape[-1], x.dtype)
        weights = [variable_of_parameter(p, f"{cell._scope_name}/{n.replace('.', '/')}") for n, p in core.named_parameters()]
        cell._weights[graph] = weights
    leaves = [convert_to_tensor(s) for s in flatten(state)]
    sizes = _sizes(cell.state_size)
    if len(leaves) != len(sizes):
        raise ValueError(f"state: {type(cell).__name__} expects {len(sizes)} state tensors, got {len(leaves)}")
    template = cell.state_size
    n_state = len(leaves)

    def run(x, *rest):
        y, s = core(x, pack_as(template, iter(rest[:n_state])))
        return (y, *flatten(s))

    batch = x.shape[0]
    recorded = graph.record_op(
        type(cell).__name__, run, [x, *leaves, *weights], {}, name=cell._scope_name,
        shapes=[(batch, cell.output_size)] + [(batch, s) for s in sizes], dtypes=[x.dtype] * (1 + n_state), n_out=1 + n_state,
    )
    return recorded.outputs[0], pack_as(template, iter(recorded.outputs[1:]))


class _CoreCell(RNNCell):
    """A built-in cell: a graph-side handle on ``core``, an rnnkit cell or wrapper."""

    def __init__(self, core, scope_name: str, name=None):
        self.core = core
        self._scope_name = name or scope_name
        self._weights = weakref.WeakKeyDictionary()  # graph -> this cell's variables there

    @property
    def state_size(self):
        return self.core.state_size

    @property
    def output_size(self):
        return self.core.output_size


class BasicRNNCell(_CoreCell):
    """``Y_t = φ([X_t, Y_{t-1}] [W_x; W_y] + b)`` (φ: tanh unless ``activation``); rnnkit.v1's, in the graph."""

    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None):  # noqa: ARG002 - TF1's signature
        super().__init__(eager.BasicRNNCell(num_units, activation=_activation(activation)), "basic_rnn_cell", name)


class BasicLSTMCell(_CoreCell):
    """TF1's LSTM without peepholes: gate order i, j, f, o, ``forget_bias`` added; state ``LSTMStateTuple(c, h)``."""

    def __init__(self, num_units, forget_bias=1.0, state_is_tuple=True, activation=None, reuse=None, name=None, dtype=None):  # noqa: ARG002
        core = eager.BasicLSTMCell(num_units, forget_bias=forget_bias, state_is_tuple=state_is_tuple,
                                   activation=_activation(activation))
        super().__init__(core, "basic_lstm_cell", name)


class LSTMCell(_CoreCell):
    """TF1's ``LSTMCell`` (peepholes, clipping, projection): rnnkit.v1's, in the graph."""

    def __init__(self, num_units, use_peepholes=False, cell_clip=None, initializer=None, num_proj=None, proj_clip=None,  # noqa: ARG002
                 num_unit_shards=None, num_proj_shards=None, forget_bias=1.0, state_is_tuple=True, activation=None,  # noqa: ARG002
                 reuse=None, name=None, dtype=None):  # noqa: ARG002
        core = eager.LSTMCell(num_units, use_peepholes=use_peepholes, cell_clip=cell_clip, num_proj=num_proj,
                              proj_clip=proj_clip, forget_bias=forget_bias, state_is_tuple=state_is_tuple,
                              activation=_activation(activation))
        super().__init__(core, "lstm_cell", name)


class GRUCell(_CoreCell):
    """TF1's ``GRUCell`` (gates r, u, then the candidate): rnnkit.v1's, in the graph."""

    def __init__(self, num_units, activation=None, reuse=None, kernel_initializer=None, bias_initializer=None,  # noqa: ARG002
                 name=None, dtype=None):  # noqa: ARG002
        super().__init__(eager.GRUCell(num_units, activation=_activation(activation)), "gru_cell", name)


def _core_of(cell, what: str):
    core = getattr(cell, "core", None)
    if core is None:
        raise TypeError(
            f"cell: {what} wraps a built-in cell (BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell, MultiRNNCell, "
            f"a wrapper of those); got {type(cell).__name__}, a cell written with graph ops"
        )
    return core


class MultiRNNCell(RNNCell):
    """Cells stacked: each one's output is the next one's input; the state is a tuple, one per cell.

    Over built-in cells it is one op running rnnkit's ``MultiRNNCell``
    (fused in ``dynamic_rnn``); over cells of your own, each cell's ops in
    a ``cell_<k>`` scope.
    """

    def __init__(self, cells, state_is_tuple=True):
        if state_is_tuple is not True:
            raise ValueError(f"state_is_tuple: only True is supported, got {state_is_tuple!r}")
        self.cells = list(cells)
        if not self.cells:
            raise ValueError("cells: MultiRNNCell needs at least one cell")
        for k, c in enumerate(self.cells):
            if not (callable(c) and hasattr(c, "state_size")):
                raise TypeError(f"cells[{k}]: expected a cell, got {type(c).__name__}")
        if all(getattr(c, "core", None) is not None for c in self.cells):
            self.core = eager.MultiRNNCell([c.core for c in self.cells])
        self._scope_name = "multi_rnn_cell"
        self._weights = weakref.WeakKeyDictionary()

    @property
    def state_size(self):
        return tuple(c.state_size for c in self.cells)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def call(self, inputs, state):
        new_states = []
        for k, (cell, s) in enumerate(zip(self.cells, state)):
            with variable_scope(f"cell_{k}"):
                inputs, s = cell(inputs, s)
            new_states.append(s)
        return inputs, tuple(new_states)


class OutputProjectionWrapper(_CoreCell):
    """``activation(y W + b)`` on the wrapped cell's output; the state is the cell's. rnnkit's wrapper, in the graph."""

    def __init__(self, cell, output_size, activation=None, reuse=None):  # noqa: ARG002
        core = eager.OutputProjectionWrapper(_core_of(cell, "OutputProjectionWrapper"), output_size,
                                             activation=_activation(activation))
        super().__init__(core, "output_projection_wrapper")


class DropoutWrapper(_CoreCell):
    """Dropout on the wrapped cell's input, output and state (keep probabilities). Drops at every run, as TF1."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0, variational_recurrent=False,
                 input_size=None, dtype=None, seed=None, dropout_state_filter_visitor=None):  # noqa: ARG002
        core = eager.DropoutWrapper(_core_of(cell, "DropoutWrapper"), input_keep_prob=input_keep_prob,
                                    output_keep_prob=output_keep_prob, state_keep_prob=state_keep_prob,
                                    variational_recurrent=variational_recurrent, seed=seed)
        super().__init__(core, "dropout_wrapper")


class ResidualWrapper(_CoreCell):
    """``y + x`` on the wrapped cell's output (sizes must match)."""

    def __init__(self, cell, residual_fn=None):
        if residual_fn is not None:
            raise ValueError("residual_fn: only the default (y + x) is supported in graph mode")
        super().__init__(eager.ResidualWrapper(_core_of(cell, "ResidualWrapper")), "residual_wrapper")


class DeviceWrapper(RNNCell):
    """Records ``device`` on the wrapped cell's ops (shown in the graph; the tensors stay where the weights are)."""

    def __init__(self, cell, device):
        self.cell, self.device = cell, device

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def __call__(self, inputs, state, scope=None):
        with get_default_graph().device(self.device):
            return self.cell(inputs, state, scope)


# ------------------------------------------------------------------ loops


def _check_cell(cell):
    if not (callable(cell) and hasattr(cell, "state_size")):
        raise TypeError(f"cell: expected an RNN cell (tf.nn.rnn_cell.*), got {type(cell).__name__}")


def _select(lengths, new, old, t):
    keep = (t < lengths).unsqueeze(1)
    return torch.where(keep, new, old)


def _mask_step(t, lengths, new, old):
    """``new`` for rows still running at step ``t`` (``t < length``), else ``old`` (TF1's rule past the length)."""
    return ops.op("Select", _select, [lengths, new, old], {"t": t}, name="Select", shape=new.shape, dtype=new.dtype)


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
    """TF1's ``static_rnn``: the cell called once per step, so the graph holds one cell op per step.

    ``inputs``: a list of ``(batch, features)`` tensors. Returns
    ``(outputs, state)``: a list of ``(batch, output_size)`` tensors and the
    last state. With ``sequence_length``, outputs past a row's length are
    zeros and its state stays at its last valid step.

    >>> X_seqs = tf.unstack(tf.transpose(X, perm=[1, 0, 2]))
    >>> output_seqs, states = tf.contrib.rnn.static_rnn(cell, X_seqs, dtype=tf.float32)
    """
    _check_cell(cell)
    if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs: expected a non-empty list of (batch, features) tensors, one per step; for one tensor use dynamic_rnn")
    with variable_scope(scope or "rnn") as vs:
        xs = [convert_to_tensor(x) for x in inputs]
        if dtype is not None:
            xs = [x if x.dtype == as_dtype(dtype) else ops.cast(x, dtype) for x in xs]
        state = initial_state if initial_state is not None else _zero_state_op(cell, xs[0])
        lengths = None if sequence_length is None else ops.cast(sequence_length, torch.int64)
        outputs = []
        for t, x in enumerate(xs):
            if t > 0:
                vs.reuse_variables()  # TF1: the steps share the cell's variables
            y, new_state = cell(x, state)
            if lengths is not None:
                y = _mask_step(t, lengths, y, ops.zeros_like(y))
                new_state = pack_as(new_state, iter(_mask_step(t, lengths, n, o) for n, o in zip(flatten(new_state), flatten(state))))
            outputs.append(y)
            state = new_state
    return outputs, state


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, parallel_iterations=None,  # noqa: ARG001
                swap_memory=False, time_major=False, scope=None):  # noqa: ARG001 - TF1's signature
    """TF1's ``dynamic_rnn``: one ``While`` op holding the cell once; the graph does not grow with the steps.

    ``inputs``: ``(batch, time, features)`` (time first with
    ``time_major``), features known; ``time`` may be unknown. Returns
    ``(outputs, state)``: outputs ``(batch, time, output_size)``, zeros past
    each row's ``sequence_length``; the state at each row's last valid step.
    A built-in cell runs as ``rnnkit.v1.dynamic_rnn(cell.core, ...)`` (the
    fused kernels); a cell of your own runs its traced step at each step.
    """
    _check_cell(cell)
    x = convert_to_tensor(inputs)
    if dtype is not None and x.dtype != as_dtype(dtype):
        x = ops.cast(x, dtype)
    if x.shape is None or len(x.shape) != 3 or x.shape[2] is None:
        raise ValueError(f"inputs: dynamic_rnn needs a rank-3 tensor with its features known, got {x.name} {shape_str(x.shape)}")
    batch, time = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    with variable_scope(scope or "rnn"):
        lengths = None if sequence_length is None else convert_to_tensor(sequence_length)
        inits = [] if initial_state is None else [convert_to_tensor(s) for s in flatten(initial_state)]
        sizes = _sizes(cell.state_size)
        template = cell.state_size
        loop = loops.new_loop_op("While", "while")
        specs = [((batch, x.shape[2]), x.dtype, "x_t")] + [((batch, s), x.dtype, "state") for s in sizes]

        def step(x_t, *state_vars):
            y, new_state = cell(x_t, pack_as(template, iter(state_vars)))
            return [y, *flatten(new_state)]

        body = loops.trace(loop, specs, step)
        n_len, n_init = (lengths is not None), len(inits)
        core = cell.core
        if core is not None:
            run = _run_core(core, template, n_len, n_init, time_major)
        else:
            run = _run_traced(body, sizes, n_len, n_init, time_major)
        out_size = cell.output_size
        out_shape = (time, batch, out_size) if time_major else (batch, time, out_size)
        outs = loops.finish(loop, [x, *([lengths] if n_len else []), *inits], run, {}, [out_shape] + [(batch, s) for s in sizes],
                            [x.dtype] * (1 + len(sizes)), body)
    return outs[0], pack_as(template, iter(outs[1:]))


def _run_core(core, template, has_len: bool, n_init: int, time_major: bool):
    """The loop op's function for a built-in cell: rnnkit.v1.dynamic_rnn on the core (the fused kernels)."""

    def run(x, *rest):
        lengths = rest[0] if has_len else None
        given = rest[int(has_len) : int(has_len) + n_init]
        init = pack_as(template, iter(given)) if n_init else None
        outputs, state = eager.dynamic_rnn(core, x, sequence_length=lengths, initial_state=init, time_major=time_major)
        return (outputs, *flatten(state))

    return run


def _run_traced(body, sizes, has_len: bool, n_init: int, time_major: bool):
    """The loop op's function for a cell written with graph ops: its body, once per step."""

    def run(x, *rest):
        if time_major:
            x = x.transpose(0, 1)
        lengths = rest[0] if has_len else None
        k = int(has_len)
        state = list(rest[k : k + n_init]) if n_init else [x.new_zeros(x.shape[0], s) for s in sizes]
        captured = rest[k + n_init :]
        outputs = []
        for t in range(x.shape[1]):
            y, *new = body.run(captured, [x[:, t], *state])
            if lengths is not None:
                keep = (t < lengths).unsqueeze(1)
                y = torch.where(keep, y, torch.zeros_like(y))
                new = [torch.where(keep, n, o) for n, o in zip(new, state)]
            outputs.append(y)
            state = new
        out = torch.stack(outputs, 0 if time_major else 1)
        return (out, *state)

    return run


__all__ = [
    "BasicLSTMCell",
    "BasicRNNCell",
    "DeviceWrapper",
    "DropoutWrapper",
    "GRUCell",
    "LSTMCell",
    "MultiRNNCell",
    "OutputProjectionWrapper",
    "RNNCell",
    "ResidualWrapper",
    "dynamic_rnn",
    "static_rnn",
]
