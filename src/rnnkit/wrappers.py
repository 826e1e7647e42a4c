"""Cell wrappers, TF1's ``tf.nn.rnn_cell`` family: a cell around a cell.

A wrapper is itself a cell, ``y_t, state_t = wrapper(x_t, state_{t-1})``,
with the wrapped cell's state structure, so it runs in ``RNN``,
``static_rnn``/``dynamic_rnn`` and inside ``MultiRNNCell``:

========================  ==========================================================
MultiRNNCell(cells)       a stack; the state is the tuple of each cell's state
                          (or their concatenation, ``state_is_tuple=False``)
DropoutWrapper(cell, ..)  dropout on the step's input, output and new state
OutputProjectionWrapper   ``y_t = activation(cell_output W + b)``; state unchanged
InputProjectionWrapper    ``cell(activation(x_t W + b), state)``
EmbeddingWrapper          ``cell(embedding[ids_t], state)``: integer ids in
DeviceWrapper(cell, dev)  the step runs on ``dev``
ResidualWrapper(cell)     ``y_t = residual_fn(x_t, cell_output)``, ``x_t + cell_output`` by default
========================  ==========================================================

Arguments after the cell are TF1's, in TF1's order; ``name`` is keyword-only.
``zero_state(batch_size, dtype)`` is the wrapped cell's; ``get_config()``
nests the cell's config under ``"cell"`` as TF1 does, and
``from_config(config)`` takes that back (the ``"cell"`` entry a cell object
or a ``{"class_name", "config"}`` dict of a core cell or ``custom_objects``).

>>> cells = [DropoutWrapper(SimpleRNNCell(100, activation="relu"), input_keep_prob=0.5) for _ in range(3)]
>>> outputs, states = dynamic_rnn(MultiRNNCell(cells), torch.zeros(4, 20, 1))
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from .base import Layer, deserialize_layer
from .cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells, call_cell, initial_state_of, is_cell
from .ops import (
    check_positive_int,
    config_spec,
    dropout_mask,
    get_activation,
    get_initializer,
    glorot_uniform,
    like_weights,
    rebuild_tuple,
)
from .rnn import sample_dropout_masks


class MultiRNNCell(StackedRNNCells):
    """TF1's ``MultiRNNCell``: cells applied one after another within each step.

    The same class as ``StackedRNNCells`` (``RNN([cells])``) under TF1's name.
    The state is the tuple of every cell's state; the output is the last
    cell's. With ``state_is_tuple=False`` (TF1's old form) every cell's
    state is one tensor and the stack's state is their concatenation
    ``[s_1, ..., s_n]`` (batch, sum of state sizes), in and out. Each layer
    needs its own cell object: ``[cell] * n`` raises ``ValueError``, since
    all layers would share one set of weights.

    >>> cell = MultiRNNCell([BasicRNNCell(100, activation="relu") for _ in range(3)])
    >>> outputs, (s1, s2, s3) = dynamic_rnn(cell, torch.zeros(4, 20, 1))
    """

    takes_global_policy = False  # TF1's: no Keras dtype policy (it runs under its layer's)

    def __init__(self, cells, state_is_tuple: bool = True, *, name: str | None = None):
        if not isinstance(state_is_tuple, bool):
            raise TypeError(f"state_is_tuple: expected True or False, got {type(state_is_tuple).__name__}")
        super().__init__(cells, name=name)
        self.state_is_tuple = state_is_tuple
        if not state_is_tuple:
            for k, c in enumerate(self.cells):
                if not isinstance(c.state_size, int):
                    raise ValueError(
                        f"cells[{k}]: state_is_tuple=False concatenates one state tensor per cell, but this cell's "
                        f"state is {c.state_size!r}; make its state one tensor (e.g. state_is_tuple=False) or keep "
                        "state_is_tuple=True"
                    )

    @property
    def state_size(self):
        sizes = super().state_size
        return sizes if self.state_is_tuple else sum(sizes)

    @property
    def input_size(self):
        return getattr(self.cells[0], "input_size", None)

    def split_state(self, state):
        """The per-cell states: ``state`` itself, or the concatenation cut at each cell's state size."""
        if self.state_is_tuple:
            return state
        sizes = [c.state_size for c in self.cells]
        if not isinstance(state, torch.Tensor) or state.dim() != 2 or state.shape[-1] != sum(sizes):
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"state: {self.name!r} expects one (batch, {sum(sizes)}) tensor (state_is_tuple=False), got {got}")
        return tuple(state.split(sizes, dim=-1))

    def join_states(self, states):
        """The stack's state from the per-cell states (concatenated with ``state_is_tuple=False``)."""
        return tuple(states) if self.state_is_tuple else torch.cat(list(states), dim=-1)

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None, device=None):
        """Zeros of every cell's state (joined when concatenated); TF1's arguments (``initial_state_args``)."""
        batch_size, dtype, device = initial_state_args(inputs, batch_size, dtype, device)
        return self.join_states(super().get_initial_state(batch_size, dtype=dtype, device=device))

    def zero_state(self, batch_size: int, dtype=None, device=None):
        """TF1's name for ``get_initial_state``."""
        return self.get_initial_state(batch_size, dtype=dtype, device=device)

    def forward(self, x_t, states, dropout=None):
        if self.state_is_tuple:
            if not isinstance(states, (tuple, list)) or len(states) != len(self.cells):
                got = f"a tuple of {len(states)}" if isinstance(states, (tuple, list)) else type(states).__name__
                raise ValueError(
                    f"state: Expected state to be a tuple of length {len(self.cells)} (one per cell), but received: {got}"
                )
            return super().forward(x_t, states, dropout)
        y, new = super().forward(x_t, self.split_state(states), dropout)
        return y, self.join_states(new)

    def get_config(self):
        return {"name": self.name, "state_is_tuple": self.state_is_tuple,
                "cells": [_cell_config(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        """The stack ``get_config()`` describes: each of its ``"cells"`` a cell object or a nested config."""
        config = dict(config)
        return cls([_cell_from_config(c, custom_objects) for c in config.pop("cells")], **config)


# ------------------------------------------------------------------ the base


def initial_state_args(inputs, batch_size, dtype, device):
    """``(batch_size, dtype, device)`` from TF1's ``get_initial_state(inputs=None, batch_size=None, dtype=None)``.

    Batch and dtype come from ``inputs`` when given (a different
    ``batch_size``/``dtype`` is TF1's ``ValueError``); otherwise
    ``batch_size`` is needed. An int ``inputs`` is a batch size: the core's
    own positional call ``get_initial_state(batch_size, dtype=, device=)``.
    """
    if isinstance(inputs, int) and not isinstance(inputs, bool) and batch_size is None:
        inputs, batch_size = None, inputs
    if inputs is not None:
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"inputs: expected a tensor to read the batch size and dtype from, got {type(inputs).__name__}")
        if batch_size is not None and int(batch_size) != inputs.shape[0]:
            raise ValueError(
                "batch_size: batch size from input tensor is different from the input param. "
                f"Input tensor batch: {inputs.shape[0]}, batch_size: {int(batch_size)}"
            )
        if dtype is not None and dtype != inputs.dtype:
            raise ValueError(
                "dtype: dtype from input tensor is different from the input param. "
                f"Input tensor dtype: {inputs.dtype}, dtype: {dtype}"
            )
        return inputs.shape[0], inputs.dtype, device or inputs.device
    if batch_size is None:
        raise ValueError(
            "batch_size: batch_size and dtype cannot be None while constructing initial state "
            f"(no inputs given): batch_size={batch_size}, dtype={dtype}"
        )
    return int(batch_size), dtype, device


# Cells a config names by class (``{"class_name": ..., "config": ...}``) without custom_objects.
_CORE_CELLS = {c.__name__: c for c in (SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells)}


def _cell_config(cell) -> dict:
    """TF1's nested layout of a cell's config: ``{"class_name", "module", "config": cell.get_config()}``.

    The module tells the two ``GRUCell``s apart (Keras's, ``rnnkit.cells``; TF1's, ``rnnkit.v1``).
    """
    if not callable(getattr(cell, "get_config", None)):
        raise ValueError(f"cell: {type(cell).__name__} has no get_config(), so a config cannot describe it")
    return {"class_name": type(cell).__name__, "module": type(cell).__module__, "config": cell.get_config()}


def _cell_from_config(spec, custom_objects):
    if not isinstance(spec, dict):
        return spec  # a cell object, as TF1's tests pass it back
    classes = {**_CORE_CELLS, **_WRAPPERS, **(custom_objects or {})}
    name = spec.get("class_name")
    if isinstance(spec.get("module"), str) and name not in (custom_objects or {}):
        return deserialize_layer(spec)  # a Layer class this program defines, by name and module (TF1's cells too)
    if name not in classes:
        raise ValueError(
            f"config: unknown cell class {name!r}; pass the class in custom_objects={{{name!r}: cls}} "
            f"(known: {sorted(classes)})"
        )
    cls = classes[name]
    from_config = getattr(cls, "from_config", None)
    return from_config(spec["config"]) if from_config is not None else cls(**spec["config"])


class Wrapper(Layer):
    """What every wrapper shares: sizes, build, initial state and weights come from the wrapped cell."""

    states_as_list = False  # carried as the wrapped cell's structure; call_cell adapts it for that cell
    takes_global_policy = False  # TF1's wrappers: no Keras dtype policy, they run under their layer's

    def __init__(self, cell, name: str | None = None):
        super().__init__(name=name)
        if isinstance(cell, dict):  # a config from get_config
            cell = deserialize_layer(cell)
        if not is_cell(cell):
            raise TypeError(f"cell: expected a cell (with state_size and forward(x, state)), got {type(cell).__name__}")
        self.cell = cell

    @property
    def wrapped_cell(self):
        """TF1's name for ``cell``."""
        return self.cell

    def _built_parts(self):
        return (self.cell,)

    def build(self, input_shape):
        if isinstance(self.cell, Layer):
            self.cell.maybe_build(tuple(input_shape))

    def _build_from(self, x_t: torch.Tensor) -> None:
        # A cell called on its first input builds from it (and takes its dtype and device).
        if not self.built:
            self.maybe_build(x_t.shape[1:], like=x_t)

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    @property
    def input_size(self):
        return getattr(self.cell, "input_size", None)

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None, device=None):
        """The wrapped cell's zeros; TF1's arguments (``initial_state_args``)."""
        batch_size, dtype, device = initial_state_args(inputs, batch_size, dtype, device)
        return initial_state_of(self.cell, batch_size, like_weights(self, dtype, device))

    def zero_state(self, batch_size: int, dtype=None):
        """TF1's ``zero_state``: the wrapped cell's own ``zero_state`` when it has one."""
        if hasattr(self.cell, "zero_state"):
            return self.cell.zero_state(batch_size, dtype)
        return self.get_initial_state(batch_size, dtype=dtype)

    def dropout_masks(self, batch: int, like: torch.Tensor, generator=None):
        """The wrapped cell's own per-sequence masks (passed through to it by ``forward``)."""
        return sample_dropout_masks(self.cell, batch, like, generator)

    @property
    def weights(self):
        inner = self.cell.weights if isinstance(self.cell, Layer) else list(self.cell.parameters())
        return inner + list(self._parameters.values())

    def _own_config(self) -> dict:
        """The wrapper's own arguments after the cell (TF1's names)."""
        return {}

    def get_config(self) -> dict:
        return {"name": self.name, "cell": _cell_config(self.cell), **self._own_config()}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        """The wrapper ``get_config()`` describes: its ``"cell"`` a cell object or a nested config."""
        config = dict(config)
        cell = _cell_from_config(config.pop("cell"), custom_objects)
        return cls(cell, **config)

    def extra_repr(self):
        return f"name={self.name!r}"


# ------------------------------------------------------------------- dropout


class DropoutWrapperMasks(NamedTuple):
    """What a ``DropoutWrapper`` receives from the loop for one sequence.

    ``variational_recurrent=True``: the masks themselves (already scaled by
    1/keep_prob), each of shape (1, size): one mask for the whole batch, the
    same at every step. Otherwise ``per_step`` is True and
    the wrapper draws fresh masks at every step from ``generator``.
    ``inner`` holds the wrapped cell's own masks (e.g. a Keras cell's
    ``dropout=``).
    """

    input: torch.Tensor | None = None
    state: Any = None  # masks in the state's structure; None where nothing is dropped
    output: torch.Tensor | None = None
    inner: Any = None
    per_step: bool = False
    generator: torch.Generator | None = None


def _check_keep_prob(value, arg: str):
    """A keep probability in (0, 1]: a number, or a 0-d tensor (read again at every draw, as TF1's variable)."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.is_floating_point():
            raise TypeError(f"{arg}: expected a 0-d floating tensor, got shape {tuple(value.shape)} {value.dtype}")
        number = float(value.detach())
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg}: expected a float in (0, 1], got {type(value).__name__} {value!r}")
    else:
        number = value = float(value)
    if not 0.0 < number <= 1.0:
        raise ValueError(f"{arg}: expected a keep probability in (0, 1], got {number}")
    return value


def default_dropout_state_filter_visitor(substate):
    """TF1's default: drop every state tensor but an LSTM's memory ``c`` (any named tuple with a ``c`` field)."""
    fields = getattr(substate, "_fields", ())
    if "c" in fields:
        return tuple(name != "c" for name in fields)
    return True


def _state_masks(state, keep: float, generator, visitor):
    """Masks in ``state``'s structure where ``visitor`` says to drop; None elsewhere.

    ``visitor(substate)`` returns True (drop it: a tensor, or look inside a
    tuple), False (keep it), or one such answer per part of a tuple.
    """
    if keep == 1.0:
        return None
    return _masks_where(state, visitor(state), keep, generator, visitor)


def _masks_where(state, verdict, keep, generator, visitor):
    if verdict is False:
        return None
    if isinstance(verdict, (tuple, list)):
        parts = [_masks_where(s, v, keep, generator, visitor) for s, v in zip(state, verdict)]
        return rebuild_tuple(state, parts)
    if isinstance(state, torch.Tensor):
        return dropout_mask(state.shape, keep, state, generator)
    return rebuild_tuple(state, [_masks_where(s, visitor(s), keep, generator, visitor) for s in state])


def _apply(value, mask):
    """``value * mask`` leaf by leaf; a None mask leaves that part alone."""
    if mask is None:
        return value
    if isinstance(value, torch.Tensor):
        return value * mask
    return rebuild_tuple(value, [_apply(v, m) for v, m in zip(value, mask)])


class DropoutWrapper(Wrapper):
    """Dropout on a cell's input, output and new state (TF1's ``DropoutWrapper``)::

        x'    = x_t * m_in / input_keep_prob
        y, s  = cell(x', state)
        s'    = s * m_state / state_keep_prob     # every part but an LSTM's c (dropout_state_filter_visitor)
        y'    = y * m_out / output_keep_prob
        return y', s'

    with each ``m`` drawn from Bernoulli(keep_prob). The output mask does not
    feed back: the next step sees ``s'``, not ``y'``.

    Args:
        cell: the wrapped cell (also ``wrapped_cell``, TF1's name).
        input_keep_prob, output_keep_prob, state_keep_prob: keep
            probabilities in (0, 1]; 1 means no dropout there. A 0-d tensor
            (or ``nn.Parameter``) works too and is read at every draw, as
            TF1's tensor or variable.
        variational_recurrent: one mask per sequence, the same at every step
            (Gal & Ghahramani 2016), and, as TF1, one mask for the whole
            batch: each mask has shape (1, size).
        input_size, dtype: accepted for ported code and not needed: the
            mask shapes and dtype come from the cell and the data.
        seed: the wrapper draws from its own generator, seeded once here, so
            a run is reproducible; without it, torch's global RNG.
        dropout_state_filter_visitor: ``f(substate)`` -> True (drop it),
            False (keep it) or one such answer per part of a tuple; by
            default every state tensor but an LSTM's memory ``c``.

    Dropout only happens in training: ``static_rnn``/``dynamic_rnn`` follow
    the cell's mode (``cell.train()``, the default for a new module, or
    ``cell.eval()``); ``RNN`` follows its ``training`` argument. The loop
    samples ``dropout_masks(batch, like)`` once per sequence and passes
    them to every step; calling the wrapper by hand without them runs the
    plain cell.

    >>> cell = DropoutWrapper(BasicRNNCell(100), input_keep_prob=0.5)
    >>> outputs, state = dynamic_rnn(cell, torch.zeros(4, 20, 1))       # training: dropout
    >>> outputs, state = dynamic_rnn(cell.eval(), torch.zeros(4, 20, 1))  # evaluation: none
    """

    def __init__(
        self,
        cell,
        input_keep_prob=1.0,
        output_keep_prob=1.0,
        state_keep_prob=1.0,
        variational_recurrent: bool = False,
        input_size=None,  # noqa: ARG002 - TF1 needed these for variational masks; rnnkit infers them
        dtype=None,  # noqa: ARG002
        seed: int | None = None,
        dropout_state_filter_visitor=None,
        *,
        name: str | None = None,
    ):
        super().__init__(cell, name=name)
        self.input_keep_prob = _check_keep_prob(input_keep_prob, "input_keep_prob")
        self.output_keep_prob = _check_keep_prob(output_keep_prob, "output_keep_prob")
        self.state_keep_prob = _check_keep_prob(state_keep_prob, "state_keep_prob")
        self.variational_recurrent = bool(variational_recurrent)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        self.seed = seed
        # torch seeds are unsigned 64-bit; TF1 takes negative seeds too
        self._generator = None if seed is None else torch.Generator().manual_seed(seed % 2**64)
        if dropout_state_filter_visitor is not None and not callable(dropout_state_filter_visitor):
            raise TypeError(
                f"dropout_state_filter_visitor: expected a function of a substate, got {type(dropout_state_filter_visitor).__name__}"
            )
        self._filter_spec = dropout_state_filter_visitor
        self._dropout_state_filter = dropout_state_filter_visitor or default_dropout_state_filter_visitor

    def _keeps(self) -> tuple[float, float, float]:
        keeps = (self.input_keep_prob, self.state_keep_prob, self.output_keep_prob)
        return tuple(float(k.detach()) if isinstance(k, torch.Tensor) else k for k in keeps)

    def dropout_masks(self, batch: int, like: torch.Tensor, generator=None):
        """This sequence's dropout: the masks (variational, one for the batch) or what draws them per step."""
        inner = super().dropout_masks(batch, like, generator)
        keep_in, keep_state, keep_out = self._keeps()
        if (keep_in, keep_state, keep_out) == (1.0, 1.0, 1.0) and inner is None:
            return None
        gen = self._generator if self._generator is not None else generator
        if not self.variational_recurrent:
            return DropoutWrapperMasks(inner=inner, per_step=True, generator=gen)
        if self.input_size is None and keep_in < 1.0:
            raise ValueError(f"DropoutWrapper {self.name!r}: build the cell before sampling its input mask")
        return DropoutWrapperMasks(
            input=dropout_mask((1, self.input_size or 0), keep_in, like, gen),
            state=_state_masks(initial_state_of(self.cell, 1, like), keep_state, gen, self._dropout_state_filter),
            output=dropout_mask((1, self.output_size), keep_out, like, gen),
            inner=inner,
        )

    def forward(self, x_t: torch.Tensor, state, dropout: DropoutWrapperMasks | None = None):
        self._build_from(x_t)
        if dropout is None:  # evaluation, or a call by hand: the plain cell
            return self.cell(x_t, state)
        if dropout.per_step:  # fresh masks at this step, in TF1's order: input, state, output
            keep_in, keep_state, keep_out = self._keeps()
            x_t = _apply(x_t, dropout_mask(x_t.shape, keep_in, x_t, dropout.generator))
            y, state = call_cell(self.cell, x_t, state, dropout.inner)
            state = _apply(state, _state_masks(state, keep_state, dropout.generator, self._dropout_state_filter))
            y = _apply(y, dropout_mask(y.shape, keep_out, y, dropout.generator))
            return y, state
        y, state = call_cell(self.cell, _apply(x_t, dropout.input), state, dropout.inner)
        return _apply(y, dropout.output), _apply(state, dropout.state)

    def _own_config(self):
        keep_in, keep_state, keep_out = self._keeps()
        return {
            "input_keep_prob": keep_in, "output_keep_prob": keep_out, "state_keep_prob": keep_state,
            "variational_recurrent": self.variational_recurrent, "seed": self.seed,
            "dropout_state_filter_visitor": self._filter_spec,  # a function: kept as is, not JSON
        }

    def extra_repr(self):
        keep_in, keep_state, keep_out = self._keeps()
        keeps = f"input_keep_prob={keep_in}, output_keep_prob={keep_out}, state_keep_prob={keep_state}"
        return f"name={self.name!r}, {keeps}, variational_recurrent={self.variational_recurrent}"


# -------------------------------------------------------- projection, device


class OutputProjectionWrapper(Wrapper):
    """A dense layer on the cell's output; the state (what recurs) is unchanged::

        y, s = cell(x_t, state)
        return activation(y W + b), s        # W (cell.output_size, output_size), b (output_size,)

    The seed's time-series model: 100 ReLU units, projected to 1 output at
    every step (10,200 + 101 weights).

    >>> cell = OutputProjectionWrapper(BasicRNNCell(100, activation="relu"), output_size=1)
    >>> outputs, state = dynamic_rnn(cell, torch.zeros(50, 20, 1))   # outputs (50, 20, 1), state (50, 100)
    """

    def __init__(self, cell, output_size: int, activation=None, *, name: str | None = None):
        super().__init__(cell, name=name)
        self.projection_size = check_positive_int(output_size, "output_size")
        self.activation = get_activation(activation, "activation")
        self._activation_spec = activation
        in_size = self.cell.output_size
        if not isinstance(in_size, int):
            raise ValueError(f"cell: expected an int output_size to project, got {in_size!r}")
        # Created now: the cell's output size is known before it sees data. TF1's defaults.
        self.kernel = nn.Parameter(glorot_uniform((in_size, self.projection_size)))
        self.bias = nn.Parameter(torch.zeros(self.projection_size))

    @property
    def output_size(self):
        return self.projection_size

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        y, state = call_cell(self.cell, x_t, state, dropout)
        return self.activation(y @ self.kernel + self.bias), state

    def _own_config(self):
        return {"output_size": self.projection_size,
                "activation": config_spec(self._activation_spec, self.name, "activation")}


class InputProjectionWrapper(Wrapper):
    """A dense layer on the step's input before the cell (TF1's ``InputProjectionWrapper``)::

        return cell(activation(x_t W + b), state)      # W (input_size, num_proj), b (num_proj,)

    ``W`` (glorot_uniform) and ``b`` (zeros) are created when the input size
    is known: from ``input_size`` here, or at the first call. The cell
    takes ``num_proj`` features.

    >>> cell = InputProjectionWrapper(GRUCell(3), num_proj=3)
    >>> outputs, state = dynamic_rnn(cell, torch.zeros(4, 5, 2))   # 2 features projected to 3
    """

    def __init__(self, cell, num_proj: int, activation=None, input_size: int | None = None, *, name: str | None = None):
        super().__init__(cell, name=name)
        self.num_proj = check_positive_int(num_proj, "num_proj")
        self.activation = get_activation(activation, "activation")
        self._activation_spec = activation
        if input_size is not None:
            self.build((check_positive_int(input_size, "input_size"),))

    def _built_parts(self):
        return None  # its own projection decides, made in build

    def build(self, input_shape):
        n_in = int(input_shape[-1])
        self.kernel = nn.Parameter(glorot_uniform((n_in, self.num_proj)))
        self.bias = nn.Parameter(torch.zeros(self.num_proj))
        if isinstance(self.cell, Layer):
            self.cell.maybe_build((self.num_proj,), like=self.kernel)
        self.built = True

    @property
    def input_size(self):
        return self.kernel.shape[0] if self.built else None

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        return call_cell(self.cell, self.activation(x_t @ self.kernel + self.bias), state, dropout)

    def _own_config(self):
        return {"num_proj": self.num_proj, "activation": config_spec(self._activation_spec, self.name, "activation"),
                "input_size": self.input_size}


class EmbeddingWrapper(Wrapper):
    """Integer ids in, their embedding into the cell (TF1's ``EmbeddingWrapper``)::

        return cell(embedding[ids_t], state)        # ids_t (batch,) or (batch, 1); embedding (classes, size)

    ``embedding`` starts uniform in [-sqrt(3), sqrt(3)] (TF1's default:
    unit variance), or from ``initializer`` (an rnnkit initializer name or
    function ``f(shape, dtype=)``). The cell takes ``embedding_size``
    features; ``static_rnn``/``dynamic_rnn`` keep integer inputs as they are.

    >>> cell = EmbeddingWrapper(BasicLSTMCell(8), embedding_classes=100, embedding_size=16)
    >>> outputs, state = dynamic_rnn(cell, torch.randint(0, 100, (4, 7, 1)))
    """

    def __init__(self, cell, embedding_classes: int, embedding_size: int, initializer=None, *,
                 name: str | None = None):
        super().__init__(cell, name=name)
        self.embedding_classes = check_positive_int(embedding_classes, "embedding_classes")
        self.embedding_size = check_positive_int(embedding_size, "embedding_size")
        self._initializer_spec = initializer
        shape = (self.embedding_classes, self.embedding_size)
        if initializer is None:
            weights = torch.empty(shape).uniform_(-math.sqrt(3), math.sqrt(3))
        else:
            weights = get_initializer(initializer, "initializer")(shape, dtype=torch.get_default_dtype())
        self.embedding = nn.Parameter(weights)

    def build(self, input_shape):  # noqa: ARG002 - the cell sees embeddings, not the ids
        if isinstance(self.cell, Layer):
            self.cell.maybe_build((self.embedding_size,), like=self.embedding)

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        if x_t.is_floating_point() or x_t.is_complex():
            raise TypeError(f"x_t: EmbeddingWrapper {self.name!r} expects integer ids, got {x_t.dtype}")
        if x_t.dim() == 2 and x_t.shape[1] != 1:
            raise ValueError(f"x_t: EmbeddingWrapper {self.name!r} expects one id per row, (batch,) or (batch, 1), "
                             f"got shape {tuple(x_t.shape)}")
        ids = x_t.reshape(-1).long()
        bad = ids[(ids < 0) | (ids >= self.embedding_classes)]
        if bad.numel():
            raise ValueError(f"x_t: ids must be in [0, {self.embedding_classes}), got {int(bad[0])}")
        return call_cell(self.cell, self.embedding[ids], state, dropout)

    def _own_config(self):
        return {"embedding_classes": self.embedding_classes, "embedding_size": self.embedding_size,
                "initializer": config_spec(self._initializer_spec, self.name, "initializer")}


def _to(value, device):
    """Tensors anywhere in a (named) tuple moved to ``device``; anything else as is."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return rebuild_tuple(value, [_to(v, device) for v in value])
    return value


class DeviceWrapper(Wrapper):
    """Run the cell's step on ``device`` (TF1's ``DeviceWrapper``, the seed's per-layer placement)::

        y, s = cell(x_t.to(device), state.to(device))
        return y.to(x_t.device), s.to(x_t.device)

    The wrapped cell's weights live on ``device`` (moved there here and when
    it is built, and back there at the next step if a ``.to()`` elsewhere
    moved them). Output and state return to the input's device, so the loop
    around the cell sees one device.

    >>> cells = [DeviceWrapper(BasicRNNCell(100), dev) for dev in ("cuda:0", "cuda:1", "cuda:2")]
    >>> outputs, states = dynamic_rnn(MultiRNNCell(cells), x)
    """

    def __init__(self, cell, device, *, name: str | None = None):
        super().__init__(cell, name=name)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda:0', got {device!r}") from e
        self._pin()

    def _pin(self):
        if any(p.device != self.device for p in self.cell.parameters()):
            self.cell.to(self.device)

    def _build_from(self, x_t):
        if not self.built:
            self.build(x_t.shape[1:])
            self.input_shape = tuple(x_t.shape[1:])
            self.cell.to(dtype=x_t.dtype)

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        self._pin()
        home = x_t.device
        y, state = call_cell(self.cell, x_t.to(self.device), _to(state, self.device), _to(dropout, self.device))
        return y.to(home), _to(state, home)

    def _own_config(self):
        return {"device": str(self.device)}

    def extra_repr(self):
        return f"name={self.name!r}, device={str(self.device)!r}"


class ResidualWrapper(Wrapper):
    """Add the step's input to the cell's output (TF1's ``ResidualWrapper``)::

        y, s = cell(x_t, state)
        return residual_fn(x_t, y), s          # residual_fn None: x_t + y

    Without ``residual_fn`` the input size must equal the cell's output
    size. ``residual_fn(inputs, outputs)`` (TF1's order) may combine them
    any other way, e.g. ``lambda i, o: i[:, :3] + o``.
    """

    def __init__(self, cell, residual_fn=None, *, name: str | None = None):
        super().__init__(cell, name=name)
        if residual_fn is not None and not callable(residual_fn):
            raise TypeError(f"residual_fn: expected a function (inputs, outputs) -> outputs, got {type(residual_fn).__name__}")
        self._residual_fn = residual_fn

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        y, state = call_cell(self.cell, x_t, state, dropout)
        if self._residual_fn is not None:
            return self._residual_fn(x_t, y), state
        if y.shape[-1] != x_t.shape[-1]:
            raise ValueError(
                f"x_t: ResidualWrapper {self.name!r} adds the input to the cell's output, so their sizes must "
                f"match; got {x_t.shape[-1]} input features and {y.shape[-1]} output units"
            )
        return y + x_t, state

    def _own_config(self):
        return {"residual_fn": self._residual_fn}  # a function: kept as is, not JSON


_WRAPPERS = {c.__name__: c for c in (MultiRNNCell, DropoutWrapper, OutputProjectionWrapper, InputProjectionWrapper,
                                     EmbeddingWrapper, DeviceWrapper, ResidualWrapper)}
