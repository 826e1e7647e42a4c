"""TF1's names, for ported code: ``tf.nn.rnn_cell``, ``tf.contrib.rnn`` and ``tf.nn`` on rnnkit cells.

    from rnnkit import v1

    cell = v1.BasicRNNCell(num_units=5)
    (Y0, Y1), state = v1.static_rnn(cell, [X0, X1])            # X0, X1: (batch, 3)
    outputs, state = v1.dynamic_rnn(cell, X, sequence_length=lengths)   # X: (batch, time, 3)

The cells keep TF1's equations, defaults and gate order; their weights
are stored as Keras's split pair (see each cell), so a TF1 checkpoint loads
by cutting TF1's one kernel over ``[x, h]`` into its input and recurrent rows::

    cell.set_weights([K[:input_size], K[input_size:], b])     # K: (input_size + h, gates * units)

``static_rnn`` and ``dynamic_rnn`` (and both directions of the
bidirectional functions) run one ``RNN`` layer, so the fused kernels run
every cell that has a core form: ``BasicRNNCell``, the v1 GRU and LSTM
(their ``core_cell()``) and stacks of them. TF1's other forms (nested or
multi-dimensional steps, tuple outputs, scalar states, integer ids, 0 steps)
run the readable loop and say why in ``cell.kernel_reason``. How each name
maps to the Keras-style classes, what is refused and what runs fused, is in
docs/tf1.md.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .base import Layer
from .cells import Cell, LSTMState, SimpleRNNCell, StackedRNNCells, call_cell, initial_state_of, is_cell
from .cells import GRUCell as KerasGRUCell
from .cells import LSTMCell as KerasLSTMCell
from .ops import (
    as_tensor,
    check_positive_int,
    config_spec,
    first_parameter,
    get_initializer,
    glorot_uniform,
    like_weights,
    rebuild_tuple,
)
from .rnn import RNN, check_initial_state, check_lengths, sample_dropout_masks, tree_flatten, tree_unflatten
from .wrappers import (
    DeviceWrapper,
    DropoutWrapper,
    EmbeddingWrapper,
    InputProjectionWrapper,
    MultiRNNCell,
    OutputProjectionWrapper,
    ResidualWrapper,
    initial_state_args,
)

__all__ = [
    "static_rnn",
    "dynamic_rnn",
    "bidirectional_dynamic_rnn",
    "static_bidirectional_rnn",
    "static_state_saving_rnn",
    "raw_rnn",
    "BasicRNNCell",
    "BasicLSTMCell",
    "GRUCell",
    "LSTMCell",
    "LSTMStateTuple",
    "LayerNormLSTMCell",
    "RNNCell",
    "MultiRNNCell",
    "DropoutWrapper",
    "OutputProjectionWrapper",
    "DeviceWrapper",
    "ResidualWrapper",
    "InputProjectionWrapper",
    "EmbeddingWrapper",
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
    if not math.isfinite(value):  # an infinite clip or bias turns every step into NaN or a no-op
        raise ValueError(f"{arg}: expected a finite number, got {value}")
    return float(value)


def _check_clip(value, arg: str) -> float | None:
    """A clip bound: a finite number >= 0 (TF1 allows 0: everything clipped to 0), or None (no clipping)."""
    value = _check_float(value, arg, optional=True)
    if value is not None and value < 0:
        raise ValueError(f"{arg}: expected a number >= 0 or None, got {value}")
    return value


def _check_bool(value, arg: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{arg}: expected True or False, got {type(value).__name__} {value!r}")
    return value


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


def _check_dtype(dtype):
    """TF1's ``dtype=`` (a cell's, or the loops' state dtype): a floating torch dtype (or its name), else TF1's ``ValueError``."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None) if isinstance(getattr(torch, dtype, None), torch.dtype) else dtype
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype: expected a torch dtype such as torch.float32, got {type(dtype).__name__} {dtype!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype: RNN cell only supports floating point inputs, but saw dtype: {dtype}")
    return dtype


def _check_shards(value, arg: str) -> int | None:
    # TF1 split the kernel into this many variables; one tensor holds the same numbers here.
    return None if value is None else check_positive_int(value, arg)


def _check_reuse(reuse) -> None:
    # TF1's variable-scope reuse: here a cell object owns its weights, and running it again reuses them.
    if reuse is not None and not isinstance(reuse, bool):
        raise TypeError(f"reuse: expected None or a bool (TF1's variable-scope flag), got {type(reuse).__name__}")


class _TF1Cell:
    """What every v1 cell adds to its core base: TF1's ``dtype=``, ``get_initial_state`` and ``zero_state``.

    A cell made with ``dtype`` builds its weights in that dtype. The state
    methods take TF1's arguments::

        cell.get_initial_state(inputs=None, batch_size=None, dtype=None)   # batch and dtype from inputs if given
        cell.zero_state(batch_size, dtype)

    An int first argument is a batch size: the core's own call,
    ``get_initial_state(batch_size, dtype=, device=)``, made by ``RNN`` and
    the wrappers, means the same zeros.
    """

    states_as_list = False  # TF1 hands a cell its state as the cell defines it (a tensor for an int state_size)
    takes_global_policy = False  # its dtype= is TF1's (the weights' dtype), not a Keras dtype policy


    def _set_dtype(self, dtype) -> None:
        # Before the base __init__, which builds the cell when input_size is given.
        self.tf1_dtype = None if dtype is None else _check_dtype(dtype)

    def _to_tf1_dtype(self) -> None:
        if self.tf1_dtype is not None:
            self.to(self.tf1_dtype)

    def build(self, input_shape):
        super().build(input_shape)
        self._to_tf1_dtype()

    def maybe_build(self, input_shape, like: torch.Tensor | None = None) -> None:
        # A cell made with dtype= keeps it (TF1); only the first input's device carries over.
        if self.tf1_dtype is not None and like is not None:
            like = torch.empty(0, dtype=self.tf1_dtype, device=like.device)
        super().maybe_build(input_shape, like=like)

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None, device=None):
        """Zeros in the state's structure, TF1's checks included (``wrappers.initial_state_args``)."""
        batch_size, dtype, device = initial_state_args(inputs, batch_size, dtype, device)
        return self._zeros(batch_size, dtype or self.tf1_dtype, device)

    def _zeros(self, batch_size: int, dtype, device):
        return Cell.get_initial_state(self, batch_size, dtype, device)

    def zero_state(self, batch_size, dtype=None):
        """TF1's ``zero_state``: ``get_initial_state(batch_size=batch_size, dtype=dtype)``."""
        return self.get_initial_state(batch_size=batch_size, dtype=dtype)

    def _tf1_config(self) -> dict:
        dtype = None if self.tf1_dtype is None else str(self.tf1_dtype).removeprefix("torch.")
        return {"name": self.name, "activation": config_spec(self._specs["activation"], self.name, "activation"),
                "dtype": dtype, "input_size": self.input_size}

    @classmethod
    def from_config(cls, config: dict):
        """The cell ``get_config()`` describes (TF1's arguments); new weights when ``input_size`` builds it."""
        return cls(**config)


# --------------------------------------------------------------------- cells


class RNNCell(_TF1Cell, Layer):
    """TF1's base class for a custom cell: define ``state_size``, ``output_size``, ``build`` and ``call``.

    ::

        class MinimalRNNCell(v1.RNNCell):
            def __init__(self, units):
                super().__init__()
                self.units = units

            state_size = property(lambda self: self.units)
            output_size = property(lambda self: self.units)

            def build(self, inputs_shape):
                self.kernel = self.add_weight("kernel", [inputs_shape[-1] + self.units, self.units])
                self.built = True

            def call(self, inputs, state):
                output = torch.tanh(torch.cat([inputs, state], 1) @ self.kernel)
                return output, output

    Calling the cell builds it from the first input's shape (as TF1's
    ``__call__``), then runs ``call(inputs, state)``. ``zero_state`` and
    ``get_initial_state`` give zeros of ``state_size`` (an int: a width; a
    ``torch.Size``: a feature shape; a tuple: one part each). Such a cell
    runs everywhere a cell runs (the readable loop: its step is its own).
    """

    def __init__(self, trainable: bool = True, name: str | None = None, dtype=None):
        self._set_dtype(dtype)
        super().__init__(name=name)
        self.trainable = _check_bool(trainable, "trainable")

    def add_weight(self, name: str, shape, dtype=None, initializer=None, trainable: bool | None = None):
        """A new parameter ``name`` of ``shape``: ``initializer`` (an rnnkit initializer) or glorot_uniform."""
        init = glorot_uniform if initializer is None else get_initializer(initializer, "initializer")
        dtype = dtype or self.tf1_dtype or torch.get_default_dtype()
        weight = nn.Parameter(init(tuple(int(n) for n in shape), dtype=dtype))
        weight.requires_grad_(self.trainable if trainable is None else bool(trainable))
        self.register_parameter(name, weight)
        return weight

    add_variable = add_weight  # TF1's older name

    def call(self, inputs, state):
        raise NotImplementedError(f"{type(self).__name__}: a v1.RNNCell subclass defines call(inputs, state)")

    def forward(self, inputs, state):
        if not self.built:
            first = _leaves(inputs)[0]
            self.maybe_build(first.shape[1:], like=first if first.is_floating_point() else None)
            self._to_tf1_dtype()
        return self.call(inputs, state)

    def _zeros(self, batch_size, dtype, device):
        return _zeros_of(self.state_size, batch_size, like_weights(self, dtype, device))


class BasicRNNCell(_TF1Cell, SimpleRNNCell):
    """TF1's ``BasicRNNCell``: the seed's ``Y_t = φ([X_t, Y_{t-1}] [W_x; W_y] + b)``.

    A ``SimpleRNNCell`` (``kernel`` is ``W_x`` (in, units),
    ``recurrent_kernel`` is ``W_y`` (units, units)) with TF1's default:
    ``activation=None`` means tanh. The weights start as Keras's
    (glorot_uniform kernel, orthogonal recurrent kernel, zero bias) where
    TF1 drew ``[W_x; W_y]`` as one glorot_uniform matrix. A class, so TF1
    code can subclass it; the fused kernels match exact core types, so
    ``static_rnn``/``dynamic_rnn`` run its ``core_cell()`` (the same
    weights as a ``SimpleRNNCell``) and a subclass, which may change the
    step, runs its own step.

    >>> cell = BasicRNNCell(num_units=5)
    >>> (y0, y1), h = static_rnn(cell, [torch.zeros(4, 3), torch.ones(4, 3)])
    """

    def __init__(self, num_units: int, activation=None, reuse=None, *, name: str | None = None, dtype=None,
                 input_size: int | None = None):
        _check_reuse(reuse)
        self._set_dtype(dtype)
        super().__init__(num_units, activation=_tf1_activation(activation), name=name, input_size=input_size)

    def core_cell(self) -> SimpleRNNCell:
        """This cell as a ``SimpleRNNCell`` on the same weights (what the fused kernels run)."""
        return _core_view(SimpleRNNCell(self.units, activation=self.activation, name=self.name), self,
                          self.kernel, self.recurrent_kernel, self.bias)

    def get_config(self):
        return {"num_units": self.units, **self._tf1_config()}


class GRUCell(_TF1Cell, Cell):
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

    def __init__(self, num_units: int, activation=None, reuse=None, *, name: str | None = None, dtype=None,
                 input_size: int | None = None):
        _check_reuse(reuse)
        self._set_dtype(dtype)
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

    def get_config(self):
        return {"num_units": self.units, **self._tf1_config()}


class LSTMCell(_TF1Cell, Cell):
    """TF1's ``LSTMCell``: optional peepholes (Sak et al. 2014), cell clipping and projection.

    TF1's gate order i, j, f, o (j: the new input) and equations::

        i, j, f, o = split(x_t W + m_{t-1} U + b)
        c_t = sigmoid(f + forget_bias + w_f * c_{t-1}) * c_{t-1}
              + sigmoid(i + w_i * c_{t-1}) * activation(j)        # w_*: peepholes, else 0
        c_t = clip(c_t, -cell_clip, cell_clip)                     # if cell_clip
        m_t = sigmoid(o + w_o * c_t) * activation(c_t)
        m_t = clip(m_t P, -proj_clip, proj_clip)                   # if num_proj (clip if proj_clip)
        y_t = m_t;  state = LSTMStateTuple(c_t, m_t)

    With ``state_is_tuple=False`` the state is TF1's one concatenated
    tensor ``[c_t, m_t]`` (batch, units + output_size), in and out.
    ``num_unit_shards``/``num_proj_shards`` are accepted: TF1 split the
    kernel and projection into that many variables, the same numbers as
    one. ``initializer`` (an rnnkit initializer name or function) draws the
    kernels, peepholes and projection instead of TF1's glorot_uniform.

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
        initializer=None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        num_unit_shards: int | None = None,
        num_proj_shards: int | None = None,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation=None,
        reuse=None,
        *,
        name: str | None = None,
        dtype=None,
        input_size: int | None = None,
    ):
        _check_reuse(reuse)
        self._set_dtype(dtype)
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip = _check_clip(cell_clip, "cell_clip")
        self.num_proj = None if num_proj is None else check_positive_int(num_proj, "num_proj")
        self.proj_clip = _check_clip(proj_clip, "proj_clip")
        self.num_unit_shards = _check_shards(num_unit_shards, "num_unit_shards")
        self.num_proj_shards = _check_shards(num_proj_shards, "num_proj_shards")
        self.forget_bias = _check_float(forget_bias, "forget_bias")
        self.state_is_tuple = _check_bool(state_is_tuple, "state_is_tuple")
        self.initializer = None if initializer is None else get_initializer(initializer, "initializer")
        self._initializer_spec = initializer
        super().__init__(num_units, activation=_tf1_activation(activation), name=name, input_size=input_size)

    @property
    def state_size(self):
        if self.state_is_tuple:
            return LSTMStateTuple(self.units, self.output_size)
        return self.units + self.output_size

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
        self._to_tf1_dtype()

    def reset_parameters(self):
        if self.initializer is None:
            _draw_tf1_kernels(self, [4 * self.units])
        with torch.no_grad():
            self.bias.zero_()
            others = self.weights[3:] if self.initializer is None else [w for w in self.weights if w is not self.bias]
            init = self.initializer or glorot_uniform  # peepholes and projection: glorot_uniform, as TF1
            for p in others:
                p.copy_(init(tuple(p.shape), dtype=p.dtype))

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

    def _zeros(self, batch_size, dtype, device):
        c = Cell.get_initial_state(self, batch_size, dtype, device)
        return self.join_state(c, c.new_zeros(batch_size, self.output_size))

    def split_state(self, state):
        """``(c, m)`` from either state form (TF1's order)."""
        if self.state_is_tuple:
            return state
        return state.split([self.units, self.output_size], dim=-1)

    def join_state(self, c, m):
        """The state in this cell's form: ``LSTMStateTuple(c, m)``, or ``[c, m]`` concatenated."""
        return LSTMStateTuple(c, m) if self.state_is_tuple else torch.cat([c, m], dim=-1)

    def step(self, xw_t, state, dropout=None):  # noqa: ARG002 - TF1 cells take no Keras dropout masks
        """TF1's step, the readable reference (``RNN``, wrappers, direct calls and TF1's features run it)."""
        c_prev, m_prev = self.split_state(state)
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
        return m, self.join_state(c, m)

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
        ``LSTMStateTuple(c, h)`` (or ``[c, h]``) <-> ``LSTMState(h, c)``.
        """
        if self.tf1_features():
            return None
        u = self.units
        kernel, recurrent_kernel = (_reorder(w, u, (0, 2, 1, 3)) for w in (self.kernel, self.recurrent_kernel))
        i, j, f, o = self.bias.split(u)
        bias = torch.cat([i, f + self.forget_bias, j, o])
        core = KerasLSTMCell(u, activation=self.activation, name=self.name)
        return _core_view(core, self, kernel, recurrent_kernel, bias)

    def get_config(self):
        return {
            "num_units": self.units, "use_peepholes": self.use_peepholes, "cell_clip": self.cell_clip,
            "initializer": config_spec(self._initializer_spec, self.name, "initializer"),
            "num_proj": self.num_proj, "proj_clip": self.proj_clip, "num_unit_shards": self.num_unit_shards,
            "num_proj_shards": self.num_proj_shards, "forget_bias": self.forget_bias,
            "state_is_tuple": self.state_is_tuple, **self._tf1_config(),
        }

    def extra_repr(self):
        extras = [f"forget_bias={self.forget_bias}"]
        extras += ["use_peepholes=True"] if self.use_peepholes else []
        extras += [f"num_proj={self.num_proj}"] if self.num_proj is not None else []
        extras += ["state_is_tuple=False"] if not self.state_is_tuple else []
        return f"{super().extra_repr()}, {', '.join(extras)}"


class BasicLSTMCell(LSTMCell):
    """TF1's ``BasicLSTMCell``: ``LSTMCell`` without peepholes, clipping or projection.

    ``c_t = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(j)``,
    ``h_t = tanh(c_t) * sigmoid(o)``; gate order i, j, f, o; the state is
    ``LSTMStateTuple(c, h)`` (``[c, h]`` concatenated with
    ``state_is_tuple=False``). With a zero bias it equals Keras's
    ``LSTMCell`` whose forget-gate bias is ``forget_bias``, after taking
    Keras's i, f, c, o blocks from TF1's i, f, j, o.
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation=None,
        reuse=None,
        *,
        name: str | None = None,
        dtype=None,
        input_size: int | None = None,
    ):
        super().__init__(
            num_units, forget_bias=forget_bias, state_is_tuple=state_is_tuple, activation=activation, reuse=reuse,
            name=name, dtype=dtype, input_size=input_size,
        )

    def get_config(self):
        keep = ("num_units", "forget_bias", "state_is_tuple", "name", "activation", "dtype", "input_size")
        return {k: v for k, v in super().get_config().items() if k in keep}


class LayerNormLSTMCell(LSTMCell):
    """``tf.contrib.rnn.LayerNormLSTMCell``: ``LSTMCell`` with layer normalization (Ba et al. 2016).

    With ``layer_norm=True`` each gate's pre-activation and the new memory
    are normalized over their units before the nonlinearities, each with its
    own gain and shift (starting at ``norm_gain``, ``norm_shift``)::

        i, j, f, o = split(x_t W + m_{t-1} U)                       # TF1 adds no bias here
        i, j, f, o = LN_i(i), LN_j(j), LN_f(f), LN_o(o)             # LN(z) = gain * (z - mean) / sqrt(var + 1e-12) + shift
        c_t = LN_c(sigmoid(f + forget_bias + w_f * c) * c + sigmoid(i + w_i * c) * activation(j))
        then clipping, output gate, projection as ``LSTMCell``

    TF1 keeps the (unused) bias variable under layer norm; so does this
    cell, so checkpoints line up. Without ``layer_norm`` it is
    ``LSTMCell``. The state is an ``LSTMStateTuple``; there is no fused
    kernel (``static_rnn``/``dynamic_rnn`` run its own step).
    Weights: ``LSTMCell``'s, then ``norm_gain`` and ``norm_shift`` (5, units)
    with layer norm, rows i, j, f, o, c.
    """

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        initializer=None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        forget_bias: float = 1.0,
        activation=None,
        layer_norm: bool = False,
        norm_gain: float = 1.0,
        norm_shift: float = 0.0,
        reuse=None,
        *,
        name: str | None = None,
        dtype=None,
        input_size: int | None = None,
    ):
        self.layer_norm = _check_bool(layer_norm, "layer_norm")
        self.norm_gain_init = _check_float(norm_gain, "norm_gain")
        self.norm_shift_init = _check_float(norm_shift, "norm_shift")
        super().__init__(
            num_units, use_peepholes=use_peepholes, cell_clip=cell_clip, initializer=initializer, num_proj=num_proj,
            proj_clip=proj_clip, forget_bias=forget_bias, activation=activation, reuse=reuse, name=name, dtype=dtype,
            input_size=input_size,
        )

    def build(self, input_shape):
        if self.layer_norm:
            self.norm_gain = nn.Parameter(torch.full((5, self.units), self.norm_gain_init))
            self.norm_shift = nn.Parameter(torch.full((5, self.units), self.norm_shift_init))
        super().build(input_shape)

    @property
    def weights(self):
        ws = super().weights
        return ws + [self.norm_gain, self.norm_shift] if ws and self.layer_norm else ws

    def reset_parameters(self):
        super().reset_parameters()
        if self.layer_norm:
            with torch.no_grad():
                self.norm_gain.fill_(self.norm_gain_init)
                self.norm_shift.fill_(self.norm_shift_init)

    def input_bias(self):
        return None if self.layer_norm else self.bias

    def _norm(self, z: torch.Tensor, row: int) -> torch.Tensor:
        if not self.layer_norm:
            return z
        mean = z.mean(-1, keepdim=True)
        var = z.var(-1, unbiased=False, keepdim=True)
        return self.norm_gain[row] * (z - mean) / torch.sqrt(var + 1e-12) + self.norm_shift[row]

    def step(self, xw_t, state, dropout=None):  # noqa: ARG002 - TF1 cells take no Keras dropout masks
        """TF1's contrib step (the class docstring's equations)."""
        c_prev, m_prev = state
        gates = (xw_t + m_prev @ self.recurrent_kernel).split(self.units, dim=-1)
        i, j, f, o = (self._norm(z, row) for row, z in enumerate(gates))
        if self.use_peepholes:
            f = f + self.w_f_diag * c_prev
            i = i + self.w_i_diag * c_prev
        c = self._norm(torch.sigmoid(f + self.forget_bias) * c_prev + torch.sigmoid(i) * self.activation(j), 4)
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

    def get_config(self):
        config = super().get_config()
        for key in ("num_unit_shards", "num_proj_shards", "state_is_tuple"):
            del config[key]
        return {**config, "layer_norm": self.layer_norm, "norm_gain": self.norm_gain_init,
                "norm_shift": self.norm_shift_init}


# ---------------------------------------------------------------- the loops

# kernels.select logs what each call ran on this logger; v1 adds why a TF1-only feature kept a cell off the kernels.
log = logging.getLogger("rnnkit.kernels")


def _training(cell) -> bool:
    # TF1 has no mode: its dropout always runs. Here the cell's module mode decides.
    return cell.training if isinstance(cell, nn.Module) else False


def _check_cell(cell, arg: str = "cell") -> None:
    if not is_cell(cell):
        raise TypeError(f"{arg}: expected a cell (with state_size and forward(x, state)), got {type(cell).__name__}")


# Exact types, as the kernels match them: a subclass may redefine the step.
_LSTMS = (LSTMCell, BasicLSTMCell)
_WITH_CORE = (BasicRNNCell, GRUCell, *_LSTMS)


class _ModuleCell(nn.Module):
    """A plain callable cell (``state_size`` and ``cell(x_t, state)``) as the module ``RNN`` holds."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.state_size = cell.state_size

    def get_initial_state(self, batch_size, dtype=None, device=None):
        return _zero_state(self.cell, batch_size, torch.empty(0, dtype=dtype, device=device))

    def forward(self, x_t, state):
        return self.cell(x_t, state)


def _core_form(cell):
    """``(cell to run, why not fused)``: v1 cells (alone or in a stack) as core cells, else ``cell``.

    A stack changes only when every v1 cell in it has a core form (the
    fused kernels take a stack whole); a concatenated-state ``MultiRNNCell``
    always becomes a tuple-state stack. ``why`` names a TF1-only feature
    that keeps ``cell`` on the reference loop, else None.
    """
    if type(cell) in _LSTMS and cell.tf1_features():
        features = ", ".join(cell.tf1_features())
        return cell, f"{cell.name}: TF1's LSTMCell with {features} has no fused kernel; its own step runs"
    if type(cell) in _WITH_CORE:
        return cell.core_cell(), None
    if not isinstance(cell, nn.Module):
        return _ModuleCell(cell), None
    if isinstance(cell, StackedRNNCells):
        forms = [_core_form(c) for c in cell.cells]
        for k, (_, why) in enumerate(forms):
            if why is not None:
                return cell, f"cells[{k}]: {why}"
        if all(run is c for (run, _), c in zip(forms, cell.cells)) and getattr(cell, "state_is_tuple", True):
            return cell, None
        return StackedRNNCells([run for run, _ in forms], name=cell.name), None
    return cell, None


def _to_core_state(cell, state):
    """``cell``'s state in its core form's structure: ``LSTMStateTuple(c, h)`` (or ``[c, h]``) -> ``LSTMState(h, c)``."""
    if type(cell) in _LSTMS:
        c, h = cell.split_state(state)
        return LSTMState(h, c)
    if isinstance(cell, MultiRNNCell):
        state = cell.split_state(state)
    if isinstance(cell, StackedRNNCells):
        return tuple(_to_core_state(c, s) for c, s in zip(cell.cells, state))
    return state


def _from_core_state(cell, state):
    """The inverse of ``_to_core_state``."""
    if type(cell) in _LSTMS:
        return cell.join_state(state.c, state.h)
    if isinstance(cell, StackedRNNCells):
        states = tuple(_from_core_state(c, s) for c, s in zip(cell.cells, state))
        return cell.join_states(states) if isinstance(cell, MultiRNNCell) else states
    return state


# --------------------------------------------------------------- structures
# TF1's step inputs, outputs and states may nest (tuples of tensors) and each
# tensor may have several feature axes: (batch, 3, 4, 5). A ``torch.Size`` in
# a state_size/output_size is one tensor's feature shape (TF1's TensorShape);
# an int is a width; a tuple nests.


def _leaves(tree) -> list:
    if isinstance(tree, (tuple, list)) and not isinstance(tree, torch.Size):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


def _map(fn, *trees):
    """``fn`` leaf by leaf over trees of one structure (tuples, named tuples, lists)."""
    first = trees[0]
    if isinstance(first, (tuple, list)):
        parts = [_map(fn, *branches) for branches in zip(*trees)]
        return rebuild_tuple(first, parts) if isinstance(first, tuple) else parts
    return fn(*trees)


def _zeros_of(size, batch: int, like: torch.Tensor):
    if isinstance(size, torch.Size):
        return like.new_zeros(batch, *size)
    if isinstance(size, (tuple, list)):
        return tuple(_zeros_of(s, batch, like) for s in size)
    return like.new_zeros(batch, int(size))


def _zero_state(cell, batch: int, like: torch.Tensor):
    """TF1's start state: the cell's ``zero_state``/``get_initial_state``, else zeros of ``state_size``."""
    if isinstance(cell, Layer) or hasattr(cell, "get_initial_state"):
        return initial_state_of(cell, batch, like)
    if hasattr(cell, "zero_state"):
        return cell.zero_state(batch, like.dtype)
    return _zeros_of(cell.state_size, batch, like)


def _keep(alive: torch.Tensor, new, old):
    """``new`` in the rows still running, ``old`` elsewhere; a scalar (batch-free) leaf always takes ``new``."""
    if new.dim() == 0:
        return new
    return torch.where(alive.view(-1, *([1] * (new.dim() - 1))), new, old)


def _readable_loop(cell, steps: list, state, lengths, like: torch.Tensor):
    """The cell over a list of step inputs (any structure), TF1's rule past each row's length.

    ``y_t`` is zeros and the state is carried through once ``t >= length``.
    Returns ``(outputs: list of output structures, final state)``.
    """
    batch = _leaves(steps[0])[0].shape[0]
    dropout = sample_dropout_masks(cell, batch, like) if _training(cell) else None
    outputs = []
    for t, x_t in enumerate(steps):
        y, new_state = call_cell(cell, x_t, state, dropout)
        if lengths is not None:
            alive = t < lengths.to(like.device)
            y = _map(lambda v, a=alive: _keep(a, v, torch.zeros_like(v)), y)
            new_state = _map(partial(_keep, alive), new_state, state)
        outputs.append(y)
        state = new_state
    return outputs, state


def _why_readable(cell, steps: list, state) -> str | None:
    """Why ``steps`` cannot go through ``RNN`` (one float (batch, features) tensor per step, 2-D states), or None."""
    x0 = steps[0] if steps else None
    if not steps:
        return "0 time steps: outputs are empty and the state is the initial state"
    if not isinstance(x0, torch.Tensor):
        return "nested (tuple) step inputs"
    if x0.dim() != 2:
        return f"multi-dimensional step inputs {tuple(x0.shape)}"
    if not x0.is_floating_point():
        return f"{x0.dtype} step inputs (ids)"
    if isinstance(getattr(cell, "output_size", 0), tuple):
        return "tuple (nested) cell outputs"
    if any(s.dim() != 2 for s in _leaves(state)):
        return "a state that is not (batch, size) tensors"
    return None


def _check_sequence_length(sequence_length, batch: int, time: int):
    """TF1's check first (a vector), then rnnkit's (integers in [0, time], one per row)."""
    if sequence_length is None:
        return None
    shape = tuple(torch.as_tensor(np.asarray(sequence_length) if not isinstance(sequence_length, torch.Tensor)
                                  else sequence_length).shape)
    if len(shape) != 1:
        raise ValueError(f"sequence_length: must be a vector of length batch_size, but saw shape: {shape}")
    return check_lengths(sequence_length, batch, time, "sequence_length")


def _run(api: str, cell, steps: list, initial_state, lengths, dtype, batch: int):
    """Both functions' body: the cell over ``steps`` (a list of step inputs), on its core form where it has one.

    One float ``(batch, features)`` tensor per step goes through ``RNN``
    (so a fused kernel runs where one applies); anything else (nested or
    multi-dimensional steps, ids, tuple outputs, scalar states, 0 steps)
    runs ``_readable_loop`` and says why. Records on the cell (when it is a
    module) ``kernel_used`` and ``kernel_reason``, as ``RNN`` does.
    Returns ``(outputs, state)``: outputs (batch, time, out) from ``RNN``,
    or a list of output structures from the readable loop.
    """
    leaves = _leaves(steps[0]) if steps else []
    floats = [v for v in leaves if v.is_floating_point()]
    param = first_parameter(cell) if isinstance(cell, nn.Module) else None
    if param is None:
        # TF1: the state's dtype is dtype=, else the inputs'
        like = torch.empty(0, dtype=dtype or (floats[0].dtype if floats else torch.float32))
    else:
        like = torch.empty(0, dtype=param.dtype, device=param.device)
    if leaves and isinstance(cell, Layer):
        x0 = leaves[0]
        cell.maybe_build(x0.shape[1:], like=x0 if x0.is_floating_point() else like)
        param = first_parameter(cell)
        like = like if param is None else torch.empty(0, dtype=param.dtype, device=param.device)
    if param is not None and floats and floats[0].dtype != param.dtype:
        raise TypeError(
            f"inputs: dtype {floats[0].dtype} does not match the cell's weights ({param.dtype}); "
            f"pass dtype={param.dtype} or convert the cell with .to({floats[0].dtype})"
        )
    template = _zero_state(cell, batch, like)
    state = template if initial_state is None else _check_state(initial_state, template)
    name = f"{api}({getattr(cell, 'name', type(cell).__name__)})"
    why = _why_readable(cell, steps, state)
    if why is not None:
        outputs, state = _readable_loop(cell, steps, state, lengths, like) if steps else ([], state)
        _record(cell, name, "reference", f"rnnkit.v1's readable loop: {why}")
        return outputs, state
    run, why_not = _core_form(cell)
    if run is not cell:
        state = _to_core_state(cell, state)
    layer = RNN(run, return_sequences=True, return_state=True, zero_output_for_mask=True, name=name)
    outputs, *flat_state = layer(torch.stack(steps, dim=1), initial_state=state, lengths=lengths,
                                 training=_training(cell))
    state = tree_unflatten(initial_state_of(run, batch, like), tree_flatten(flat_state))  # stacked: nested per cell
    if run is not cell:
        state = _from_core_state(cell, state)
    reason = layer.kernel_reason
    if layer.kernel_used == "reference" and why_not is not None:
        reason = why_not
        log.debug("%s: reference (%s)", name, reason)
    _record(cell, name, layer.kernel_used, reason)
    return outputs, state


def _check_state(initial_state, template):
    """The given state in the template's structure; TF1's scalar and n-D states pass with their own shapes."""
    if all(isinstance(s, torch.Tensor) and s.dim() == 2 for s in _leaves(template)):
        return check_initial_state(initial_state, template)
    return initial_state


def _record(cell, name: str, used: str, reason: str) -> None:
    if used == "reference":
        log.debug("%s: reference (%s)", name, reason)
    if isinstance(cell, nn.Module):
        cell.kernel_used, cell.kernel_reason = used, reason


def _as_input(x, where: str) -> torch.Tensor:
    """A float tensor (numpy made float32, as everywhere in rnnkit), or a torch integer tensor as it is (ids)."""
    if isinstance(x, torch.Tensor) and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        return x
    return as_tensor(x, where)


def _steps_of(inputs, arg: str, dtype) -> list:
    """A list of step structures: each leaf a tensor (floats converted to ``dtype``)."""
    def leaf(x, where):
        x = _as_input(x, where)
        return x.to(dtype) if dtype is not None and x.is_floating_point() else x
    return [_map_with_path(leaf, x, f"{arg}[{t}]") for t, x in enumerate(inputs)]


def _map_with_path(fn, tree, path: str):
    if isinstance(tree, (tuple, list)):
        parts = [_map_with_path(fn, t, f"{path}[{k}]") for k, t in enumerate(tree)]
        return rebuild_tuple(tree, parts) if isinstance(tree, tuple) else parts
    return fn(tree, path)


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):  # noqa: ARG001
    """TF1's ``static_rnn``: the cell over a list of time steps.

    Args:
        cell: any rnnkit cell or wrapper, or a plain callable cell.
        inputs: a list of step inputs, one per time step: ``(batch,
            features)`` tensors (or numpy arrays, made float32), or TF1's
            other forms: ``(batch, d1, d2, ...)`` tensors, tuples of tensors.
        initial_state: in the cell's state structure; zeros if None.
        dtype: convert floating inputs to this torch dtype (TF1's argument;
            integer inputs, ids for an ``EmbeddingWrapper``, stay as they are).
        sequence_length: ``(batch,)`` integer lengths in [0, len(inputs)].
        scope: TF1's variable scope; torch parameters belong to the cell, so it is ignored.

    Returns ``(outputs, state)``: a list of ``(batch, output_size)``
    tensors (output structures for nested cells), and the state in the
    cell's structure. With ``sequence_length``, TF1's rule::

        y_t, new = cell(x_t, state)
        y_t   = y_t        if t < length else 0
        state = new        if t < length else state      # kept from the last valid step

    so a row of length 0 gives zeros and its initial state. TF1 unrolled
    this loop in its graph; here it is ``RNN`` on the steps stacked
    along time, then split again: the same kernels and the same numbers as
    ``dynamic_rnn``. Nested or multi-dimensional steps and tuple outputs
    run the readable loop (``cell.kernel_reason`` says so).

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
    dtype = None if dtype is None else _check_dtype(dtype)
    steps = _steps_of(inputs, "inputs", dtype)
    first = _leaves(steps[0])
    for v in first:
        if v.dim() < 2 and v.is_floating_point():
            raise ValueError(f"inputs[0]: expected a 2-D tensor (batch, features), got shape {tuple(v.shape)}")
    for t, x in enumerate(steps):
        shapes = [tuple(v.shape) for v in _leaves(x)]
        if shapes != [tuple(v.shape) for v in first]:
            want = [tuple(v.shape) for v in first]
            raise ValueError(f"inputs[{t}]: expected shape {want[0] if len(want) == 1 else want} like inputs[0], "
                             f"got {shapes[0] if len(shapes) == 1 else shapes}")
    lengths = _check_sequence_length(sequence_length, first[0].shape[0], len(steps))
    outputs, state = _run("static_rnn", cell, steps, initial_state, lengths, dtype, first[0].shape[0])
    if isinstance(outputs, torch.Tensor):
        outputs = list(outputs.unbind(1))
    return outputs, state


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, parallel_iterations=None,  # noqa: ARG001
                swap_memory=False, time_major=False, scope=None):  # noqa: ARG001
    """TF1's ``dynamic_rnn``: the cell over a ``(batch, time, features)`` tensor.

    Args:
        cell: any rnnkit cell or wrapper, or a plain callable cell.
        inputs: ``(batch, time, features)``, or ``(time, batch, features)``
            with ``time_major=True``; a tensor or a numpy array (float32).
            TF1's other forms too: more feature axes ``(batch, time, d1,
            d2, ...)``, a tuple of such tensors, integer ids.
        sequence_length: ``(batch,)`` integer lengths in [0, time].
        initial_state: in the cell's state structure; zeros if None.
        dtype: convert floating inputs to this torch dtype (TF1's argument).
        parallel_iterations, swap_memory, scope: TF1's graph settings, ignored.

    Returns ``(outputs, state)``: outputs ``(batch, time, output_size)``
    (time first with ``time_major``; a tuple of them for tuple outputs),
    zero past each row's length; the state at each row's last valid step,
    in the cell's structure (``LSTMStateTuple`` for the v1 LSTMs, a tuple
    per cell for ``MultiRNNCell``). For one float tensor it is
    ``RNN(cell, return_sequences=True, return_state=True,
    zero_output_for_mask=True)`` called with ``lengths=sequence_length``,
    so a fused kernel runs where one applies; the v1 cells (the LSTMs
    without peepholes, clipping or projection), alone or in a
    ``MultiRNNCell``, run as their ``core_cell()``. Other inputs, tuple
    outputs, scalar states and 0 time steps run the readable loop.
    Afterwards ``cell.kernel_used`` and ``cell.kernel_reason`` say what ran and why.

    >>> outputs, h = dynamic_rnn(BasicRNNCell(5), np.zeros((4, 2, 3)))      # outputs (4, 2, 5), h (4, 5)
    """
    _check_cell(cell)
    dtype = None if dtype is None else _check_dtype(dtype)
    x = _map_with_path(_as_input, inputs, "inputs")
    for v in _leaves(x):
        if v.dim() < 3:
            layout = "(time, batch, features)" if time_major else "(batch, time, features)"
            raise ValueError(f"inputs: expected a 3-D tensor {layout}, got shape {tuple(v.shape)}")
    if dtype is not None:
        x = _map(lambda v: v.to(dtype) if v.is_floating_point() else v, x)
    if time_major:
        x = _map(lambda v: v.transpose(0, 1), x)
    batch, time = _leaves(x)[0].shape[:2]
    lengths = _check_sequence_length(sequence_length, batch, time)
    steps = [_map(lambda v, t=t: v[:, t], x) for t in range(time)]
    outputs, state = _run("dynamic_rnn", cell, steps, initial_state, lengths, dtype, batch)
    if not isinstance(outputs, torch.Tensor):  # the readable loop's list: stack each leaf over time
        outputs = _stack_steps(outputs, cell, batch, state, dtype)
    return _map(lambda v: v.transpose(0, 1), outputs) if time_major else outputs, state


def _stack_steps(outputs: list, cell, batch: int, state, dtype):
    """A list of output structures -> one structure of (batch, time, ...) tensors; 0 steps: empty ones."""
    if outputs:
        return _map(lambda *steps: torch.stack(steps, dim=1), *outputs)
    like_state = next((s for s in _leaves(state) if isinstance(s, torch.Tensor) and s.is_floating_point()), None)
    like = torch.empty(0, dtype=dtype or (like_state.dtype if like_state is not None else torch.float32))
    return _map(lambda z: z.unsqueeze(1)[:, :0], _zeros_of(cell.output_size, batch, like))


# ------------------------------------------------------------ bidirectional


def _reverse_time(x: torch.Tensor, lengths) -> torch.Tensor:
    """``x`` (batch, time, ...) with each row's first ``length`` steps reversed (TF1's ``reverse_sequence``)."""
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    n = lengths.to(x.device)[:, None]
    index = torch.where(t < n, n - 1 - t, t)  # padding stays where it is
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def _reverse_steps(steps: list, lengths) -> list:
    """A list of step structures, reversed in time row by row (each row within its length)."""
    stacked = _map(lambda *s: torch.stack(s, dim=1), *steps)
    flipped = _map(lambda v: _reverse_time(v, lengths), stacked)
    return [_map(lambda v, t=t: v[:, t], flipped) for t in range(len(steps))]


def static_bidirectional_rnn(cell_fw, cell_bw, inputs, initial_state_fw=None, initial_state_bw=None, dtype=None,
                             sequence_length=None, scope=None):  # noqa: ARG001
    """TF1's ``static_bidirectional_rnn``: ``static_rnn`` forwards, and backwards on the reversed steps.

    The backward cell reads each row's steps from its last valid one back
    to the first (``sequence_length`` respected, as TF1's
    ``reverse_sequence``); its outputs are put back in time order and
    joined to the forward ones on the feature axis (axis 1 of every output
    tensor)::

        outputs[t] = concat([y_fw[t], y_bw[t]], 1)

    Returns ``(outputs, state_fw, state_bw)``: a list of ``(batch, out_fw
    + out_bw)`` tensors and each direction's final state. Each direction
    runs as ``static_rnn`` does (fused kernels where the cell has a core form).

    >>> outputs, s_fw, s_bw = static_bidirectional_rnn(LSTMCell(3), LSTMCell(3), [X0, X1])  # outputs[t]: (batch, 6)
    """
    _check_cell(cell_fw, "cell_fw")
    _check_cell(cell_bw, "cell_bw")
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError(f"inputs: expected a non-empty list of step inputs, got {type(inputs).__name__}")
    outputs_fw, state_fw = static_rnn(cell_fw, inputs, initial_state_fw, dtype, sequence_length)
    steps = _steps_of(inputs, "inputs", dtype)
    batch = _leaves(steps[0])[0].shape[0]
    lengths = _check_sequence_length(sequence_length, batch, len(steps))
    outputs_bw, state_bw = static_rnn(cell_bw, _reverse_steps(steps, lengths), initial_state_bw, dtype, lengths)
    outputs_bw = _reverse_steps(outputs_bw, lengths)
    outputs = [_map(lambda a, b: torch.cat([a, b], dim=1), fw, bw) for fw, bw in zip(outputs_fw, outputs_bw)]
    return outputs, state_fw, state_bw


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None, initial_state_fw=None,
                              initial_state_bw=None, dtype=None, parallel_iterations=None,  # noqa: ARG001
                              swap_memory=False, time_major=False, scope=None):  # noqa: ARG001
    """TF1's ``bidirectional_dynamic_rnn``: ``dynamic_rnn`` forwards, and backwards on the reversed sequence.

    Returns ``((outputs_fw, outputs_bw), (state_fw, state_bw))``, the
    outputs each ``(batch, time, out)`` (time first with ``time_major``),
    the backward ones put back in time order; TF1 leaves the joining to the
    caller (``torch.cat(outputs, 2)``). With ``sequence_length`` the
    backward cell starts at each row's last valid step (TF1's
    ``reverse_sequence``). Each direction runs as ``dynamic_rnn`` does.

    >>> (y_fw, y_bw), (s_fw, s_bw) = bidirectional_dynamic_rnn(GRUCell(3), GRUCell(3), x, sequence_length=lengths)
    """
    _check_cell(cell_fw, "cell_fw")
    _check_cell(cell_bw, "cell_bw")
    outputs_fw, state_fw = dynamic_rnn(cell_fw, inputs, sequence_length, initial_state_fw, dtype, time_major=time_major)
    x = _map_with_path(_as_input, inputs, "inputs")
    if time_major:
        x = _map(lambda v: v.transpose(0, 1), x)
    batch, time = _leaves(x)[0].shape[:2]
    lengths = _check_sequence_length(sequence_length, batch, time)
    reversed_x = _map(lambda v: _reverse_time(v, lengths), x)
    outputs_bw, state_bw = dynamic_rnn(cell_bw, reversed_x, lengths, initial_state_bw, dtype)
    outputs_bw = _map(lambda v: _reverse_time(v, lengths), outputs_bw)
    if time_major:
        outputs_bw = _map(lambda v: v.transpose(0, 1), outputs_bw)
    return (outputs_fw, outputs_bw), (state_fw, state_bw)


# ------------------------------------------------------------ state saving


def static_state_saving_rnn(cell, inputs, state_saver, state_name, sequence_length=None, scope=None):  # noqa: ARG001
    """TF1's ``static_state_saving_rnn``: ``static_rnn`` starting from saved states and saving the final ones.

    ``state_saver`` is any object with TF1's two methods::

        state_saver.state(name)              -> the tensor to start from
        state_saver.save_state(name, value)  -> called with the final state

    ``state_name`` names the state's tensors in its structure: a string for
    a one-tensor state, a tuple for an ``LSTMStateTuple`` (``("c", "m")``),
    nested tuples for a ``MultiRNNCell``. Returns ``(outputs, state)`` as
    ``static_rnn``, after saving every part of ``state``.

    >>> outputs, state = static_state_saving_rnn(LSTMCell(3), steps, saver, state_name=("c", "m"))
    """
    _check_cell(cell)
    for method in ("state", "save_state"):
        if not callable(getattr(state_saver, method, None)):
            raise TypeError(f"state_saver: expected an object with state(name) and save_state(name, value), "
                            f"got {type(state_saver).__name__} without {method}()")
    names = _leaves(state_name)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"state_name: expected a string or (nested) tuples of strings, got {state_name!r}")
    n_state = len(_leaves(cell.state_size))
    if n_state != len(names):
        raise ValueError(f"state_name: the cell's state has {n_state} tensor(s), got {len(names)} name(s) {state_name!r}")
    initial_state = _map(state_saver.state, state_name)
    outputs, state = static_rnn(cell, inputs, initial_state=initial_state, sequence_length=sequence_length)
    for name, value in zip(names, _leaves(state)):
        state_saver.save_state(name, value)
    return outputs, state


# --------------------------------------------------------------------- raw_rnn


def raw_rnn(cell, loop_fn, parallel_iterations=None, swap_memory=False, scope=None):  # noqa: ARG001
    """TF1's ``raw_rnn``: a loop whose inputs, states and emitted values ``loop_fn`` decides.

    ``loop_fn(time, cell_output, cell_state, loop_state)`` returns
    ``(finished, next_input, next_state, emit_output, next_loop_state)``;
    at ``time == 0`` (called with None for the last three) it gives the first input, the
    initial state and the emit structure (None: the cell's output). Then::

        while not all(finished):
            output, cell_state = cell(next_input, state)
            finished_now, next_input, next_state, emit, loop_state = loop_fn(time + 1, output, cell_state, loop_state)
            emit  = where(finished, zeros, emit or output)       # finished rows emit zeros
            state = where(finished, state, next_state)           # and keep their state
            finished = finished | finished_now

    Returns ``(emitted, final_state, final_loop_state)``: ``emitted`` in
    the emit structure, each tensor stacked over time first
    ``(time, batch, ...)``; a ``next_loop_state`` of None keeps the
    previous one. TF1's TensorArrays are plain tensors or Python lists here.
    The readable loop runs (``loop_fn`` is Python code between the steps).
    """
    _check_cell(cell)
    finished, next_input, state, emit_structure, loop_state = loop_fn(0, None, None, None)
    finished = torch.as_tensor(finished, dtype=torch.bool)
    if finished.dim() != 1:
        raise ValueError(f"loop_fn: finished must be a vector (batch,), got shape {tuple(finished.shape)}")
    batch = finished.shape[0]
    like_x = _leaves(next_input)[0]
    if isinstance(cell, Layer):
        cell.maybe_build(like_x.shape[1:], like=like_x)
    floats = [s for s in _leaves(state) if isinstance(s, torch.Tensor) and s.is_floating_point()]
    like = torch.empty(0, dtype=floats[0].dtype if floats else like_x.dtype, device=like_x.device)
    if emit_structure is None:
        zero_emit = _zeros_of(cell.output_size, batch, like)
    else:
        zero_emit = _map(lambda e: torch.zeros(batch, *e.shape, dtype=e.dtype, device=like.device), emit_structure)
    dropout = sample_dropout_masks(cell, batch, like) if _training(cell) else None
    emitted = []
    time = 0
    while not bool(finished.all()):
        output, cell_state = call_cell(cell, next_input, state, dropout)
        finished_now, next_input, next_state, emit, next_loop_state = loop_fn(time + 1, output, cell_state, loop_state)
        loop_state = loop_state if next_loop_state is None else next_loop_state
        running = ~finished
        emit = output if emit is None else emit
        emitted.append(_map(partial(_keep, running), emit, zero_emit))
        state = _map(partial(_keep, running), next_state, state)
        finished = finished | torch.as_tensor(finished_now, dtype=torch.bool)
        time += 1
    if emitted:
        outputs = _map(lambda *steps: torch.stack(steps, dim=0), *emitted)
    else:
        outputs = _map(lambda z: z.unsqueeze(0)[:0], zero_emit)
    return outputs, state, loop_state
