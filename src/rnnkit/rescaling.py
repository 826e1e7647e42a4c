"""``Rescaling``: ``x * scale + offset``, Keras's layer, and the layer behind a number in an operator.

Below both ``layers`` (whose registry holds it) and ``merging`` (whose
operators on symbolic tensors record it: ``x * 2``, ``x + 1``).
"""

from __future__ import annotations

from .base import Layer
from .ops import as_tensor


class Rescaling(Layer):
    """``x * scale + offset``, element by element, as Keras's ``Rescaling``.

    Also the layer behind a number in an operator on a symbolic tensor:
    ``x * 2`` is ``Rescaling(2.0)(x)``, ``x + 1`` is ``Rescaling(1.0, 1.0)(x)``.

    >>> Rescaling(1 / 255)(torch.full((2, 3), 255.0))
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """

    supports_masking = True  # elementwise: a step's validity is unchanged

    def __init__(self, scale: float, offset: float = 0.0, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        for arg, v in (("scale", scale), ("offset", offset)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{arg}: expected a number, got {v!r}")
        self.scale, self.offset = float(scale), float(offset)
        self.built = True

    def forward(self, inputs):
        x = as_tensor(inputs)
        return x * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "scale": self.scale, "offset": self.offset}
