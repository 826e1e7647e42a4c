"""Run a trained ``Sequential`` one time step at a time, carrying the recurrent state.

Generation (series continuation, text sampling) feeds each prediction back
as the next input. Re-running the model over a sliding window, as seed 003
does, costs a whole window of cell steps per new value; carrying each
recurrent layer's state costs one cell step. Both give the same numbers
when the window covers everything seen so far, which the tests check.

    stepper = ModelStepper(model)
    y = stepper.warm_up(x)          # x: (batch, time, features) -> last step's output
    y = stepper.step(next_input)    # (batch, features) -> (batch, outputs)

Each recurrent cell steps through ``rnnkit.kernels.Stepper`` (one native call
per step where the cell is covered, its own ``forward`` otherwise).
"""

from __future__ import annotations

import torch

from ..cells import StackedRNNCells, initial_state_of
from ..kernels import Stepper as CellStepper
from ..layers import Dense, Dropout, Embedding, TimeDistributed
from ..ops import as_tensor
from ..rnn import RNN, reference_loop


class ModelStepper:
    """Step a whole model, made of recurrent layers (returning sequences) and per-step layers.

    Not ``rnnkit.Stepper``, which steps one cell; this one holds a
    ``Stepper`` per cell of every recurrent layer and the per-step layers
    between them.
    """

    def __init__(self, model):
        for layer in model.layers:
            ok = isinstance(layer, (Dense, Dropout, Embedding, TimeDistributed)) or (
                isinstance(layer, RNN) and layer.return_sequences and not layer.go_backwards
            )
            if not ok:
                raise ValueError(
                    f"model: layer {getattr(layer, 'name', layer)!r} ({type(layer).__name__}) cannot run step by step; "
                    "generation needs forward recurrent layers with return_sequences=True and per-step layers"
                )
        self.model = model
        self.states: list = []
        self._cells: dict[int, list[CellStepper]] = {}  # per recurrent layer, built at warm-up (cells built)

    def _per_step(self, layer, h):
        return layer.layer(h) if isinstance(layer, TimeDistributed) else layer(h)

    @torch.no_grad()
    def warm_up(self, x) -> torch.Tensor:
        """Run the whole prefix ``x`` and keep each recurrent layer's final state; returns the last output."""
        self.model.eval()
        h = x if isinstance(x, torch.Tensor) and not x.is_floating_point() else as_tensor(x)
        self.states = []
        for layer in self.model.layers:
            if isinstance(layer, RNN):
                h, state = reference_loop(layer.cell, h, initial_state_of(layer.cell, h.shape[0], h))
                self.states.append(state)
                cells = layer.cell.cells if isinstance(layer.cell, StackedRNNCells) else [layer.cell]
                self._cells[id(layer)] = [CellStepper(c) for c in cells]
            else:
                h = layer(h)
        return h[:, -1]

    @torch.no_grad()
    def step(self, x_t) -> torch.Tensor:
        """One time step: ``x_t`` (batch, features), or (batch,) token ids, -> (batch, outputs)."""
        if not self.states:
            raise ValueError("step: call warm_up(prefix) first")
        h, i = x_t, 0
        for layer in self.model.layers:
            if isinstance(layer, RNN):
                steppers = self._cells[id(layer)]
                if isinstance(layer.cell, StackedRNNCells):
                    new_states = []
                    for cell_step, s in zip(steppers, self.states[i]):
                        h, s = cell_step(h, s)
                        new_states.append(s)
                    self.states[i] = tuple(new_states)
                else:
                    h, self.states[i] = steppers[0](h, self.states[i])
                i += 1
            else:
                h = self._per_step(layer, h)
        return h
