"""The optimizers ``compile`` builds by name, with Keras's defaults.

    opt, name = get_optimizer("rmsprop", model.parameters(), learning_rate=3e-3)

A name gives a fresh ``torch.optim`` optimizer; a ``torch.optim.Optimizer``
is used as it is. Only named optimizers are written to a run directory's
compile settings (``rnnkit.serialization``), since only they can be rebuilt
from JSON.
"""

from __future__ import annotations

import torch

OPTIMIZERS = {
    # Keras's default learning rates and epsilons, so ported code trains alike.
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr or 1e-3, eps=1e-7),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr or 1e-3, alpha=0.9, eps=1e-7),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr or 1e-2),
}


def get_optimizer(spec, params, learning_rate: float | None = None) -> tuple[torch.optim.Optimizer, str]:
    """``(optimizer, name)``: ``spec`` is a name in ``OPTIMIZERS`` (any case) or a ``torch.optim.Optimizer``.

    ``learning_rate`` (None: Keras's default) applies to a named optimizer only.
    The name of a given optimizer is its class name in lower case.
    """
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"optimizer: unknown optimizer {spec!r}; expected one of {sorted(OPTIMIZERS)}")
        return OPTIMIZERS[key](params, learning_rate), key
    if isinstance(spec, torch.optim.Optimizer):
        return spec, type(spec).__name__.lower()
    raise TypeError(f"optimizer: expected 'adam', 'rmsprop', 'sgd' or a torch optimizer, got {type(spec).__name__}")
