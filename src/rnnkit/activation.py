"""Keras's ``Activation`` layer: an activation function as a layer of its own, ``y = activation(x)``."""

from __future__ import annotations

from .base import Layer
from .ops import activation_name, as_tensor, get_activation


class Activation(Layer):
    """``y = activation(x)`` element by element, as Keras's ``Activation``; any shape in, the same out.

    ``activation``: a name of ``rnnkit.ops.ACTIVATIONS`` ("relu", "tanh",
    "softmax" over the last axis ...) or a callable (which a saved config
    cannot name). A mask passes through unchanged.

    >>> Activation("relu")(torch.tensor([[-1.0, 2.0]]))
    tensor([[0., 2.]])
    """

    supports_masking = True

    def __init__(self, activation, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        if activation is None:
            raise TypeError("activation: expected an activation name or a callable, got None")
        self.activation = get_activation(activation)
        self._spec = activation
        self.built = True

    def forward(self, inputs):
        return self.activation(as_tensor(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        name = self._spec if isinstance(self._spec, str) else activation_name(self._spec)
        if name is None:
            raise ValueError(f"activation: layer {self.name!r} has a custom activation, which a config cannot name; "
                             "use one of rnnkit's named activations")
        return {"name": self.name, "activation": name}
