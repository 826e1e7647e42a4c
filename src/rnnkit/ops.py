"""Activations, initializers, argument checks and small tools shared by every layer.

Both registries are closed dictionaries: a name from a config file can only
ever select one of these functions, never import or run anything else.
``config_spec`` is their inverse, for ``get_config``. The tools at the end
are each the one place a mechanism lives: dropout masks (``dropout_mask``),
rebuilding a (named) tuple (``rebuild_tuple``), the weights' dtype and device
(``first_parameter``, ``like_weights``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- activations


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 3's definition: ``relu6(x + 3) / 6`` (slope 1/6, not Keras 2's 0.2)."""
    return F.relu6(x + 3.0) / 6.0


def linear(x: torch.Tensor) -> torch.Tensor:
    return x


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Over the last axis, as Keras's default."""
    return torch.softmax(x, dim=-1)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "hard_sigmoid": hard_sigmoid,
    "linear": linear,
    "elu": F.elu,
    "selu": F.selu,
    "softsign": F.softsign,
    "gelu": F.gelu,
    "swish": F.silu,
    "silu": F.silu,
    "softplus": F.softplus,
    "relu6": F.relu6,
    "exponential": torch.exp,
    "softmax": softmax,
}


def get_activation(spec, arg: str = "activation") -> Callable[[torch.Tensor], torch.Tensor]:
    """A name from ``ACTIVATIONS``, ``None`` (linear, as Keras) or any callable."""
    if spec is None:
        return linear
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise ValueError(
                f"{arg}: unknown activation {spec!r}; expected one of "
                f"{sorted(ACTIVATIONS)} or a callable"
            )
        return ACTIVATIONS[spec]
    if callable(spec):
        return spec
    raise TypeError(f"{arg}: expected an activation name or a callable, got {type(spec).__name__}")


def activation_name(fn) -> str | None:
    """The registry name of an activation function, or None for a custom callable."""
    for name, f in ACTIVATIONS.items():
        if f is fn:
            return name
    return None


# --------------------------------------------------------------- initializers
# Each initializer fills a new tensor of `shape` in Keras's layout. Fans follow
# Keras: for a kernel (fan_in, fan_out) = shape.


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def glorot_uniform(shape, dtype=torch.float32, generator=None):
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return torch.empty(shape, dtype=dtype).uniform_(-limit, limit, generator=generator)


def glorot_normal(shape, dtype=torch.float32, generator=None):
    fan_in, fan_out = _fans(shape)
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return torch.nn.init.trunc_normal_(torch.empty(shape, dtype=dtype), std=std, a=-2 * std, b=2 * std, generator=generator)


def he_uniform(shape, dtype=torch.float32, generator=None):
    limit = math.sqrt(6.0 / _fans(shape)[0])
    return torch.empty(shape, dtype=dtype).uniform_(-limit, limit, generator=generator)


def lecun_uniform(shape, dtype=torch.float32, generator=None):
    limit = math.sqrt(3.0 / _fans(shape)[0])
    return torch.empty(shape, dtype=dtype).uniform_(-limit, limit, generator=generator)


def orthogonal(shape, dtype=torch.float32, generator=None):
    # A recurrent kernel (units, g*units) is g square orthogonal blocks side by
    # side in Keras too: it orthogonalises the whole (rows, cols) matrix.
    return torch.nn.init.orthogonal_(torch.empty(shape, dtype=dtype), generator=generator)


def zeros(shape, dtype=torch.float32, generator=None):  # noqa: ARG001 - every initializer takes a generator
    return torch.zeros(shape, dtype=dtype)


def ones(shape, dtype=torch.float32, generator=None):  # noqa: ARG001
    return torch.ones(shape, dtype=dtype)


def random_normal(shape, dtype=torch.float32, generator=None):
    return torch.empty(shape, dtype=dtype).normal_(0.0, 0.05, generator=generator)


def random_uniform(shape, dtype=torch.float32, generator=None):
    return torch.empty(shape, dtype=dtype).uniform_(-0.05, 0.05, generator=generator)


class Constant:
    """Initializer that fills with one value (Keras's ``Constant``)."""

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, shape, dtype=torch.float32):
        return torch.full(shape, self.value, dtype=dtype)

    def __repr__(self):
        return f"Constant({self.value})"


INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "ones": ones,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
}


class ConfigObject:
    """Base of the argument objects a config can name (initializers, regularizers, constraints).

    ``get_config()`` gives the constructor's arguments; two objects of one class with one config are
    equal, and ``repr`` shows the config.
    """

    def get_config(self) -> dict:
        return {}

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def object_from_spec(spec, registry: dict, base: type, arg: str, kind: str, expected: str):
    """None, a registry name, a ``base`` object, or its config ``{"class_name", "config"}``, as an object."""
    if spec is None or isinstance(spec, base):
        return spec
    if isinstance(spec, str):
        if spec not in registry:
            raise ValueError(f"{arg}: unknown {kind} {spec!r}; expected one of {sorted(registry)}")
        return registry[spec]()
    if isinstance(spec, dict) and spec.get("class_name") in registry and isinstance(spec.get("config", {}), dict):
        return registry[spec["class_name"]](**spec.get("config", {}))
    raise TypeError(f"{arg}: expected None, {expected} or its config dict, got {spec!r}")


def object_config(spec):
    """How such an argument is written in a layer's config: a name stays a name, an object becomes its dict."""
    if spec is None or isinstance(spec, str):
        return spec
    return {"class_name": type(spec).__name__, "config": spec.get_config()}


class Initializer(ConfigObject):
    """An initializer object with Keras's name and an optional ``seed``.

    Seeded, each call draws the same numbers (from a ``torch.Generator``
    seeded with ``seed``), as Keras's seeded initializers do; without a seed
    it draws from torch's global RNG like the function of the same name.
    ``get_config()`` is ``{"seed": ...}``; ``config_spec`` writes it as
    ``{"class_name": "GlorotUniform", "config": {"seed": 1}}``.

    >>> bool((GlorotUniform(seed=1)((3, 4)) == GlorotUniform(seed=1)((3, 4))).all())
    True
    """

    function = staticmethod(glorot_uniform)

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        self.seed = seed

    def __call__(self, shape, dtype=torch.float32):
        generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        return self.function(tuple(shape), dtype=dtype, generator=generator)

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _initializer_class(class_name: str, function) -> type[Initializer]:
    return type(class_name, (Initializer,), {"function": staticmethod(function), "__module__": __name__,
                                              "__doc__": f"Keras's ``{class_name}``: ``{function.__name__}`` with an optional seed."})


GlorotUniform = _initializer_class("GlorotUniform", glorot_uniform)
GlorotNormal = _initializer_class("GlorotNormal", glorot_normal)
HeUniform = _initializer_class("HeUniform", he_uniform)
LecunUniform = _initializer_class("LecunUniform", lecun_uniform)
Orthogonal = _initializer_class("Orthogonal", orthogonal)
RandomNormal = _initializer_class("RandomNormal", random_normal)
RandomUniform = _initializer_class("RandomUniform", random_uniform)
Zeros = _initializer_class("Zeros", zeros)
Ones = _initializer_class("Ones", ones)

INITIALIZER_CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (GlorotUniform, GlorotNormal, HeUniform, LecunUniform, Orthogonal, RandomNormal, RandomUniform, Zeros, Ones)
}


def get_initializer(spec, arg: str = "initializer"):
    """A name from ``INITIALIZERS``, a number (constant), an ``Initializer`` or its config
    ``{"class_name": "GlorotUniform", "config": {"seed": 1}}``, or a callable ``(shape, dtype) -> Tensor``."""
    if isinstance(spec, dict):
        cls = INITIALIZER_CLASSES.get(spec.get("class_name"))
        if cls is None or not isinstance(spec.get("config", {}), dict):
            raise ValueError(f"{arg}: unknown initializer config {spec!r}; class_name is one of {sorted(INITIALIZER_CLASSES)}")
        return cls(**spec.get("config", {}))
    if isinstance(spec, str):
        if spec not in INITIALIZERS:
            raise ValueError(
                f"{arg}: unknown initializer {spec!r}; expected one of {sorted(INITIALIZERS)}, "
                "a number or a callable (shape, dtype) -> Tensor"
            )
        return INITIALIZERS[spec]
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(spec)
    if callable(spec):
        return spec
    raise TypeError(f"{arg}: expected an initializer name, a number or a callable, got {type(spec).__name__}")


def config_spec(value, owner: str, arg: str):
    """How an activation or initializer argument is written in a JSON config.

    A name, a number or None stays as given; a function of ``ACTIVATIONS``
    or ``INITIALIZERS`` becomes its name and a ``Constant`` its value.
    Anything else (a custom callable) has no JSON form: ``ValueError``
    naming ``owner`` (the layer) and ``arg``.

    >>> config_spec(torch.tanh, "gru", "activation"), config_spec(Constant(0.5), "gru", "bias_initializer")
    ('tanh', 0.5)
    """
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):  # an initializer's config, as given
        return value
    if isinstance(value, Initializer):
        return {"class_name": type(value).__name__, "config": value.get_config()}
    name = activation_name(value) or next((k for k, f in INITIALIZERS.items() if f is value), None)
    if name is not None:
        return name
    if isinstance(value, Constant):
        return value.value
    raise ValueError(f"{owner}: {arg}={value!r} is a custom callable and cannot be stored in a JSON config")


# ------------------------------------------------------------- argument checks


def check_positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{arg}: expected a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{arg}: expected a positive int, got {value}")
    return int(value)


def check_rate(value, arg: str) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg}: expected a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{arg}: expected a float in [0, 1), got {value}")
    return float(value)


def as_tensor(x, arg: str = "inputs") -> torch.Tensor:
    """Accept a tensor or a numpy array / nested list (which becomes float32, as in Keras)."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, np.generic)):
        # numpy data becomes float32, whatever its dtype, as Keras does.
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{arg}: expected a real numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    else:
        raise TypeError(f"{arg}: expected a torch.Tensor or a numpy array, got {type(x).__name__}")
    if t.is_complex() or not t.is_floating_point():
        raise TypeError(
            f"{arg}: expected a floating-point tensor (float32 or float64), got {t.dtype}; "
            "convert with .float() (token ids go through Embedding)"
        )
    return t


# ----------------------------------------------------------------- dropout


def bernoulli_mask(shape, keep_prob: float, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """0/1 draws, 1 with probability ``keep_prob``, of ``like``'s dtype and device.

    Drawn on the CPU and then moved, so a seeded ``generator`` (a CPU
    generator; torch's global RNG when None) gives the same masks on every
    device.
    """
    m = torch.empty(tuple(shape), dtype=like.dtype).bernoulli_(keep_prob, generator=generator)
    return m.to(like.device)


def dropout_mask(shape, keep_prob: float, like: torch.Tensor, generator: torch.Generator | None = None):
    """Inverted-dropout mask ``Bernoulli(keep_prob) / keep_prob``; None when ``keep_prob == 1`` (nothing dropped).

    ``x * mask`` keeps a fraction ``keep_prob`` of ``x`` with its expected
    value unchanged. Keras speaks of ``rate = 1 - keep_prob``, TF1 of
    ``keep_prob``; callers pass the keep probability they hold, so the scale
    is exactly ``1 / keep_prob``.

    >>> m = dropout_mask((2, 3), 0.5, torch.zeros(0))
    >>> bool(((m == 0) | (m == 2)).all())
    True
    """
    if keep_prob == 1.0:
        return None
    return bernoulli_mask(shape, keep_prob, like, generator) / keep_prob


# ------------------------------------------------------------ nested tuples


def rebuild_tuple(template, parts):
    """A tuple (or list) of ``template``'s type holding ``parts``; a named tuple (``LSTMState``) takes them as fields.

    >>> from rnnkit.cells import LSTMState
    >>> rebuild_tuple(LSTMState(1, 2), [3, 4]), rebuild_tuple((1, 2), [3, 4])
    (LSTMState(h=3, c=4), (3, 4))
    """
    return type(template)(*parts) if hasattr(template, "_fields") else type(template)(parts)


# --------------------------------------------------------- weights' dtype


def first_parameter(module) -> torch.Tensor | None:
    """The first parameter of a ``torch.nn.Module`` (it tells the weights' dtype and device); None when there is none."""
    if not isinstance(module, torch.nn.Module):
        return None
    return next(module.parameters(), None)


def like_weights(module, dtype=None, device=None) -> torch.Tensor:
    """An empty tensor of ``module``'s weights' dtype and device, to make zeros like them.

    ``dtype``/``device`` when given win; without weights, torch's default
    dtype on the default device.
    """
    p = first_parameter(module)
    if p is not None:
        dtype, device = dtype or p.dtype, device or p.device
    return torch.empty(0, dtype=dtype or torch.get_default_dtype(), device=device)
