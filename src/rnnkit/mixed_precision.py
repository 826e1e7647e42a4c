"""Keras's dtype policies: ``dtype="mixed_bfloat16"`` on a layer, or one global policy.

A policy names two dtypes: the *variable* dtype the weights are kept in, and
the *compute* dtype the layer calculates in and returns:

==================  ===============  ==============
name                variable_dtype   compute_dtype
==================  ===============  ==============
``float32``         float32          float32
``float64``         float64          float64
``mixed_bfloat16``  float32          bfloat16
``mixed_float16``   float32          float16 (CUDA only)
==================  ===============  ==============

::

    import rnnkit as rk
    rk.mixed_precision.set_global_policy("mixed_bfloat16")
    model = rk.Sequential([rk.LSTM(64), rk.Dense(10, activation="softmax", dtype="float32")])
    rk.mixed_precision.set_global_policy("float32")   # the default again for layers made from now on

As in Keras, a layer reads the global policy when it is made (``dtype=None``),
and ``dtype=`` (a name, a ``DTypePolicy`` or its Keras config) overrides it.
A layer with a policy (``run_under``):

* keeps its weights in ``variable_dtype``;
* casts its floating inputs to ``variable_dtype`` (a bfloat16 output of the
  layer before becomes float32 again, exactly), then runs its ``forward``
  under ``torch.autocast(device, compute_dtype)`` when the policy is mixed
  (torch's autocast off otherwise, so a ``"float32"`` layer computes in
  float32 inside a mixed model). The recurrent layers' products then run in
  bfloat16 with a float32 carried state (``rnnkit.kernels.autocast``);
* returns its floating outputs in ``compute_dtype``, as Keras's do: a
  mixed model's last layer is given ``dtype="float32"`` so that its outputs
  (softmax probabilities) come out in float32.

A layer given no ``dtype`` while the global policy is the default
(``"float32"``, or never set) has no policy and keeps rnnkit's own rule
instead: its weights take the dtype of its first input (a float64 input
builds a float64 layer) and nothing is cast. ``Sequential`` and ``Model``
take no global policy: their outputs are their last layers'. ``fit``/``evaluate``
compute the loss and metrics in float32 from bfloat16/float16 outputs
(``for_loss``), and ``predict`` returns float32 arrays for them.

``mixed_float16`` runs only on CUDA devices: on the CPU torch's float16
products are emulated and rnnkit's kernels multiply in bfloat16 only, so a
call on CPU inputs raises ``ValueError`` (use ``mixed_bfloat16``). rnnkit's
``fit`` does no loss scaling, which float16 gradients may need.
"""

from __future__ import annotations

import contextvars

import torch

from .graph import flat_tensors, map_structure

__all__ = ["DTypePolicy", "global_policy", "set_global_policy", "POLICIES", "get", "serialize", "for_loss", "run_under"]

# name -> (variable dtype, compute dtype)
_POLICIES = {
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_bfloat16": ("float32", "bfloat16"),
    "mixed_float16": ("float32", "float16"),
}
#: The policy names rnnkit accepts.
POLICIES = tuple(_POLICIES)
_TORCH_NAMES = {torch.float32: "float32", torch.float64: "float64"}


class DTypePolicy:
    """A layer's variable and compute dtypes (Keras 3's ``keras.mixed_precision.DTypePolicy``).

    >>> p = DTypePolicy("mixed_bfloat16")
    >>> p.variable_dtype, p.compute_dtype
    ('float32', 'bfloat16')
    """

    def __init__(self, name: str = "float32"):
        if not isinstance(name, str) or name not in _POLICIES:
            raise ValueError(f"name: expected a dtype policy name among {sorted(_POLICIES)}, got {name!r}")
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def variable_dtype(self) -> str:
        """The dtype the weights are kept in (Keras's spelling, ``"float32"``)."""
        return _POLICIES[self._name][0]

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in and returns."""
        return _POLICIES[self._name][1]

    @property
    def is_mixed(self) -> bool:
        return self.variable_dtype != self.compute_dtype

    @property
    def torch_variable_dtype(self) -> torch.dtype:
        return getattr(torch, self.variable_dtype)

    @property
    def torch_compute_dtype(self) -> torch.dtype:
        return getattr(torch, self.compute_dtype)

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> DTypePolicy:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("DTypePolicy", self._name))

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


_global: DTypePolicy | None = None  # None: the default (float32, and layers keep rnnkit's dtype-from-input rule)


def set_global_policy(policy) -> None:
    """Make ``policy`` (a name or a ``DTypePolicy``) the policy of layers made from now on.

    Layers already made keep theirs, as in Keras. ``"float32"`` (or None)
    restores the default: layers made without ``dtype`` have no policy and
    follow rnnkit's rule (their first input's dtype).
    """
    global _global
    policy = None if policy is None else get(policy, "policy")
    _global = None if policy == DTypePolicy("float32") else policy


def global_policy() -> DTypePolicy:
    """The policy a layer made now without ``dtype`` takes (``float32`` unless ``set_global_policy`` said otherwise)."""
    return _global if _global is not None else DTypePolicy("float32")


def get(dtype, arg: str = "dtype") -> DTypePolicy | None:
    """The policy ``dtype`` names; for None, the global policy if one was set, else None.

    ``dtype``: a policy name, a ``DTypePolicy``, ``torch.float32``/``torch.float64``,
    or Keras's serialized form ``{"class_name": "DTypePolicy", "config": {"name": ...}}``.
    """
    if dtype is None:
        return _global
    if isinstance(dtype, DTypePolicy):
        return dtype
    if isinstance(dtype, torch.dtype):
        if dtype not in _TORCH_NAMES:
            raise ValueError(f"{arg}: expected torch.float32 or torch.float64 (or a policy name such as "
                             f"'mixed_bfloat16'), got {dtype}")
        return DTypePolicy(_TORCH_NAMES[dtype])
    if isinstance(dtype, dict):
        config = dtype.get("config")
        if dtype.get("class_name") != "DTypePolicy" or not isinstance(config, dict) or set(config) != {"name"}:
            raise ValueError(f"{arg}: expected a dtype policy config {{'class_name': 'DTypePolicy', 'config': "
                             f"{{'name': ...}}}}, got {str(dtype)[:80]}")
        dtype = config["name"]
    if not isinstance(dtype, str):
        raise TypeError(f"{arg}: expected a dtype policy name or a DTypePolicy, got {type(dtype).__name__}")
    if dtype not in _POLICIES:
        raise ValueError(f"{arg}: expected a dtype policy name among {sorted(_POLICIES)}, got {dtype!r}")
    return DTypePolicy(dtype)


def serialize(policy: DTypePolicy) -> dict:
    """Keras 3's form of a policy in a layer config (what ``get`` reads back)."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": policy.get_config(), "registered_name": None}


# ------------------------------------------------------------------ calls

_LOW = (torch.bfloat16, torch.float16)
# The policy whose call is running: a layer inside it with the same policy (a cell in its RNN, the halves
# of a Bidirectional) runs plainly, so a cell's per-step state is not rounded to the compute dtype.
_running: contextvars.ContextVar[DTypePolicy | None] = contextvars.ContextVar("rnnkit_policy", default=None)


def _cast(tree, dtype: torch.dtype, only=None):
    """``tree`` with its floating tensors (those of a dtype in ``only``, when given) cast to ``dtype``."""
    def cast(t):
        if t.is_floating_point() and t.dtype != dtype and (only is None or t.dtype in only):
            return t.to(dtype)
        return t

    return map_structure(cast, tree, torch.Tensor)


def _device_type(args, kwargs) -> str:
    """Where the call runs: its first tensor argument's device (torch.autocast takes one device type)."""
    found = flat_tensors((args, kwargs))
    return found[0].device.type if found else "cpu"


def run_under(policy: DTypePolicy, call, args: tuple, kwargs: dict):
    """``call(*args, **kwargs)`` as a layer of ``policy`` runs: inputs cast, autocast set, outputs cast."""
    if _running.get() == policy:
        return call(*args, **kwargs)
    device = _device_type(args, kwargs)
    if policy.compute_dtype == "float16" and device != "cuda":
        raise ValueError(f"dtype: policy {policy.name!r} computes in float16, which rnnkit runs on CUDA devices "
                         f"only; the inputs are on {device}: use 'mixed_bfloat16'")
    args, kwargs = _cast((args, kwargs), policy.torch_variable_dtype)
    token = _running.set(policy)
    try:
        # A non-mixed policy turns autocast off: a float32 layer computes in float32 inside a mixed model.
        with torch.autocast(device, dtype=policy.torch_compute_dtype if policy.is_mixed else torch.bfloat16,
                            enabled=policy.is_mixed):
            out = call(*args, **kwargs)
    finally:
        _running.reset(token)
    return _cast(out, policy.torch_compute_dtype)


def for_loss(outputs):
    """Outputs as losses and metrics take them: bfloat16 and float16 tensors in float32 (Keras's loss dtype)."""
    return _cast(outputs, torch.float32, only=_LOW)
