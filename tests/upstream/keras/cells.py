"""The custom cells Keras's RNN tests define, written for rnnkit.

Keras's cell contract: ``call(inputs, states)`` gets ``states`` as a list,
one entry per ``state_size`` item, and returns ``(output, new_states)``
with ``new_states`` a list. The cells below follow that contract as
upstream's do; all weights start at ones, so the numbers are easy to check
by hand. Like a Keras layer, ``build`` creates the weights and leaves
marking the layer built to the framework.
"""

import torch
from torch import nn

import rnnkit as rk


class OneStateRNNCell(rk.Layer):
    """``output = x K + h R``; the one state is the output."""

    def __init__(self, units, state_size=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = state_size if state_size else units

    def build(self, input_shape):
        self.kernel = nn.Parameter(torch.ones(input_shape[-1], self.units))
        self.recurrent_kernel = nn.Parameter(torch.ones(self.units, self.units))

    def forward(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]


class TwoStatesRNNCell(rk.Layer):
    """Two states, both updated from the first: ``s_i = x K + s_1 R_i``; output ``s_1 + s_2``."""

    def __init__(self, units, state_size=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = state_size if state_size else [units, units]
        self.output_size = units

    def build(self, input_shape):
        self.kernel = nn.Parameter(torch.ones(input_shape[-1], self.units))
        self.recurrent_kernel_1 = nn.Parameter(torch.ones(self.units, self.units))
        self.recurrent_kernel_2 = nn.Parameter(torch.ones(self.units, self.units))

    def forward(self, inputs, states):
        # Upstream reads states[0] for both: the second state never feeds back.
        prev_1 = states[0]
        prev_2 = states[0]
        h = inputs @ self.kernel
        output_1 = h + prev_1 @ self.recurrent_kernel_1
        output_2 = h + prev_2 @ self.recurrent_kernel_2
        return output_1 + output_2, [output_1, output_2]


class RNNCellWithDropout(rk.Layer):
    """``output = (x * m_in) K + (h * m_rec) R`` with dropout masks in training.

    Keras's version mixes in ``DropoutRNNCell`` and draws the masks itself
    from a seeded generator; in rnnkit the ``RNN`` layer draws one pair of
    masks per sequence (from a generator seeded by ``seed``) through the
    cell's ``dropout_masks`` hook, and passes them to ``forward`` only in
    training.
    """

    def __init__(self, units, dropout=0.5, recurrent_dropout=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.units = units
        self.state_size = units
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout

    def build(self, input_shape):
        self.kernel = nn.Parameter(torch.ones(input_shape[-1], self.units))
        self.recurrent_kernel = nn.Parameter(torch.ones(self.units, self.units))

    def dropout_masks(self, batch, like, generator):
        def mask(size, rate):
            keep = 1.0 - rate
            m = torch.empty(batch, size, dtype=like.dtype).bernoulli_(keep, generator=generator)
            return (m / keep).to(like.device)

        return rk.DropoutMasks(
            input=mask(self.kernel.shape[0], self.dropout), recurrent=mask(self.units, self.recurrent_dropout)
        )

    def forward(self, inputs, states, masks=None):
        if masks is not None:
            inputs = inputs * masks.input
        prev_output = states[0]
        h = inputs @ self.kernel
        if masks is not None:
            prev_output = prev_output * masks.recurrent
        output = h + prev_output @ self.recurrent_kernel
        return output, [output]
