"""`RNN`: the time loop around a cell, with Keras's contract.

The loop in ``reference_loop`` is the definition of every recurrent layer in
rnnkit. Fused kernels (``rnnkit.kernels``) may run instead, but only where
they give the same numbers: ``RNN`` asks ``kernels.select`` with the cell,
the inputs, the mask and the dropout masks, runs what it returns, and
records which kernel ran and why (``kernel_used``, ``kernel_reason``);
``explain(model)`` lists that for every recurrent layer.

Also here: nested-state helpers (``tree_flatten`` ...), the input checks,
and ``sample_dropout_masks`` (one mask per sequence, Keras's dropout).
"""

from __future__ import annotations

import numpy as np
import torch

from . import kernels
from .base import Layer, deserialize_layer, serialize_layer
from .cells import Cell, DropoutMasks, StackedRNNCells, call_cell, cell_output_size, initial_state_of, is_cell
from .kernels.autocast import autocast_outputs
from .ops import as_tensor, dropout_mask, first_parameter, object_config, rebuild_tuple
from .regularizers import get_regularizer

# ----------------------------------------------------------- nested states
# A state is a tensor, or a (named) tuple of states: LSTMState(h, c) for an
# LSTM, a tuple of per-cell states for a stack.


def tree_flatten(state) -> list[torch.Tensor]:
    """The leaves of a (nested) state in order; a numpy array (a user's initial state) is a leaf too."""
    if isinstance(state, (torch.Tensor, np.ndarray)):
        return [state]
    if not isinstance(state, (tuple, list)):  # a str would recurse forever
        raise TypeError(f"state: expected a tensor or a (nested) tuple/list of tensors, got {type(state).__name__}")
    return [leaf for s in state for leaf in tree_flatten(s)]


def tree_unflatten(template, leaves: list[torch.Tensor]):
    """Rebuild ``template``'s structure from a flat list (consumed in order)."""
    if isinstance(template, torch.Tensor):
        return leaves.pop(0)
    return rebuild_tuple(template, [tree_unflatten(t, leaves) for t in template])


def tree_where(m: torch.Tensor, new, old):
    """``new`` where the (batch, 1) mask ``m`` is True, else ``old``, leaf by leaf."""
    if isinstance(new, torch.Tensor):
        return torch.where(m, new, old)
    return rebuild_tuple(new, [tree_where(m, n, o) for n, o in zip(new, old)])


def keras_states(cell, state) -> list:
    """The final state as ``return_state`` lists it (Keras 3).

    One entry per state tensor (LSTM: ``[h, c]``); for stacked cells one
    entry per cell: its tensor, or the list of its state tensors
    (``[[h1, c1], [h2, c2]]``). TF1's ``MultiRNNCell(state_is_tuple=False)``
    carries one concatenated tensor, listed as it is.
    """
    if isinstance(cell, StackedRNNCells) and not isinstance(state, torch.Tensor):
        return [s if isinstance(s, torch.Tensor) else tree_flatten(s) for s in state]
    return tree_flatten(state)


# ------------------------------------------------------------ the definition


def reference_loop(cell, x, state, mask=None, dropout=None, zero_output_for_mask=False):
    """Run ``cell`` over ``x`` (batch, time, features), one step at a time.

    Keras's masking semantics: at a masked step the state is kept and the
    output repeats the previous output (zeros with ``zero_output_for_mask``).

    Returns ``(outputs (batch, time, out), final_state)``.
    """
    outputs = []
    y_prev = None
    for t in range(x.shape[1]):
        y, new_state = call_cell(cell, x[:, t], state, dropout)
        if mask is not None:
            m = mask[:, t, None]
            if y_prev is None:
                y_prev = torch.zeros_like(y)
            y = torch.where(m, y, torch.zeros_like(y) if zero_output_for_mask else y_prev)
            new_state = tree_where(m, new_state, state)
        outputs.append(y)
        y_prev, state = y, new_state
    return torch.stack(outputs, dim=1), state


# ------------------------------------------------------------ input checks


def resolve_mask(mask, lengths, batch: int, time: int, device) -> torch.Tensor | None:
    """A bool (batch, time) mask from ``mask`` or ``lengths`` (right padding)."""
    if mask is not None and lengths is not None:
        raise ValueError("mask, lengths: pass one of them, not both")
    if lengths is not None:
        lengths = check_lengths(lengths, batch, time, "lengths")
        return torch.arange(time, device=device)[None, :] < lengths.to(device)[:, None]
    if mask is None:
        return None
    if isinstance(mask, np.ndarray):
        if mask.dtype.kind not in "biuf":
            raise TypeError(f"mask: expected a bool array of shape (batch, time), got dtype {mask.dtype}")
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask: expected a bool tensor of shape (batch, time), got {type(mask).__name__}")
    if tuple(mask.shape) != (batch, time):
        raise ValueError(f"mask: expected shape (batch, time) = ({batch}, {time}), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        bad = mask[(mask != 0) & (mask != 1)]
        if bad.numel():
            raise ValueError(f"mask: expected a bool tensor (or only 0 and 1), got {mask.dtype} with value {bad[0].item()}")
        mask = mask != 0
    return mask.to(device)


def check_lengths(lengths, batch: int, time: int, arg: str) -> torch.Tensor:
    """Integer lengths (batch,) in [0, time], as a long tensor."""
    if not isinstance(lengths, torch.Tensor):
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "biuf":
            raise TypeError(f"{arg}: expected integer lengths of shape (batch,) = ({batch},), got dtype {lengths.dtype}")
    t = torch.as_tensor(lengths)
    if t.is_floating_point():
        if not bool((t == t.round()).all() and t.isfinite().all()):
            raise ValueError(f"{arg}: expected integer lengths, got non-integer values {t.tolist()}")
    elif t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{arg}: expected integer lengths, got dtype {t.dtype}")
    if tuple(t.shape) != (batch,):
        raise ValueError(f"{arg}: expected shape (batch,) = ({batch},), got {tuple(t.shape)}")
    t = t.long()
    if batch and (int(t.min()) < 0 or int(t.max()) > time):
        raise ValueError(f"{arg}: expected values in [0, {time}] (the time axis), got min {int(t.min())}, max {int(t.max())}")
    return t


def check_sequence_input(inputs, arg: str = "inputs") -> torch.Tensor:
    x = as_tensor(inputs, arg)
    if x.dim() != 3:
        raise ValueError(f"{arg}: expected a 3-D tensor (batch, time, features), got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{arg}: expected at least one time step, got shape {tuple(x.shape)}")
    if x.shape[2] == 0:  # issue 15: an empty feature axis gives uninitialized outputs on some paths
        raise ValueError(f"{arg}: expected at least one feature, got shape {tuple(x.shape)}")
    return x


def check_initial_state(initial_state, template, arg: str = "initial_state"):
    """Accept the cell's state structure or a flat list of tensors or numpy arrays (Keras).

    numpy arrays become tensors of the weights' dtype, as Keras converts them.
    """
    try:
        given = tree_flatten(initial_state)
    except TypeError:
        given = None
    if given is None:
        raise TypeError(
            f"{arg}: expected a tensor or a list of tensors, got {type(initial_state).__name__} "
            "(numpy arrays and nested lists of them are accepted too)"
        )
    want = tree_flatten(template)
    if len(given) != len(want):
        raise ValueError(
            f"{arg}: expected {len(want)} state tensor(s) of shapes {[tuple(w.shape) for w in want]}, got {len(given)}"
        )
    out = []
    for i, (g, w) in enumerate(zip(given, want)):
        if isinstance(g, np.ndarray):
            g = as_tensor(g, f"{arg}[{i}]").to(w.dtype)
        g = as_tensor(g, f"{arg}[{i}]")
        if tuple(g.shape) != tuple(w.shape):
            raise ValueError(f"{arg}[{i}]: expected shape {tuple(w.shape)}, got {tuple(g.shape)}")
        if g.dtype != w.dtype:  # a silent cast would hide float64 -> float32 precision loss
            raise TypeError(f"{arg}[{i}]: dtype {g.dtype} does not match the inputs and weights ({w.dtype})")
        out.append(g.to(dtype=w.dtype, device=w.device))
    return tree_unflatten(template, out)


# ------------------------------------------------------------------ dropout


def sample_dropout_masks(cell, batch: int, like: torch.Tensor, generator=None):
    """One mask per sequence for each cell with dropout; None when none applies.

    A cell that brings its own dropout (e.g. ``DropoutWrapper``) provides
    ``cell.dropout_masks(batch, like, generator)``; what it returns is
    passed to its forward as the third argument, as for the built-in cells.
    """
    if isinstance(cell, StackedRNNCells):
        masks = tuple(sample_dropout_masks(c, batch, like, generator) for c in cell.cells)
        return None if all(m is None for m in masks) else masks
    if hasattr(cell, "dropout_masks"):
        return cell.dropout_masks(batch, like, generator)
    if not isinstance(cell, Cell) or (cell.dropout == 0 and cell.recurrent_dropout == 0):
        return None
    return DropoutMasks(
        input=dropout_mask((batch, cell.input_size), 1.0 - cell.dropout, like, generator) if cell.dropout else None,
        recurrent=dropout_mask((batch, cell.units), 1.0 - cell.recurrent_dropout, like, generator)
        if cell.recurrent_dropout
        else None,
    )


# -------------------------------------------------------------------- layer


class RNN(Layer):
    """Run a cell over a sequence (Keras's ``RNN`` layer).

    Args:
        cell: a cell, or a list of cells (stacked with ``StackedRNNCells``).
        return_sequences: return every step's output (batch, time, units),
            not only the last (batch, units).
        return_state: also return the final state: ``[output, *states]``.
        go_backwards: process time in reverse; the returned sequence is in
            processing (reversed) order, as in Keras.
        stateful: keep the final state as the next call's initial state
            (detached from the graph); ``reset_state()`` clears it.
        unroll: always run the readable Python loop (never a fused kernel);
            the numbers are the same.
        zero_output_for_mask: masked steps output zeros instead of repeating
            the previous output.
        activity_regularizer: a penalty on the outputs (``"l1"``, ``"l2"``,
            a ``rnnkit.regularizers`` object), in ``layer.losses`` after a call.
        dtype: Keras's dtype policy (``"mixed_bfloat16"`` ...; see ``rnnkit.mixed_precision``).

    **The cell contract.** A cell has ``state_size`` and is called once per
    step as ``cell(x_t, states)`` returning ``(output, new_states)``. How
    ``states`` comes depends on the cell, and the two forms never mix up
    silently:

    * a cell that subclasses ``rnnkit.Layer`` (a Keras cell ported by
      changing its base class) gets Keras's list, one entry per
      ``state_size`` item, even for one state: ``prev = states[0]``; it
      returns its new states as a list (or, for one state, a tensor);
    * rnnkit's own cells, wrappers and stacks, and cells that are plain
      ``torch.nn.Module`` s (``forward(x, h)``, the PyTorch habit) get the
      state as carried: a tensor for an int ``state_size``, a tuple for a
      tuple; a plain module returning a list for a tensor state is refused,
      since that is a Keras cell given the wrong form;
    * a cell's ``states_as_list`` attribute (True/False), when set, decides.

    New states must match ``state_size`` (``ValueError`` otherwise).

    Call ``layer(inputs, initial_state=None, mask=None, lengths=None,
    training=None)`` with inputs (batch, time, features), a tensor or a
    numpy array (made float32). ``lengths`` (batch,) is a right-padding
    mask. ``training`` defaults to ``self.training`` (``model.train()``/
    ``model.eval()``); dropout masks are only sampled in training.

    The layer is, by definition, this loop (``reference_loop``)::

        state = initial_state or zeros
        for t in range(time):
            y, new_state = cell(x[:, t], state)
            y = where(mask[:, t], y, previous y)        # Keras masking
            state = where(mask[:, t], new_state, state)

    >>> layer = RNN(SimpleRNNCell(2), return_sequences=True, return_state=True)
    >>> outputs, h = layer(torch.zeros(3, 5, 4))
    >>> outputs.shape, h.shape
    (torch.Size([3, 5, 2]), torch.Size([3, 2]))
    """

    supports_masking = False  # it reads the mask; what it passes on is compute_mask's
    takes_mask = True

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        activity_regularizer=None,
        name: str | None = None,
        input_shape=None,
        dtype=None,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        if isinstance(cell, dict):  # a config from get_config
            cell = deserialize_layer(cell)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not is_cell(cell):
            raise TypeError(
                f"cell: expected a cell with `state_size` and forward(x, state) -> (y, state), got {type(cell).__name__}"
            )
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.activity_regularizer = get_regularizer(activity_regularizer, "activity_regularizer")
        self.states = None  # the carried state when stateful
        self.kernel_used: str | None = None  # which kernel ran last, and why
        self.kernel_reason: str | None = None
        self._generator = None
        if self.input_shape is not None:
            self.maybe_build(self.input_shape)

    # ---------------------------------------------------------------- build
    def _built_parts(self):
        return (self.cell,)

    def build(self, input_shape):
        if isinstance(self.cell, Layer):
            self.cell.maybe_build(tuple(input_shape)[-1:])

    @property
    def input_size(self):
        cell = self.cell.cells[0] if isinstance(self.cell, StackedRNNCells) else self.cell
        return getattr(cell, "input_size", None)

    @property
    def weights(self):
        return self.cell.weights if isinstance(self.cell, Layer) else list(self.cell.parameters())

    def reset_state(self):
        """Forget the carried state of a stateful layer."""
        self.states = None

    reset_states = reset_state  # Keras 2's name

    # ----------------------------------------------------------------- call
    def forward(self, inputs, initial_state=None, mask=None, lengths=None, training=None):
        x = check_sequence_input(inputs)
        batch, time, features = x.shape
        expected = self.input_size
        if expected is not None and features != expected:
            raise ValueError(
                f"inputs: layer {self.name!r} was built for {expected} features, got {features} (shape {tuple(x.shape)})"
            )
        self.maybe_build((time, features), like=x)
        param = first_parameter(self.cell)
        if param is not None and x.dtype != param.dtype:
            raise TypeError(
                f"inputs: dtype {x.dtype} does not match the layer's weights ({param.dtype}); "
                f"convert with .to({param.dtype}) or the layer with .to({x.dtype})"
            )
        mask = resolve_mask(mask, lengths, batch, time, x.device)
        if mask is not None:
            # Padding may hold NaN/Inf: masked steps never reach the outputs, and
            # zeroing them keeps them out of the gradients too (0 * NaN = NaN).
            x = x.masked_fill(~mask[..., None], 0.0)
        state = self._initial_state(initial_state, batch, x)
        training = self.training if training is None else bool(training)
        dropout = sample_dropout_masks(self.cell, batch, x, self._dropout_generator()) if training else None

        if self.go_backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)

        outputs, state = self._run(x, state, mask, dropout)

        if self.stateful:
            self.states = tree_unflatten(state, [s.detach() for s in tree_flatten(state)])
        out = outputs if self.return_sequences else outputs[:, -1]
        if self.return_state:
            out = [out, *keras_states(self.cell, state)]
        self.record_activity(out)
        return out

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        """The mask goes on with the sequence (``return_sequences``); a last output has none."""
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        """Shapes from ``input_shape`` (batch, time, features) alone: the output, then (``return_state``) the states."""
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"input_shape: expected (batch, time, features), got {input_shape}")
        batch, time = input_shape[0], input_shape[1]
        units = cell_output_size(self.cell)
        out = (batch, time, units) if self.return_sequences else (batch, units)
        if not self.return_state:
            return out

        def shapes(size):
            if isinstance(size, (tuple, list)):
                return [shapes(s) for s in size]
            return (batch, int(size))

        if isinstance(self.cell, StackedRNNCells):
            return [out, *[shapes(c.state_size) for c in self.cell.cells]]
        sizes = self.cell.state_size
        return [out, *(shapes(sizes) if isinstance(sizes, (tuple, list)) else [shapes(sizes)])]

    def _run(self, x, state, mask, dropout):
        """Pick the kernel (recording which and why), then run it."""
        if self.unroll:
            fused, why = None, "unroll=True asks for the readable Python loop"
        else:
            fused, why = kernels.select(self.cell, x, mask, dropout, label=self.name)
        if fused is None:
            self.kernel_used, self.kernel_reason = "reference", why
            outputs, state = reference_loop(self.cell, x, state, mask, dropout, self.zero_output_for_mask)
        else:
            self.kernel_used, self.kernel_reason = fused.name, why
            outputs, state = fused(x, state, mask, dropout, self.zero_output_for_mask, need_sequences=self.return_sequences)
        # Under CPU bfloat16 autocast the outputs come back in bfloat16, as torch's layers return them; the
        # state stays float32 (it is fed back as initial_state). See kernels/autocast.py.
        return autocast_outputs(x, outputs, state)

    def _initial_state(self, initial_state, batch, x):
        template = initial_state_of(self.cell, batch, x)
        if initial_state is not None:
            return check_initial_state(initial_state, template)
        if self.stateful and self.states is not None:
            carried = tree_flatten(self.states)
            if carried[0].shape[0] != batch:
                raise ValueError(
                    f"inputs: stateful layer {self.name!r} carries state for batch size {carried[0].shape[0]}, "
                    f"got batch size {batch}; call reset_state() to start over"
                )
            return self.states
        return template

    def _dropout_generator(self):
        seed = getattr(self.cell, "seed", None)
        if seed is None:
            return None
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(seed)
        return self._generator

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "cell": serialize_layer(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "activity_regularizer": object_config(self.activity_regularizer),
        }

    def extra_repr(self):
        flags = [k for k in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll") if getattr(self, k)]
        return ", ".join([f"name={self.name!r}", *flags])


# ------------------------------------------------------------------ explain


def explain(layer_or_model) -> str:
    """One line per ``RNN`` layer in ``layer_or_model``: which kernel ran last and why.

    Layers that have not run yet show what would run for CPU float32 inputs.

    >>> layer = RNN(LSTMCell(8), name="lstm")
    >>> _ = layer(torch.zeros(2, 5, 3))
    >>> print(explain(layer))            # doctest: +SKIP
    lstm: native:LSTMCell (fused native kernel: LSTMCell(tanh, sigmoid), torch.float32)
    """
    lines = []
    for name, module in layer_or_model.named_modules():
        if not isinstance(module, RNN):
            continue
        label = module.name or name
        if module.kernel_used is not None:
            lines.append(f"{label}: {module.kernel_used} ({module.kernel_reason})")
        elif module.unroll:
            lines.append(f"{label}: not run yet; would use reference (unroll=True asks for the readable Python loop)")
        else:
            plan, what = kernels.plan_for(module.cell)
            would = "reference" if plan is None else "a fused kernel"
            lines.append(f"{label}: not run yet; would use {would} on CPU ({what})")
    return "\n".join(lines) if lines else f"{type(layer_or_model).__name__}: no recurrent layers"
