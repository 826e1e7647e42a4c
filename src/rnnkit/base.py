"""`Layer`: what every rnnkit layer and cell shares with Keras's Layer.

A layer is a plain ``torch.nn.Module`` plus the Keras conventions users port
code with: a ``name``, lazy ``build(input_shape)`` when the input size is not
given, ``get_weights()``/``set_weights()`` as numpy arrays in Keras's order
and shapes, and a plain-JSON ``get_config()``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
from collections import defaultdict

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter, is_lazy

from . import graph, mixed_precision

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)


def _snake(name: str) -> str:
    # "SimpleRNN" -> "simple_rnn", "GRUCell" -> "gru_cell", "Conv2D" -> "conv2d", as Keras names them
    # (a digit does not start a new word: "GlobalAveragePooling1D" -> "global_average_pooling1d").
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(cls_name: str) -> str:
    base = _snake(cls_name)
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


class Layer(nn.Module):
    """Base of rnnkit layers: Keras naming, lazy build, weights and config.

    Subclasses create their parameters in ``build(input_shape)`` (the shape
    without the batch axis) and list them in Keras's order in ``weights``.
    A layer made of other layers (an ``RNN`` around its cell, a stack, a
    wrapper) names them in ``_built_parts()`` and is built when they are.

    As in Keras, a subclass's ``build`` need not set ``self.built``: the
    layer is marked built when ``build`` returns. A subclass that does not
    write ``get_config`` gets Keras's automatic one: ``name`` plus the
    arguments its ``__init__`` was called with, so ``cls.from_config(config)``
    makes the same layer again.

    Class attributes a ``Sequential`` reads (Keras 3's meaning):
    ``supports_masking`` (the layer passes the incoming mask on unchanged,
    as Dense or Dropout do) and ``takes_mask`` (its forward reads one, as
    ``layer(x, mask=mask)``; what it passes on is its ``compute_mask``).
    ``states_as_list``: as a cell, it receives its states as a list, as a
    Keras cell does (see ``RNN``).
    ``takes_global_policy``: a layer made without ``dtype`` takes the global
    dtype policy; a model (``Sequential``, ``Model``) does not, its layers
    running under their own (so a float32 last layer's outputs stay float32).

    ``dtype``: Keras's dtype policy (``"float32"``, ``"float64"``,
    ``"mixed_bfloat16"``, ``"mixed_float16"`` or a ``DTypePolicy``); None
    takes the global one (``rnnkit.mixed_precision``), read when the layer is
    made. A layer with a policy keeps its weights in ``variable_dtype``,
    computes in ``compute_dtype`` (``torch.autocast`` for the mixed ones) and
    returns its floating outputs in ``compute_dtype``; ``get_config`` carries
    the policy. A layer without one (no ``dtype``, no global policy set)
    takes its dtype from its first input and casts nothing.
    """

    supports_masking = False
    takes_mask = False
    states_as_list = True
    takes_global_policy = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _marks_built(cls.__dict__["build"])
        if "__init__" in cls.__dict__:
            cls.__init__ = _records_arguments(cls.__dict__["__init__"])
        if "get_config" in cls.__dict__:
            cls.get_config = _carries_policy(cls.__dict__["get_config"])

    # ---- functional API (rnnkit.graph): a call on symbolic tensors records a node instead of running
    def __call__(self, *args, **kwargs):
        if graph.is_symbolic_call(args, kwargs):
            return graph.record(self, args, kwargs)
        policy = self.__dict__.get("_policy")
        if policy is not None:
            return mixed_precision.run_under(policy, super().__call__, args, kwargs)
        return super().__call__(*args, **kwargs)

    input = property(graph.layer_input, doc="The first argument of the layer's first symbolic call.")
    output = property(graph.layer_output, doc="The outputs of the layer's first symbolic call.")
    # ---- end of the functional API hook

    def __init__(self, name: str | None = None, input_shape=None, dtype=None):
        super().__init__()
        # None: rnnkit's rule, the dtype of the first input
        self._policy = mixed_precision.get(dtype) if dtype is not None or self.takes_global_policy else None
        self.name = name or unique_name(type(self).__name__)
        self.built = False
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.register_load_state_dict_pre_hook(_build_from_state)

    @property
    def built(self) -> bool:
        """Whether the weights exist: recorded by ``build``, or all of ``_built_parts()`` built."""
        parts = self._built_parts()
        if parts is None:
            return self._built
        return all(getattr(p, "built", True) for p in parts)  # a plain torch module is built when made

    @built.setter
    def built(self, value: bool) -> None:
        # Assigned by __init__ and build; ignored by a layer whose parts decide.
        self._built = bool(value)

    def _built_parts(self):
        """The sub-layers whose build is this layer's; None when the layer records its own."""
        return None

    def build(self, input_shape) -> None:  # noqa: ARG002 - layers without weights
        self.built = True

    def maybe_build(self, input_shape, like: torch.Tensor | None = None) -> None:
        """Build once; a layer built from its first input takes that input's dtype and device."""
        if not self.built:
            # issue 15: zero features would build empty kernels, and matmuls on them return garbage.
            if len(input_shape) and input_shape[-1] == 0:
                raise ValueError(f"inputs: layer {self.name!r} cannot be built for 0 features; expected at least one "
                                 f"(input shape {tuple(input_shape)})")
            self.build(tuple(input_shape))
            self.input_shape = tuple(input_shape)
            if self._policy is not None:
                self.to(device=None if like is None else like.device, dtype=self._policy.torch_variable_dtype)
            elif like is not None and like.is_floating_point():
                self.to(device=like.device, dtype=like.dtype)

    # ------------------------------------------------------------ dtype policy
    @property
    def dtype_policy(self) -> mixed_precision.DTypePolicy:
        """The layer's ``DTypePolicy``; without one, the policy its weights' dtype names (float32 unbuilt)."""
        if self._policy is not None:
            return self._policy
        weights = self.weights
        return mixed_precision.DTypePolicy("float64" if weights and weights[0].dtype == torch.float64 else "float32")

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in and returns (``"bfloat16"`` under ``"mixed_bfloat16"``)."""
        return self.dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layer's weights (``"float32"`` under ``"mixed_bfloat16"``)."""
        return self.dtype_policy.variable_dtype

    @property
    def weights(self) -> list[nn.Parameter]:
        """Parameters in Keras's order (registration order unless overridden); none before build."""
        return [p for p in self.parameters() if not is_lazy(p)]

    def get_weights(self) -> list[np.ndarray]:
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Copy numpy arrays (Keras order and shapes) into the parameters."""
        if not self.built:
            raise ValueError(
                f"weights: layer {self.name!r} is not built yet; give it input_shape=... or call it on data first"
            )
        own = self.weights
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"weights: layer {self.name!r} expects a list of arrays, got {type(weights).__name__}")
        if len(weights) != len(own):
            raise ValueError(
                f"weights: layer {self.name!r} expects {len(own)} arrays "
                f"{[tuple(w.shape) for w in own]}, got {len(weights)}"
            )
        # Check every array before copying any, so a bad list leaves the layer as it was.
        new = []
        for i, (p, w) in enumerate(zip(own, weights)):
            if isinstance(w, torch.Tensor):
                w, real = w.detach(), not w.is_complex()
            else:
                w = np.asarray(w)
                real = w.dtype.kind in "biuf"
            if not real:
                raise TypeError(f"weights[{i}]: layer {self.name!r} expects a real numeric array, got dtype {w.dtype}")
            w = torch.as_tensor(w)
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(
                    f"weights[{i}]: layer {self.name!r} expects shape {tuple(p.shape)}, got {tuple(w.shape)}"
                )
            new.append(w)
        with torch.no_grad():
            for p, w in zip(own, new):
                p.copy_(w.to(dtype=p.dtype, device=p.device))

    # ------------------------------------------------ regularizers, constraints
    def weight_penalties(self) -> list[tuple]:
        """``(weight, regularizer, constraint)`` for this layer's own weights that have either (Keras's arguments)."""
        return []

    @property
    def losses(self) -> list[torch.Tensor]:
        """Scalar penalties of this layer and every layer inside it (Keras's ``layer.losses``).

        Weight regularizers are computed from the current weights; activity
        regularizers hold the last call's ``regularizer(output) / batch``.
        ``fit`` adds their sum to the training loss.
        """
        out = []
        for m in self.modules():
            if isinstance(m, Layer):
                out += [reg(w) for w, reg, _ in m.weight_penalties() if reg is not None]
                out += m.__dict__.get("_activity_losses", [])
        return out

    def record_activity(self, outputs) -> None:
        """Keras's activity regularization: ``activity_regularizer(o) / batch`` for each output tensor ``o``."""
        reg = getattr(self, "activity_regularizer", None)
        if reg is None:
            return
        flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        leaves = [o for item in flat for o in (item if isinstance(item, (list, tuple)) else [item])]
        self._activity_losses = [reg(o) / o.shape[0] if o.dim() else reg(o) for o in leaves]

    def apply_constraints(self) -> None:
        """Project every constrained weight of this layer and the layers inside it (``fit`` calls it after each step)."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, Layer):
                    for w, _, constraint in m.weight_penalties():
                        if constraint is not None:
                            w.copy_(constraint(w))

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if not is_lazy(p))

    def get_config(self) -> dict:
        """``name`` and the ``__init__`` arguments as given (Keras's automatic config), and the dtype policy if any."""
        given = {k: v for k, v in (self.__dict__.get("_init_arguments") or {}).items() if k != "name"}
        return _with_policy(self, {"name": self.name, **given})

    @classmethod
    def from_config(cls, config: dict):
        """The layer ``get_config()`` describes: ``cls(**config)``."""
        if not isinstance(config, dict):
            raise TypeError(f"config: {cls.__name__}.from_config expects a dict from get_config(), got {type(config).__name__}")
        return cls(**config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


# ------------------------------------------------------------ lazy weights
# As torch's Lazy modules: a layer whose input size is not known yet
# registers its weights as UninitializedParameter objects, and build()
# materializes those same objects. So an optimizer made before the first
# call holds the real weights, a state_dict of a built layer loads into a
# fresh one (the pre-hook below builds it from the kernel's shape first),
# and deepcopy works before and after build.


def lazy_parameter() -> UninitializedParameter:
    """A weight whose shape comes at build (``materialize``)."""
    return UninitializedParameter()


def materialize(module: nn.Module, name: str, shape) -> nn.Parameter:
    """Give ``module.<name>`` its ``shape``: the lazy parameter itself when it is one, else a new parameter."""
    p = getattr(module, name, None)
    if is_lazy(p):
        p.materialize(tuple(shape))
        return p
    p = nn.Parameter(torch.empty(tuple(shape)))
    setattr(module, name, p)
    return p


def _build_from_state(module, state_dict, prefix, *args):  # noqa: ARG001 - load_state_dict's pre-hook arguments
    """Build an unbuilt layer from the saved kernel's shape (in, ...), so its weights can be loaded."""
    kernel = state_dict.get(prefix + "kernel")
    if not module.built and is_lazy(getattr(module, "kernel", None)) and isinstance(kernel, torch.Tensor):
        module.maybe_build((kernel.shape[0],))


def _marks_built(build):
    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        out = build(self, *args, **kwargs)
        self.built = True  # Keras: a layer is built once its build returns
        return out

    return wrapper


def _with_policy(layer, config: dict) -> dict:
    # Keras writes every layer's policy; rnnkit those of the layers that have one, so configs without stay as they were.
    if layer._policy is not None:
        config["dtype"] = mixed_precision.serialize(layer._policy)
    return config


def _carries_policy(get_config):
    @functools.wraps(get_config)
    def wrapper(self):
        return _with_policy(self, get_config(self))

    return wrapper


def _records_arguments(init):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        outermost = "_init_arguments" not in self.__dict__
        if outermost:  # a subclass's __init__ calling its parent's: keep the subclass's arguments
            object.__setattr__(self, "_init_arguments", None)
        init(self, *args, **kwargs)
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            given = {}
            for name, value in list(bound.arguments.items())[1:]:
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    given.update(value)
                elif signature.parameters[name].kind is not inspect.Parameter.VAR_POSITIONAL:
                    given[name] = value
            object.__setattr__(self, "_init_arguments", given)

    return wrapper


def serialize_layer(layer) -> dict:
    """``{"class_name", "module", "config"}`` of a ``Layer`` (its ``get_config()``)."""
    if not isinstance(layer, Layer):
        raise ValueError(
            f"layer: a {type(layer).__name__} is not an rnnkit Layer and has no config; "
            "subclass rnnkit.Layer (whose get_config records the __init__ arguments)"
        )
    return {"class_name": type(layer).__name__, "module": type(layer).__module__, "config": layer.get_config()}


def deserialize_layer(spec: dict):
    """The layer ``serialize_layer`` describes.

    The class is looked up among the ``Layer`` subclasses this program has
    already defined (rnnkit's own and the user's), by name and module:
    nothing is imported and no code comes from the config.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"layer config: expected {{'class_name': str, 'config': dict}}, got {str(spec)[:80]!r}")
    name, module = spec["class_name"], spec.get("module")
    found = [c for c in _subclasses(Layer) if c.__name__ == name and (module is None or c.__module__ == module)]
    if not found:
        raise ValueError(f"layer config: no Layer subclass {name!r} (module {module!r}) is defined in this program")
    return found[0].from_config(dict(spec["config"]))


def _subclasses(cls) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out

