"""TF1's names, for ported code: ``tf.nn.rnn_cell``, ``tf.contrib.rnn`` and ``tf.nn`` on rnnkit cells.

    from rnnkit import v1

    cell = v1.BasicRNNCell(num_units=5)
    (Y0, Y1), state = v1.static_rnn(cell, [X0, X1])            # X0, X1: (batch, 3)
    outputs, state = v1.dynamic_rnn(cell, X, sequence_length=lengths)   # X: (batch, time, 3)

The cells keep TF1's equations, defaults and gate order; their weights
are stored as Keras's split pair (see each cell), so a TF1 checkpoint loads
by cutting TF1's one kernel over ``[x, h]`` into its input and recurrent rows::

    cell.set_weights([K[:input_size], K[input_size:], b])     # K: (input_size + h, gates * units)

``static_rnn`` and ``dynamic_rnn`` run one ``RNN`` layer, so the fused
kernels run every cell that has a core form: ``BasicRNNCell`` (a
``SimpleRNNCell``), the v1 GRU and LSTM (their ``core_cell()``) and stacks of
them. How each name maps to the Keras-style classes, and what runs fused, is
in docs/tf1.md.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import nn

from .base import Layer, unique_name
from .cells import Cell, LSTMState, SimpleRNNCell, StackedRNNCells, initial_state_of, is_cell
from .cells import GRUCell as KerasGRUCell
from .cells import LSTMCell as KerasLSTMCell
from .ops import as_tensor, check_positive_int, glorot_uniform
from .rnn import RNN, check_initial_state, check_lengths, tree_flatten, tree_unflatten
from .wrappers import DeviceWrapper, DropoutWrapper, MultiRNNCell, OutputProjectionWrapper, ResidualWrapper

__all__ = [
    "static_rnn",
    "dynamic_rnn",
    "BasicRNNCell",
    "BasicLSTMCell",
    "GRUCell",
    "LSTMCell",
    "LSTMStateTuple",
    "MultiRNNCell",
    "DropoutWrapper",
    "OutputProjectionWrapper",
    "DeviceWrapper",
    "ResidualWrapper",
]


class LSTMStateTuple(NamedTuple):
    """TF1's LSTM state, in TF1's order: memory ``c`` first, then output ``h``."""

    c: torch.Tensor
    h: torch.Tensor


def _draw_tf1_kernels(cell: Cell, widths) -> None:
    """TF1 draws each kernel over ``[x, h]`` as one glorot_uniform (in + h, width) matrix."""
    n_in = cell.input_size
    rows = n_in + cell.recurrent_kernel.shape[0]
    w = torch.cat([glorot_uniform((rows, width), dtype=cell.kernel.dtype) for width in widths], dim=1)
    with torch.no_grad():
        cell.kernel.copy_(w[:n_in])
        cell.recurrent_kernel.copy_(w[n_in:])


def _tf1_activation(activation):
    return "tanh" if activation is None else activation  # TF1: None means tanh (Keras: linear)


def _check_float(value, arg: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{arg}: expected a float{' or None' if optional else ''}, got {type(value).__name__} {value!r}"
        )
    return float(value)


def _check_state_is_tuple(state_is_tuple) -> None:
    if state_is_tuple is not True:
        raise ValueError(
            f"state_is_tuple: only True is supported (TF1 deprecated concatenated states), got {state_is_tuple!r}"
        )


# The v1 GRU and LSTM compute a core cell's equations in TF1's gate order. The
# fused kernels match exact core cell types, so static_rnn/dynamic_rnn run the
# core cell on this cell's weights with the gate blocks re-ordered (and, for
# the LSTM, forget_bias added to the f bias): a permutation and a shift,
# computed from the parameters at each call, so the gradients reach the
# TF1-layout parameters unchanged and the parameters stay TF1's (state_dict,
# in-place edits, get_weights/set_weights all as before).


def _reorder(w: torch.Tensor, units: int, order) -> torch.Tensor:
    """The last axis's blocks of ``units`` columns, taken in ``order``."""
    blocks = w.split(units, dim=-1)
    return torch.cat([blocks[k] for k in order], dim=-1)


def _core_view(core: Cell, cell: Cell, kernel, recurrent_kernel, bias) -> Cell:
    """``core`` (new, unbuilt: no weights drawn) built on the given tensors instead of weights of its own."""
    core.input_size = cell.input_size
    for name in ("kernel", "recurrent_kernel", "bias"):
        delattr(core, name)  # its lazy (uninitialized) weights give way to the views
    core.kernel, core.recurrent_kernel, core.bias = kernel, recurrent_kernel, bias
    core.built = True
    return core


# --------------------------------------------------------------------- cells


# A function, not a subclass: the fused kernels match exact cell types, and this is exactly a SimpleRNNCell.
def BasicRNNCell(num_units: int, activation=None, name: str | None = None, input_size: int | None = None):
    """TF1's ``BasicRNNCell``: the seed's ``Y_t = φ([X_t, Y_{t-1}] [W_x; W_y] + b)``.

    Returns a ``SimpleRNNCell`` (``kernel`` is ``W_x`` (in, units),
    ``recurrent_kernel`` is ``W_y`` (units, units)), so the fused kernels
    run it, with TF1's default: ``activation=None`` means tanh. The weights
    start as Keras's (glorot_uniform kernel, orthogonal recurrent kernel,
    zero bias) where TF1 drew ``[W_x; W_y]`` as one glorot_uniform matrix.

    >>> cell = BasicRNNCell(num_units=5)
    >>> (y0, y1), h = static_rnn(cell, [torch.zeros(4, 3), torch.ones(4, 3)])
    """
    return SimpleRNNCell(
        num_units,
        activation=_tf1_activation(activation),
        name=name or unique_name("BasicRNNCell"),
        input_size=input_size,
    )


class GRUCell(Cell):
    """TF1's ``GRUCell`` (Cho et al. 2014), gate order r, u then the candidate::

        r, u = sigmoid([x_t, h] W_g + b_g).split          # reset, update
        c    = activation([x_t, r * h] W_c + b_c)
        h_t  = u * h + (1 - u) * c

    Weights: TF1's ``[W_g, W_c]`` (in + u, 3u) split by rows into
    ``kernel`` (in, 3u) and ``recurrent_kernel`` (u, 3u); ``bias`` (3u,) is
    ``[b_g, b_c]``, the gate part starting at 1.0 as in TF1. The same numbers as Keras's
    ``GRUCell(reset_after=False)`` with its z, r, h blocks taken from TF1's
    u, r, c: ``core_cell()``, which ``static_rnn``/``dynamic_rnn`` run (the
    fused kernels); ``RNN`` and the wrappers run ``step``, TF1's equations.
    """

    gates = 3

    def __init__(self, num_units: int, activation=None, name: str | None = None, input_size: int | None = None):
        super().__init__(num_units, activation=_tf1_activation(activation), name=name, input_size=input_size)

    def reset_parameters(self):
        u = self.units
        _draw_tf1_kernels(self, [2 * u, u])  # TF1's two kernels: gates, candidate
        with torch.no_grad():
            self.bias[: 2 * u] = 1.0
            self.bias[2 * u :] = 0.0

    def step(self, xw_t, h, dropout=None):  # noqa: ARG002 - TF1 cells take no Keras dropout masks
        """TF1's step, the readable reference (``RNN``, wrappers and direct calls run it)."""
        u = self.units
        r, z = torch.sigmoid(xw_t[..., : 2 * u] + h @ self.recurrent_kernel[:, : 2 * u]).split(u, dim=-1)
        c = self.activation(xw_t[..., 2 * u :] + (r * h) @ self.recurrent_kernel[:, 2 * u :])
        h = z * h + (1 - z) * c
        return h, h

    def core_cell(self) -> KerasGRUCell:
        """This cell as Keras's ``GRUCell(reset_after=False)`` on the same weights.

        Blocks r, u, c become z (= u), r, h (= c) in the kernel, the
        recurrent kernel and the bias; the state is the same tensor h.
        ``static_rnn``/``dynamic_rnn`` run it, so the fused kernels do.
        """
        core = KerasGRUCell(self.units, activation=self.activation, reset_after=False, name=self.name)
        ws = (_reorder(w, self.units, (1, 0, 2)) for w in (self.kernel, self.recurrent_kernel, self.bias))
        return _core_view(core, self, *ws)


class LSTMCell(Cell):
    """TF1's ``LSTMCell``: optional peepholes (Sak et al. 2014), cell clipping and projection.

    TF1's gate order i, j, f, o (j: the new input) and equations::

        i, j, f, o = split(x_t W + m_{t-1} U + b)
        c_t = sigmoid(f + forget_bias + w_f * c_{t-1}) * c_{t-1}
              + sigmoid(i + w_i * c_{t-1}) * activation(j)        # w_*: peepholes, else 0
        c_t = clip(c_t, -cell_clip, cell_clip)                     # if cell_clip
        m_t = sigmoid(o + w_o * c_t) * activation(c_t)
        m_t = clip(m_t P, -proj_clip, proj_clip)                   # if num_proj (clip if proj_clip)
        y_t = m_t;  state = LSTMStateTuple(c_t, m_t)

    ``forget_bias`` is *added* at run time (Keras's ``unit_forget_bias``
    instead sets the stored bias). Weights, in this order: ``kernel`` (in,
    4u), ``recurrent_kernel`` (h, 4u) with h = num_proj or units, ``bias``
    (4u,), then ``w_f_diag``, ``w_i_diag``, ``w_o_diag`` (u,) with
    peepholes, then ``proj_kernel`` (u, num_proj) with a projection. TF1's
    ``kernel`` (in + h, 4u) is ``[kernel; recurrent_kernel]``.

    Without peepholes, clipping or projection this is Keras's ``LSTMCell``
    on reordered weights, ``core_cell()``, which ``static_rnn``/
    ``dynamic_rnn`` run (the fused kernels); otherwise they, like ``RNN``
    and the wrappers, run ``step``, TF1's equations.

    >>> cell = LSTMCell(8, use_peepholes=True, num_proj=4)
    >>> outputs, state = dynamic_rnn(cell, torch.zeros(2, 5, 3))   # outputs (2, 5, 4); state.c (2, 8), state.h (2, 4)
    """

    gates = 4

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation=None,
        name: str | None = None,
        input_size: int | None = None,
    ):
        _check_state_is_tuple(state_is_tuple)
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip = _check_float(cell_clip, "cell_clip", optional=True)
        self.num_proj = None if num_proj is None else check_positive_int(num_proj, "num_proj")
        self.proj_clip = _check_float(proj_clip, "proj_clip", optional=True)
        self.forget_bias = _check_float(forget_bias, "forget_bias")
        super().__init__(num_units, activation=_tf1_activation(activation), name=name, input_size=input_size)

    @property
    def state_size(self):
        return LSTMStateTuple(self.units, self.output_size)

    @property
    def output_size(self):
        return self.num_proj or self.units

    def build(self, input_shape):
        self.input_size = int(input_shape[-1])
        u = self.units
        self.kernel = nn.Parameter(torch.empty(self.input_size, 4 * u))
        self.recurrent_kernel = nn.Parameter(torch.empty(self.output_size, 4 * u))
        self.bias = nn.Parameter(torch.empty(4 * u))
        if self.use_peepholes:
            self.w_f_diag = nn.Parameter(torch.empty(u))
            self.w_i_diag = nn.Parameter(torch.empty(u))
            self.w_o_diag = nn.Parameter(torch.empty(u))
        if self.num_proj is not None:
            self.proj_kernel = nn.Parameter(torch.empty(u, self.num_proj))
        self.reset_parameters()
        self.built = True

    def reset_parameters(self):
        _draw_tf1_kernels(self, [4 * self.units])
        with torch.no_grad():
            self.bias.zero_()
            for p in self.weights[3:]:  # peepholes and projection: glorot_uniform, as TF1
                p.copy_(glorot_uniform(tuple(p.shape), dtype=p.dtype))

    @property
    def weights(self):
        if not self.built:
            return []
        ws = [self.kernel, self.recurrent_kernel, self.bias]
        if self.use_peepholes:
            ws += [self.w_f_diag, self.w_i_diag, self.w_o_diag]
        if self.num_proj is not None:
            ws.append(self.proj_kernel)
        return ws

    def get_initial_state(self, batch_size, dtype=None, device=None):
        c = super().get_initial_state(batch_size, dtype, device)
        return LSTMStateTuple(c, c.new_zeros(batch_size, self.output_size))

    def step(self, xw_t, state, dropout=None):  # noqa: ARG002 - TF1 cells take no Keras dropout masks
        """TF1's step, the readable reference (``RNN``, wrappers, direct calls and TF1's features run it)."""
        c_prev, m_prev = state
        i, j, f, o = (xw_t + m_prev @ self.recurrent_kernel).split(self.units, dim=-1)
        if self.use_peepholes:
            f = f + self.w_f_diag * c_prev
            i = i + self.w_i_diag * c_prev
        c = torch.sigmoid(f + self.forget_bias) * c_prev + torch.sigmoid(i) * self.activation(j)
        if self.cell_clip is not None:
            c = c.clamp(-self.cell_clip, self.cell_clip)
        if self.use_peepholes:
            o = o + self.w_o_diag * c
        m = torch.sigmoid(o) * self.activation(c)
        if self.num_proj is not None:
            m = m @ self.proj_kernel
            if self.proj_clip is not None:
                m = m.clamp(-self.proj_clip, self.proj_clip)
        return m, LSTMStateTuple(c, m)

    def tf1_features(self) -> list[str]:
        """The options set that Keras's ``LSTMCell`` (and so the fused kernels) lacks."""
        named = [("use_peepholes", self.use_peepholes), ("cell_clip", self.cell_clip is not None)]
        named += [("num_proj", self.num_proj is not None)]
        return [name for name, on in named if on]

    def core_cell(self) -> KerasLSTMCell | None:
        """This cell as Keras's ``LSTMCell`` on the same weights; None with peepholes, clipping or a projection.

        Blocks i, j, f, o become i, f, c (= j), o, and ``forget_bias`` is
        added to the f block of the bias (Keras has no run-time forget
        bias): ``sigmoid(f + b_f + forget_bias)`` either way. The state maps
        ``LSTMStateTuple(c, h)`` <-> ``LSTMState(h, c)``.
        """
        if self.tf1_features():
            return None
        u = self.units
        kernel, recurrent_kernel = (_reorder(w, u, (0, 2, 1, 3)) for w in (self.kernel, self.recurrent_kernel))
        i, j, f, o = self.bias.split(u)
        bias = torch.cat([i, f + self.forget_bias, j, o])
        core = KerasLSTMCell(u, activation=self.activation, name=self.name)
        return _core_view(core, self, kernel, recurrent_kernel, bias)

    def extra_repr(self):
        extras = [f"forget_bias={self.forget_bias}"]
        extras += ["use_peepholes=True"] if self.use_peepholes else []
        extras += [f"num_proj={self.num_proj}"] if self.num_proj is not None else []
        return f"{super().extra_repr()}, {', '.join(extras)}"


class BasicLSTMCell(LSTMCell):
    """TF1's ``BasicLSTMCell``: ``LSTMCell`` without peepholes, clipping or projection.

    ``c_t = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(j)``,
    ``h_t = tanh(c_t) * sigmoid(o)``; gate order i, j, f, o; the state is
    ``LSTMStateTuple(c, h)``. With a zero bias it equals Keras's
    ``LSTMCell`` whose forget-gate bias is ``forget_bias``, after taking
    Keras's i, f, c, o blocks from TF1's i, f, j, o.
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation=None,
        name: str | None = None,
        input_size: int | None = None,
    ):
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=activation,
            name=name,
            input_size=input_size,
        )


# ---------------------------------------------------------------- the loops

# kernels.select logs what each call ran on this logger; v1 adds why a TF1-only feature kept a cell off the kernels.
log = logging.getLogger("rnnkit.kernels")


def _training(cell) -> bool:
    # TF1 has no mode: its dropout always runs. Here the cell's module mode decides.
    return cell.training if isinstance(cell, nn.Module) else False


def _check_cell(cell) -> None:
    if not is_cell(cell):
        raise TypeError(f"cell: expected a cell (with state_size and forward(x, state)), got {type(cell).__name__}")


# Exact types, as the kernels match them: a subclass may redefine the step.
_LSTMS = (LSTMCell, BasicLSTMCell)


class _ModuleCell(nn.Module):
    """A plain callable cell (``state_size`` and ``cell(x_t, state)``) as the module ``RNN`` holds."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.state_size = cell.state_size

    def get_initial_state(self, batch_size, dtype=None, device=None):
        return initial_state_of(self.cell, batch_size, torch.empty(0, dtype=dtype, device=device))

    def forward(self, x_t, state):
        return self.cell(x_t, state)


def _core_form(cell):
    """``(cell to run, why not fused)``: the v1 GRU/LSTM (alone or in a stack) as core cells, else ``cell``.

    A stack changes only when every v1 cell in it has a core form (the
    fused kernels take a stack whole). ``why`` names a TF1-only feature that
    keeps ``cell`` on the reference loop, else None.
    """
    if type(cell) in _LSTMS and cell.tf1_features():
        features = ", ".join(cell.tf1_features())
        return cell, f"{cell.name}: TF1's LSTMCell with {features} has no fused kernel; its own step runs"
    if type(cell) in (GRUCell, *_LSTMS):
        return cell.core_cell(), None
    if not isinstance(cell, nn.Module):
        return _ModuleCell(cell), None
    if isinstance(cell, StackedRNNCells):
        forms = [_core_form(c) for c in cell.cells]
        for k, (_, why) in enumerate(forms):
            if why is not None:
                return cell, f"cells[{k}]: {why}"
        if all(run is c for (run, _), c in zip(forms, cell.cells)):
            return cell, None
        return StackedRNNCells([run for run, _ in forms], name=cell.name), None
    return cell, None


def _to_core_state(cell, state):
    """``cell``'s state in its core form's structure: ``LSTMStateTuple(c, h)`` -> ``LSTMState(h, c)``."""
    if type(cell) in _LSTMS:
        return LSTMState(state.h, state.c)
    if isinstance(cell, StackedRNNCells):
        return tuple(_to_core_state(c, s) for c, s in zip(cell.cells, state))
    return state


def _from_core_state(cell, state):
    """The inverse of ``_to_core_state``."""
    if type(cell) in _LSTMS:
        return LSTMStateTuple(state.c, state.h)
    if isinstance(cell, StackedRNNCells):
        return tuple(_from_core_state(c, s) for c, s in zip(cell.cells, state))
    return state


def _run(api: str, cell, x: torch.Tensor, initial_state, lengths):
    """Both functions' body: ``RNN`` over x (batch, time, features), on the cell's core form where it has one.

    Records on the cell (when it is a module) ``kernel_used`` and
    ``kernel_reason``: which kernel this call ran and why, as ``RNN`` does.
    """
    batch = x.shape[0]
    if isinstance(cell, Layer):
        cell.maybe_build(x.shape[2:], like=x)
    param = next(iter(cell.parameters()), None) if isinstance(cell, nn.Module) else None
    if param is not None and param.dtype != x.dtype:
        raise TypeError(
            f"inputs: dtype {x.dtype} does not match the cell's weights ({param.dtype}); "
            f"pass dtype={param.dtype} or convert the cell with .to({x.dtype})"
        )
    template = initial_state_of(cell, batch, x)
    state = None if initial_state is None else check_initial_state(initial_state, template)
    run, why_not = _core_form(cell)
    if run is not cell and state is not None:
        state = _to_core_state(cell, state)
    name = f"{api}({getattr(cell, 'name', type(cell).__name__)})"
    layer = RNN(run, return_sequences=True, return_state=True, zero_output_for_mask=True, name=name)
    outputs, *flat_state = layer(x, initial_state=state, lengths=lengths, training=_training(cell))
    state = tree_unflatten(initial_state_of(run, batch, x), tree_flatten(flat_state))  # stacked: nested per cell
    if run is not cell:
        state = _from_core_state(cell, state)
    reason = layer.kernel_reason
    if layer.kernel_used == "reference" and why_not is not None:
        reason = why_not
        log.debug("%s: reference (%s)", name, reason)
    if isinstance(cell, nn.Module):
        cell.kernel_used, cell.kernel_reason = layer.kernel_used, reason
    return outputs, state


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None):
    """TF1's ``static_rnn``: the cell over a list of time steps.

    Args:
        cell: any rnnkit cell or wrapper.
        inputs: a list of ``(batch, features)`` tensors (or numpy arrays,
            made float32), one per time step.
        initial_state: in the cell's state structure; zeros if None.
        dtype: convert the inputs to this torch dtype (TF1's argument).
        sequence_length: ``(batch,)`` integer lengths in [0, len(inputs)].

    Returns ``(outputs, state)``: a list of ``(batch, output_size)``
    tensors, and the state in the cell's structure. With
    ``sequence_length``, TF1's rule::

        y_t, new = cell(x_t, state)
        y_t   = y_t        if t < length else 0
        state = new        if t < length else state      # kept from the last valid step

    so a row of length 0 gives zeros and its initial state. TF1 unrolled
    this loop in its graph; here it is ``dynamic_rnn`` on the steps stacked
    along time, then split again: the same kernels and the same numbers.

    >>> (Y0, Y1), h = static_rnn(BasicRNNCell(5), [X0, X1])   # X0, X1: (4, 3) -> Y0, Y1: (4, 5)
    """
    _check_cell(cell)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(
            f"inputs: expected a list of (batch, features) tensors, one per time step, got {type(inputs).__name__}; "
            "for one (batch, time, features) tensor use dynamic_rnn"
        )
    if not inputs:
        raise ValueError("inputs: expected at least one time step, got an empty list")
    xs = [as_tensor(x, f"inputs[{t}]") for t, x in enumerate(inputs)]
    if dtype is not None:
        xs = [x.to(dtype) for x in xs]
    first = xs[0]
    if first.dim() != 2:
        raise ValueError(f"inputs[0]: expected a 2-D tensor (batch, features), got shape {tuple(first.shape)}")
    for t, x in enumerate(xs):
        if x.shape != first.shape:
            raise ValueError(f"inputs[{t}]: expected shape {tuple(first.shape)} like inputs[0], got {tuple(x.shape)}")
    lengths = None
    if sequence_length is not None:
        lengths = check_lengths(sequence_length, first.shape[0], len(xs), "sequence_length")
    outputs, state = _run("static_rnn", cell, torch.stack(xs, dim=1), initial_state, lengths)
    return list(outputs.unbind(1)), state


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, time_major=False):
    """TF1's ``dynamic_rnn``: the cell over a ``(batch, time, features)`` tensor.

    Args:
        cell: any rnnkit cell or wrapper.
        inputs: ``(batch, time, features)``, or ``(time, batch, features)``
            with ``time_major=True``; a tensor or a numpy array (float32).
        sequence_length: ``(batch,)`` integer lengths in [0, time].
        initial_state: in the cell's state structure; zeros if None.
        dtype: convert the inputs to this torch dtype (TF1's argument).

    Returns ``(outputs, state)``: outputs ``(batch, time, output_size)``
    (time first with ``time_major``), zero past each row's length; the
    state at each row's last valid step, in the cell's structure
    (``LSTMStateTuple`` for the v1 LSTMs, a tuple per cell for
    ``MultiRNNCell``). It is ``RNN(cell, return_sequences=True,
    return_state=True, zero_output_for_mask=True)`` called with
    ``lengths=sequence_length``, so a fused kernel runs where one applies;
    the v1 GRU and LSTM (without peepholes, clipping or projection), alone
    or in a ``MultiRNNCell``, run as their ``core_cell()``. Afterwards
    ``cell.kernel_used`` and ``cell.kernel_reason`` say what ran and why.

    >>> outputs, h = dynamic_rnn(BasicRNNCell(5), np.zeros((4, 2, 3)))      # outputs (4, 2, 5), h (4, 5)
    """
    _check_cell(cell)
    x = as_tensor(inputs, "inputs")
    if dtype is not None:
        x = x.to(dtype)
    if x.dim() != 3:
        layout = "(time, batch, features)" if time_major else "(batch, time, features)"
        raise ValueError(f"inputs: expected a 3-D tensor {layout}, got shape {tuple(x.shape)}")
    if time_major:
        x = x.transpose(0, 1)
    batch, time = x.shape[:2]
    lengths = None if sequence_length is None else check_lengths(sequence_length, batch, time, "sequence_length")
    outputs, state = _run("dynamic_rnn", cell, x, initial_state, lengths)
    return (outputs.transpose(0, 1) if time_major else outputs), state
