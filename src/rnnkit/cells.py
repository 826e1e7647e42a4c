"""Recurrent cells: one time step each.

A cell maps one input step and the previous state to an output and the new
state::

    y_t, state_t = cell(x_t, state_{t-1})

It keeps nothing between calls. The time loop lives in ``rnnkit.RNN``.

Weights use Keras's layout and gate order, so arrays move 1:1 from Keras:

=================  ===============  ======================  ==================  =====
cell               kernel           recurrent_kernel        bias                gates
=================  ===============  ======================  ==================  =====
SimpleRNNCell      (in, u)          (u, u)                  (u,)                -
GRUCell            (in, 3u)         (u, 3u)                 (2, 3u) [#]_        z, r, h
LSTMCell           (in, 4u)         (u, 4u)                 (4u,)               i, f, c, o
=================  ===============  ======================  ==================  =====

.. [#] ``reset_after=True`` (the default): row 0 is the input bias, row 1
   the recurrent bias. ``reset_after=False`` has one bias of shape ``(3u,)``.

Each cell splits its step in two so a fast path can hoist the input side of
every time step into one large matmul before the loop:

* ``project_input(x)``: ``x W + b`` for any leading shape (one step or all);
* ``step(xw_t, state)``: the recurrence, given the projected input.

``forward(x_t, state) == step(project_input(x_t), state)``.

Dropout (Keras semantics): the layer samples one mask per sequence and
passes it in as ``DropoutMasks(input, recurrent)``; ``input`` multiplies
``x_t`` before the projection and ``recurrent`` multiplies ``h_{t-1}`` before
the recurrent projection (not the GRU's final update).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .base import Layer, deserialize_layer, lazy_parameter, materialize, serialize_layer
from .constraints import get_constraint
from .ops import (
    as_tensor,
    check_positive_int,
    check_rate,
    config_spec,
    get_activation,
    get_initializer,
    like_weights,
    object_config,
    rebuild_tuple,
)
from .regularizers import get_regularizer


class LSTMState(NamedTuple):
    """The LSTM's state: hidden output ``h`` and memory cell ``c``, each (batch, units)."""

    h: torch.Tensor
    c: torch.Tensor


class DropoutMasks(NamedTuple):
    """Per-sequence dropout masks, already scaled by 1/(1 - rate); None = no dropout."""

    input: torch.Tensor | None = None  # (batch, input_size)
    recurrent: torch.Tensor | None = None  # (batch, units)


class Cell(Layer):
    """Shared machinery of the built-in cells: arguments, build, weights, config.

    Subclasses set ``gates`` (how many blocks of ``units`` the projections
    have) and write ``step``.
    """

    gates = 1
    states_as_list = False  # the state is a tensor, or LSTMState(h, c)

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        input_size: int | None = None,
        name: str | None = None,
        dtype=None,
    ):
        if isinstance(activation, int) and not isinstance(activation, bool) and isinstance(units, int):
            # torch's nn.LSTMCell(input_size, hidden_size) habit: rnnkit's first argument is the units.
            raise TypeError(
                f"activation: expected an activation name or a callable, got int {activation}; "
                f"{type(self).__name__}'s arguments are Keras's (units, activation, ...). "
                f"For torch's ({units}, {activation}) = (input_size, hidden_size) write "
                f"{type(self).__name__}({activation}, input_size={units})"
            )
        super().__init__(name=name, dtype=dtype)
        self.units = check_positive_int(units, "units")
        self.activation = get_activation(activation, "activation")
        self.use_bias = bool(use_bias)
        self.kernel = lazy_parameter()  # shapes come at build (see base.materialize)
        self.recurrent_kernel = lazy_parameter()
        self.bias = lazy_parameter() if self.use_bias else None
        self.kernel_initializer = get_initializer(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = get_initializer(recurrent_initializer, "recurrent_initializer")
        self.bias_initializer = get_initializer(bias_initializer, "bias_initializer")
        self.dropout = check_rate(dropout, "dropout")
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        self.seed = seed
        self.input_size = None
        self.kernel_regularizer = get_regularizer(kernel_regularizer, "kernel_regularizer")
        self.recurrent_regularizer = get_regularizer(recurrent_regularizer, "recurrent_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, "bias_regularizer")
        self.kernel_constraint = get_constraint(kernel_constraint, "kernel_constraint")
        self.recurrent_constraint = get_constraint(recurrent_constraint, "recurrent_constraint")
        self.bias_constraint = get_constraint(bias_constraint, "bias_constraint")
        # Remember the specs as given, for get_config().
        self._specs = {
            "activation": activation,
            "kernel_initializer": kernel_initializer,
            "recurrent_initializer": recurrent_initializer,
            "bias_initializer": bias_initializer,
        }
        if input_size is not None:
            self.build((check_positive_int(input_size, "input_size"),))

    # ----------------------------------------------------------------- sizes
    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    # ----------------------------------------------------------------- build
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape[-1]`` features."""
        self.input_size = int(input_shape[-1])
        g_units = self.gates * self.units
        materialize(self, "kernel", (self.input_size, g_units))
        materialize(self, "recurrent_kernel", (self.units, g_units))
        if self.use_bias:
            materialize(self, "bias", self.bias_shape())
        self.reset_parameters()
        self.built = True

    def reset_parameters(self) -> None:
        """Draw fresh weights from the initializers (torch's global RNG)."""
        with torch.no_grad():
            for p, init in (
                (self.kernel, self.kernel_initializer),
                (self.recurrent_kernel, self.recurrent_initializer),
                (self.bias, self.bias_initializer),
            ):
                if p is not None:
                    p.copy_(init(tuple(p.shape), dtype=p.dtype))

    def weight_penalties(self):
        if not self.built:
            return []
        triples = [
            (self.kernel, self.kernel_regularizer, self.kernel_constraint),
            (self.recurrent_kernel, self.recurrent_regularizer, self.recurrent_constraint),
            (self.bias, self.bias_regularizer, self.bias_constraint),
        ]
        return [(w, r, c) for w, r, c in triples if w is not None and (r is not None or c is not None)]

    @property
    def weights(self) -> list[nn.Parameter]:
        if not self.built:
            return []  # as Keras: no weights before build
        ws = [self.kernel, self.recurrent_kernel]
        return ws + [self.bias] if self.use_bias else ws

    def get_initial_state(self, batch_size: int, dtype=None, device=None):
        """Zeros of the state's structure: (batch, units) tensors."""
        like = self.kernel if self.built else None
        dtype = dtype or (like.dtype if like is not None else torch.get_default_dtype())
        device = device or (like.device if like is not None else None)
        return torch.zeros(batch_size, self.units, dtype=dtype, device=device)

    # -------------------------------------------------------------- the step
    def input_bias(self) -> torch.Tensor | None:
        return self.bias

    def project_input(self, x: torch.Tensor, dropout: DropoutMasks | None = None) -> torch.Tensor:
        """``x W + b`` for x of shape (..., input_size): one step or a whole sequence."""
        if dropout is not None and dropout.input is not None:
            m = dropout.input
            x = x * (m if x.dim() == m.dim() else m.unsqueeze(1))
        xw = x @ self.kernel
        b = self.input_bias()
        return xw if b is None else xw + b

    def step(self, xw_t, state, dropout: DropoutMasks | None = None):
        raise NotImplementedError

    def forward(self, x_t: torch.Tensor, state, dropout: DropoutMasks | None = None):
        x_t = as_tensor(x_t, "x_t")
        if x_t.dim() != 2:
            raise ValueError(f"x_t: cell {self.name!r} expects one time step (batch, features), got shape {tuple(x_t.shape)}")
        if not self.built:
            self.maybe_build(x_t.shape[1:], like=x_t)
        elif x_t.shape[-1] != self.input_size:
            raise ValueError(
                f"x_t: cell {self.name!r} was built for {self.input_size} input features, "
                f"got {x_t.shape[-1]} (shape {tuple(x_t.shape)})"
            )
        if x_t.dtype != self.kernel.dtype:
            raise TypeError(f"x_t: dtype {x_t.dtype} does not match cell {self.name!r}'s weights ({self.kernel.dtype})")
        self._check_state(state, x_t)
        return self.step(self.project_input(x_t, dropout), state, dropout)

    def _check_state(self, state, x_t) -> None:
        """Cells are called directly too: a wrong state must fail here, not broadcast silently."""
        sizes = self.state_size if isinstance(self.state_size, tuple) else (self.state_size,)
        if len(sizes) == 1:
            leaves = [state]
        elif isinstance(state, (tuple, list)) and len(state) == len(sizes):
            leaves = list(state)
        else:
            got = f"a tensor of shape {tuple(state.shape)}" if isinstance(state, torch.Tensor) else type(state).__name__
            raise TypeError(f"state: cell {self.name!r} expects a tuple of {len(sizes)} tensors, got {got}")
        for i, (s, n) in enumerate(zip(leaves, sizes)):
            arg = "state" if len(sizes) == 1 else f"state[{i}]"
            if not isinstance(s, torch.Tensor):
                raise TypeError(f"{arg}: cell {self.name!r} expects a tensor of shape ({x_t.shape[0]}, {n}), got {type(s).__name__}")
            if tuple(s.shape) != (x_t.shape[0], n):
                raise ValueError(f"{arg}: cell {self.name!r} expects shape (batch, {n}) = ({x_t.shape[0]}, {n}), got {tuple(s.shape)}")
            if s.dtype != x_t.dtype:
                raise TypeError(f"{arg}: dtype {s.dtype} does not match the input's ({x_t.dtype})")

    @staticmethod
    def _recurrent_input(h: torch.Tensor, dropout: DropoutMasks | None) -> torch.Tensor:
        if dropout is not None and dropout.recurrent is not None:
            return h * dropout.recurrent
        return h

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        cfg = {
            "name": self.name,
            "units": self.units,
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "input_size": self.input_size,
        }
        cfg.update({k: config_spec(v, self.name, k) for k, v in self._specs.items()})
        for kind in ("kernel", "recurrent", "bias"):
            cfg[f"{kind}_regularizer"] = object_config(getattr(self, f"{kind}_regularizer"))
            cfg[f"{kind}_constraint"] = object_config(getattr(self, f"{kind}_constraint"))
        return cfg

    def extra_repr(self) -> str:
        return f"units={self.units}, input_size={self.input_size}"


def check_implementation(value) -> int:
    """Keras's ``implementation`` (0 and 1: many small matmuls, 2: batched): accepted, same numbers.

    rnnkit picks its kernel itself (``rnnkit.explain``); the value is kept for ``get_config``.
    """
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"implementation: expected 0, 1 or 2 (Keras's kernel choice), got {value!r}")
    return int(value)


class SimpleRNNCell(Cell):
    """Elman cell, the seeds' ``Y_t = φ([X_t, Y_{t-1}] [W_x; W_y] + b)``::

        h_t = activation(x_t W + h_{t-1} U + b)
        y_t = h_t

    Shapes: x_t (batch, in), h (batch, units). State: the tensor h.

    >>> cell = SimpleRNNCell(2, input_size=4)
    >>> y, h = cell(torch.zeros(3, 4), cell.get_initial_state(3))
    >>> y.shape
    torch.Size([3, 2])
    """

    gates = 1

    def step(self, xw_t, h, dropout=None):
        h = self.activation(xw_t + self._recurrent_input(h, dropout) @ self.recurrent_kernel)
        return h, h


class GRUCell(Cell):
    """Gated recurrent unit (Cho et al. 2014), Keras gate order z, r, h::

        x_z, x_r, x_h = split(x_t W + b_in)
        h_z, h_r, h_h = split(h_{t-1} U + b_rec)           # reset_after=True
        z  = recurrent_activation(x_z + h_z)               # update gate
        r  = recurrent_activation(x_r + h_r)               # reset gate
        hh = activation(x_h + r * h_h)                     # candidate
        h_t = z * h_{t-1} + (1 - z) * hh

    With ``reset_after=False`` the reset gate acts before the matmul:
    ``hh = activation(x_h + (r * h_{t-1}) U_h)`` and there is one bias.
    Shapes: x_t (batch, in), h (batch, units). State: the tensor h.
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after: bool = True,
                 implementation: int = 2, **kwargs):
        self.reset_after = bool(reset_after)
        self.implementation = check_implementation(implementation)
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = get_activation(recurrent_activation, "recurrent_activation")
        self._specs["recurrent_activation"] = recurrent_activation

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def step(self, xw_t, h, dropout=None):
        u = self.units
        x_z, x_r, x_h = xw_t.split(u, dim=-1)
        h_in = self._recurrent_input(h, dropout)
        if self.reset_after:
            hu = h_in @ self.recurrent_kernel
            if self.bias is not None:
                hu = hu + self.bias[1]
            h_z, h_r, h_h = hu.split(u, dim=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            hh = self.activation(x_h + r * h_h)
        else:
            h_z, h_r = (h_in @ self.recurrent_kernel[:, : 2 * u]).split(u, dim=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            hh = self.activation(x_h + (r * h_in) @ self.recurrent_kernel[:, 2 * u :])
        h = z * h + (1 - z) * hh
        return h, h

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after, "implementation": self.implementation}


def swap_gru_gates(w):
    """Keras's GRU gate blocks z, r, h <-> torch's r, z, n along the last axis.

    The first two of three equal blocks swap places, so the same function
    converts both ways. ``w``: a torch tensor (differentiable) or a numpy
    array, e.g. a kernel (in, 3u), a recurrent kernel (u, 3u) or a bias (3u,).
    """
    if isinstance(w, torch.Tensor):
        z, r, h = w.chunk(3, -1)
        return torch.cat([r, z, h], -1)
    z, r, h = np.split(w, 3, -1)
    return np.concatenate([r, z, h], -1)


class LSTMCell(Cell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), Keras gate order i, f, c, o::

        i, f, g, o = split(x_t W + h_{t-1} U + b)
        i, f, o = recurrent_activation(i), recurrent_activation(f), recurrent_activation(o)
        g   = activation(g)
        c_t = f * c_{t-1} + i * g
        h_t = o * activation(c_t)
        y_t = h_t

    ``unit_forget_bias=True`` *sets* the forget-gate bias to 1.0 at build time
    (Keras); TF1's ``BasicLSTMCell`` instead *adds* a forget bias at run time.
    Shapes: x_t (batch, in). State: ``LSTMState(h, c)``, each (batch, units).
    """

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias: bool = True,
                 implementation: int = 2, **kwargs):
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = check_implementation(implementation)
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = get_activation(recurrent_activation, "recurrent_activation")
        self._specs["recurrent_activation"] = recurrent_activation

    @property
    def state_size(self):
        return (self.units, self.units)

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None and self.unit_forget_bias:
            with torch.no_grad():
                self.bias[self.units : 2 * self.units] = 1.0

    def get_initial_state(self, batch_size, dtype=None, device=None):
        h = super().get_initial_state(batch_size, dtype, device)
        return LSTMState(h, torch.zeros_like(h))

    def step(self, xw_t, state, dropout=None):
        h, c = state
        z = xw_t + self._recurrent_input(h, dropout) @ self.recurrent_kernel
        i, f, g, o = z.split(self.units, dim=-1)
        i, f, o = self.recurrent_activation(i), self.recurrent_activation(f), self.recurrent_activation(o)
        c = f * c + i * self.activation(g)
        h = o * self.activation(c)
        return h, LSTMState(h, c)

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias, "implementation": self.implementation}


# --------------------------------------------------------------- any cell


def is_cell(obj) -> bool:
    """Anything with ``state_size`` that can be called as ``cell(x, state)``."""
    return callable(obj) and hasattr(obj, "state_size")


def initial_state_of(cell, batch_size: int, like: torch.Tensor):
    """Zeros in the cell's state structure, on ``like``'s dtype and device.

    Uses the cell's own ``get_initial_state`` when it has one; otherwise
    ``state_size`` decides: an int gives one tensor, a tuple or list gives
    a tuple.
    """
    if hasattr(cell, "get_initial_state"):
        return cell.get_initial_state(batch_size, dtype=like.dtype, device=like.device)

    def zeros(size):
        if isinstance(size, (tuple, list)):
            return tuple(zeros(s) for s in size)
        return like.new_zeros(batch_size, int(size))

    return zeros(cell.state_size)


def call_cell(cell, x_t, state, dropout=None):
    """One step of any cell, each given its states the way it expects.

    rnnkit's own cells (``states_as_list = False``) and plain
    ``torch.nn.Module`` cells get the state as it is carried: one tensor,
    or a tuple. A cell that subclasses ``rnnkit.Layer`` gets Keras's list,
    one entry per ``state_size`` item (``prev = states[0]``), and may
    return its new states as a list or, for one state, a tensor. A cell's
    ``states_as_list`` attribute, when set, decides instead. A cell called
    without dropout is called with two arguments.
    """
    args = () if dropout is None else (dropout,)
    if not getattr(cell, "states_as_list", False):
        y, new = cell(x_t, state, *args)
        if isinstance(state, torch.Tensor) and isinstance(new, (list, tuple)):
            raise TypeError(
                f"cell {_label(cell)}: it was given its state as a tensor and returned a {type(new).__name__}, "
                "as a Keras cell does; a Keras-style cell (reading states[0]) subclasses rnnkit.Layer "
                "or sets states_as_list = True"
            )
        if not isinstance(cell, Layer):
            _check_new_state(cell, new, state)
        return y, new
    single = isinstance(state, torch.Tensor)
    y, new = cell(x_t, [state] if single else list(state), *args)
    if single and isinstance(new, (list, tuple)) and len(new) == 1:
        new = new[0]
    elif not single and isinstance(new, (list, tuple)) and len(new) == len(state):
        new = rebuild_tuple(state, list(new))
    _check_new_state(cell, new, state)
    return y, new


def _label(cell) -> str:
    return repr(getattr(cell, "name", type(cell).__name__))


def _check_new_state(cell, new, old) -> None:
    """A returned state must have the structure and shapes of the state given (from ``state_size``)."""
    if isinstance(old, torch.Tensor):
        if isinstance(new, torch.Tensor) and new.shape == old.shape:
            return
    elif isinstance(new, (list, tuple)) and len(new) == len(old):
        for n, o in zip(new, old):
            _check_new_state(cell, n, o)
        return

    def describe(s):
        if isinstance(s, torch.Tensor):
            return f"a tensor of shape {tuple(s.shape)}"
        if isinstance(s, (list, tuple)):
            return f"{len(s)} states [{', '.join(describe(x) for x in s)}]"
        return type(s).__name__

    raise ValueError(
        f"cell {_label(cell)}: returned new states {describe(new)}; its state_size {cell.state_size!r} "
        f"says {describe(old)}"
    )


def cell_output_size(cell) -> int:
    """The cell's ``output_size``; without one, its (first) ``state_size``, as Keras."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
        while isinstance(size, (tuple, list)):
            size = size[0]
    return int(size)


class StackedRNNCells(Layer):
    """Cells applied one after another within each time step (a deep RNN).

    The output of cell k is the input of cell k+1; the state is the tuple of
    every cell's state, in order::

        y, (s_1, ..., s_n) = cells(x_t, (s_1, ..., s_n))
    """

    states_as_list = False  # the tuple of per-cell states; each cell gets its own as it expects

    def __init__(self, cells, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        cells = [deserialize_layer(c) if isinstance(c, dict) else c for c in cells]  # from get_config
        if not cells:
            raise ValueError("cells: expected at least one cell, got an empty list")
        seen = set()
        for i, c in enumerate(cells):
            if not is_cell(c):
                raise TypeError(f"cells[{i}]: expected a cell (with state_size and forward(x, state)), got {type(c).__name__}")
            if id(c) in seen:
                raise ValueError(
                    f"cells[{i}]: the same cell object appears twice; both layers would share one set of "
                    "weights. Create a new cell per layer, e.g. [Cell(n) for _ in range(k)], not [cell] * k"
                )
            seen.add(id(c))
        self.cells = nn.ModuleList(cells)

    @property
    def state_size(self):
        return tuple(c.state_size for c in self.cells)

    @property
    def output_size(self):
        return cell_output_size(self.cells[-1])

    def _built_parts(self):
        return self.cells

    def build(self, input_shape):
        size = int(input_shape[-1])
        for c in self.cells:
            if isinstance(c, Layer) and not c.built:
                c.maybe_build((size,))
            size = cell_output_size(c)

    def get_initial_state(self, batch_size, dtype=None, device=None):
        like = like_weights(self, dtype, device)
        return tuple(initial_state_of(c, batch_size, like) for c in self.cells)

    def get_config(self):
        return {"name": self.name, "cells": [serialize_layer(c) for c in self.cells]}

    @property
    def weights(self):
        return [w for c in self.cells for w in (c.weights if isinstance(c, Layer) else c.parameters())]

    def forward(self, x_t, states, dropout=None):
        if not isinstance(states, (tuple, list)) or len(states) != len(self.cells):
            got = len(states) if isinstance(states, (tuple, list)) else type(states).__name__
            raise ValueError(f"states: {self.name!r} expects a tuple of {len(self.cells)} per-cell states, got {got}")
        new_states = []
        for k, (cell, s) in enumerate(zip(self.cells, states)):
            x_t, s = call_cell(cell, x_t, s, None if dropout is None else dropout[k])
            new_states.append(s)
        return x_t, tuple(new_states)
