"""Cell wrappers, TF1's ``tf.nn.rnn_cell`` family: a cell around a cell.

A wrapper is itself a cell, ``y_t, state_t = wrapper(x_t, state_{t-1})``,
with the wrapped cell's state structure, so it runs in ``RNN``,
``static_rnn``/``dynamic_rnn`` and inside ``MultiRNNCell``:

========================  ==========================================================
MultiRNNCell(cells)       a stack; the state is the tuple of each cell's state
DropoutWrapper(cell, ..)  dropout on the step's input, output and new state
OutputProjectionWrapper   ``y_t = activation(cell_output W + b)``; state unchanged
DeviceWrapper(cell, dev)  the step runs on ``dev``
ResidualWrapper(cell)     ``y_t = cell_output + x_t``
========================  ==========================================================

>>> cells = [DropoutWrapper(SimpleRNNCell(100, activation="relu"), input_keep_prob=0.5) for _ in range(3)]
>>> outputs, states = dynamic_rnn(MultiRNNCell(cells), torch.zeros(4, 20, 1))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from .base import Layer, deserialize_layer, serialize_layer
from .cells import StackedRNNCells, call_cell, initial_state_of, is_cell
from .ops import check_positive_int, dropout_mask, get_activation, glorot_uniform, like_weights, rebuild_tuple
from .rnn import sample_dropout_masks


class MultiRNNCell(StackedRNNCells):
    """TF1's ``MultiRNNCell``: cells applied one after another within each step.

    The same class as ``StackedRNNCells`` (``RNN([cells])``) under TF1's name.
    The state is the tuple of every cell's state; the output is the last
    cell's. Each layer needs its own cell object: ``[cell] * n`` raises
    ``ValueError``, since all layers would share one set of weights.

    >>> cell = MultiRNNCell([BasicRNNCell(100, activation="relu") for _ in range(3)])
    >>> outputs, (s1, s2, s3) = dynamic_rnn(cell, torch.zeros(4, 20, 1))
    """

    def __init__(self, cells, state_is_tuple: bool = True, name: str | None = None):
        if state_is_tuple is not True:
            raise ValueError(
                f"state_is_tuple: only True is supported (TF1 deprecated concatenated states), got {state_is_tuple!r}"
            )
        super().__init__(cells, name=name)

    @property
    def input_size(self):
        return getattr(self.cells[0], "input_size", None)

    def zero_state(self, batch_size: int, dtype=None, device=None):
        """TF1's name for ``get_initial_state``."""
        return self.get_initial_state(batch_size, dtype=dtype, device=device)


# ------------------------------------------------------------------ the base


class Wrapper(Layer):
    """What every wrapper shares: sizes, build, initial state and weights come from the wrapped cell."""

    states_as_list = False  # carried as the wrapped cell's structure; call_cell adapts it for that cell

    def __init__(self, cell, name: str | None = None):
        super().__init__(name=name)
        if isinstance(cell, dict):  # a config from get_config
            cell = deserialize_layer(cell)
        if not is_cell(cell):
            raise TypeError(f"cell: expected a cell (with state_size and forward(x, state)), got {type(cell).__name__}")
        self.cell = cell

    def _built_parts(self):
        return (self.cell,)

    def build(self, input_shape):
        if isinstance(self.cell, Layer):
            self.cell.maybe_build(tuple(input_shape))

    def get_config(self):
        """The wrapper's arguments, the wrapped cell as its config (``Wrapper.from_config`` rebuilds both)."""
        return {**super().get_config(), "cell": serialize_layer(self.cell)}

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

    def get_initial_state(self, batch_size: int, dtype=None, device=None):
        return initial_state_of(self.cell, batch_size, like_weights(self, dtype, device))

    def zero_state(self, batch_size: int, dtype=None, device=None):
        """TF1's name for ``get_initial_state``."""
        return self.get_initial_state(batch_size, dtype=dtype, device=device)

    def dropout_masks(self, batch: int, like: torch.Tensor, generator=None):
        """The wrapped cell's own per-sequence masks (passed through to it by ``forward``)."""
        return sample_dropout_masks(self.cell, batch, like, generator)

    @property
    def weights(self):
        inner = self.cell.weights if isinstance(self.cell, Layer) else list(self.cell.parameters())
        return inner + list(self._parameters.values())

    def extra_repr(self):
        return f"name={self.name!r}"


# ------------------------------------------------------------------- dropout


class DropoutWrapperMasks(NamedTuple):
    """What a ``DropoutWrapper`` receives from the loop for one sequence.

    ``variational_recurrent=True``: the masks themselves (already scaled by
    1/keep_prob), the same at every step. Otherwise ``per_step`` is True and
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


def _check_keep_prob(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg}: expected a float in (0, 1], got {type(value).__name__} {value!r}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{arg}: expected a keep probability in (0, 1], got {value}")
    return float(value)


def _state_masks(state, keep: float, generator):
    """Masks in ``state``'s structure, None at an LSTM's memory ``c`` (TF1 never drops it)."""
    if keep == 1.0:
        return None
    if isinstance(state, torch.Tensor):
        return dropout_mask(state.shape, keep, state, generator)
    names = getattr(state, "_fields", (None,) * len(state))
    return rebuild_tuple(state, [None if name == "c" else _state_masks(s, keep, generator) for name, s in zip(names, state)])


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
        s'    = s * m_state / state_keep_prob     # every part but an LSTM's c
        y'    = y * m_out / output_keep_prob
        return y', s'

    with each ``m`` drawn from Bernoulli(keep_prob). The output mask does not
    feed back: the next step sees ``s'``, not ``y'``.

    Args:
        cell: the wrapped cell.
        input_keep_prob, output_keep_prob, state_keep_prob: keep
            probabilities in (0, 1]; 1 means no dropout there.
        variational_recurrent: one mask per sequence, the same at every step
            (Gal & Ghahramani 2016) instead of a fresh one per step. Each row
            of the batch gets its own mask (TF1 shared one mask across the
            batch).
        input_size, dtype: accepted for ported code and not needed: the
            mask shapes and dtype come from the cell and the data.
        seed: the wrapper draws from its own generator, seeded once here, so
            a run is reproducible; without it, torch's global RNG.

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
        input_keep_prob: float = 1.0,
        output_keep_prob: float = 1.0,
        state_keep_prob: float = 1.0,
        variational_recurrent: bool = False,
        input_size=None,  # noqa: ARG002 - TF1 needed these for variational masks; rnnkit infers them
        dtype=None,  # noqa: ARG002
        seed: int | None = None,
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
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)

    def dropout_masks(self, batch: int, like: torch.Tensor, generator=None):
        """This sequence's dropout: the masks (variational) or what draws them per step."""
        inner = super().dropout_masks(batch, like, generator)
        if (self.input_keep_prob, self.output_keep_prob, self.state_keep_prob) == (1.0, 1.0, 1.0) and inner is None:
            return None
        gen = self._generator if self._generator is not None else generator
        if not self.variational_recurrent:
            return DropoutWrapperMasks(inner=inner, per_step=True, generator=gen)
        if self.input_size is None and self.input_keep_prob < 1.0:
            raise ValueError(f"DropoutWrapper {self.name!r}: build the cell before sampling its input mask")
        return DropoutWrapperMasks(
            input=dropout_mask((batch, self.input_size or 0), self.input_keep_prob, like, gen),
            state=_state_masks(initial_state_of(self.cell, batch, like), self.state_keep_prob, gen),
            output=dropout_mask((batch, self.output_size), self.output_keep_prob, like, gen),
            inner=inner,
        )

    def forward(self, x_t: torch.Tensor, state, dropout: DropoutWrapperMasks | None = None):
        self._build_from(x_t)
        if dropout is None:  # evaluation, or a call by hand: the plain cell
            return self.cell(x_t, state)
        if dropout.per_step:  # fresh masks at this step, in TF1's order: input, state, output
            x_t = _apply(x_t, dropout_mask(x_t.shape, self.input_keep_prob, x_t, dropout.generator))
            y, state = call_cell(self.cell, x_t, state, dropout.inner)
            state = _apply(state, _state_masks(state, self.state_keep_prob, dropout.generator))
            y = _apply(y, dropout_mask(y.shape, self.output_keep_prob, y, dropout.generator))
            return y, state
        y, state = call_cell(self.cell, _apply(x_t, dropout.input), state, dropout.inner)
        return _apply(y, dropout.output), _apply(state, dropout.state)

    def extra_repr(self):
        keeps = f"input_keep_prob={self.input_keep_prob}, output_keep_prob={self.output_keep_prob}, "
        keeps += f"state_keep_prob={self.state_keep_prob}"
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

    def __init__(self, cell, output_size: int, activation=None, name: str | None = None):
        super().__init__(cell, name=name)
        self.projection_size = check_positive_int(output_size, "output_size")
        self.activation = get_activation(activation, "activation")
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

    def __init__(self, cell, device, name: str | None = None):
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

    def extra_repr(self):
        return f"name={self.name!r}, device={str(self.device)!r}"


class ResidualWrapper(Wrapper):
    """Add the step's input to the cell's output (TF1's ``ResidualWrapper``)::

        y, s = cell(x_t, state)
        return y + x_t, s

    The input size must equal the cell's output size.
    """

    def forward(self, x_t, state, dropout=None):
        self._build_from(x_t)
        y, state = call_cell(self.cell, x_t, state, dropout)
        if y.shape[-1] != x_t.shape[-1]:
            raise ValueError(
                f"x_t: ResidualWrapper {self.name!r} adds the input to the cell's output, so their sizes must "
                f"match; got {x_t.shape[-1]} input features and {y.shape[-1]} output units"
            )
        return y + x_t, state
