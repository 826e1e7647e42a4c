"""The optimizers ``compile`` builds by name, with Keras's defaults.

    opt, name = get_optimizer("rmsprop", model.parameters(), learning_rate=3e-3)

A name gives a fresh ``torch.optim`` optimizer; a ``torch.optim.Optimizer``
is used as it is.

One difference from Keras remains in the Adam family (adam, adamw, nadam):
Keras adds ``epsilon`` to ``sqrt(v)`` before the bias correction of the
step size, torch after it (torch's epsilon is Keras's times
``sqrt(1 - beta_2**t)``). The steps agree to about ``epsilon / sqrt(v)``,
which matters only for gradients near 1e-7. Only named optimizers are written to a run directory's
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
    # Keras 3's AdamW: decay 0.004 decoupled from the gradient (w -= lr * 0.004 * w each step), as torch's AdamW does.
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr or 1e-3, eps=1e-7, weight_decay=0.004),
    # Keras 3's Nadam schedules momentum as beta_1 * (1 - 0.5 * 0.96**t): torch's 0.96**(momentum_decay * t) with 1.0.
    "nadam": lambda params, lr: torch.optim.NAdam(params, lr=lr or 1e-3, eps=1e-7, momentum_decay=1.0),
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
    raise TypeError(f"optimizer: expected a name in {sorted(OPTIMIZERS)} or a torch optimizer, got {type(spec).__name__}")
