"""Keras's losses and metrics: ``loss(y_true, y_pred) -> scalar``, a mean over samples (and time steps).

    get_loss("mse")(y_true, y_pred)                               # by name, as compile takes it
    SparseCategoricalCrossentropy(from_logits=True)(ids, logits)  # or as an object with options
    get_metric("accuracy", loss)(y_true, y_pred)                  # the fraction of right classes

Crossentropy and probabilities: as in Keras, the crossentropy losses take
*probabilities* by default (a model ending in ``Dense(n, activation="softmax")``)
and compute ``-log(clip(p, 1e-7, 1 - 1e-7))`` of the true class. For a model
that ends in a plain ``Dense(n)`` (logits), pass a loss object with
``from_logits=True``: ``loss=SparseCategoricalCrossentropy(from_logits=True)``;
it applies ``log_softmax`` itself, which is the more stable choice. Outputs
outside [0, 1] given to a probability loss raise a ValueError rather than
training on a wrong loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

_EPS = 1e-7  # Keras's backend epsilon, used to clip probabilities


# -------------------------------------------------------------------- losses


class Loss:
    """A loss: ``loss(y_true, y_pred, sample_weight=None) -> scalar``.

    Subclasses write ``values(y_true, y_pred)``: the loss of every sample
    (and time step, and for the elementwise losses every feature). Without
    weights the loss is their mean. With ``sample_weight`` (one weight per
    sample, or per sample and step) it is Keras 3's "sum_over_batch_size"
    reduction: ``sum(w * values) / values.numel()`` -- a weighted *sum*
    divided by the count, not by the sum of the weights, so weights of 0
    lower the loss. Weights broadcast over the trailing axes of ``values``.
    """

    name = "loss"

    def values(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight=None) -> torch.Tensor:
        values = self.values(y_true, y_pred)
        if sample_weight is None:
            return values.mean()
        return weighted_mean(values, sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name}


def weighted_mean(values: torch.Tensor, sample_weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * values) / values.numel()`` with ``w`` of shape (batch,) or (batch, time) broadcast over the rest."""
    w = torch.as_tensor(sample_weight, device=values.device).to(values.dtype)
    while w.dim() > values.dim() and w.shape[-1] == 1:  # Keras squeezes a trailing axis of 1: (batch, 1) -> (batch,)
        w = w.squeeze(-1)
    if w.dim() > values.dim() or tuple(w.shape) != tuple(values.shape[:w.dim()]):
        raise ValueError(
            f"sample_weight: expected shape {tuple(values.shape[:1])} (one weight per sample) or a leading part of "
            f"the per-sample losses' shape {tuple(values.shape)}, got {tuple(w.shape)}"
        )
    w = w.reshape(*w.shape, *([1] * (values.dim() - w.dim())))
    return (values * w).sum() / max(values.numel(), 1)


def _check_probabilities(y_pred: torch.Tensor, loss_name: str) -> None:
    lo, hi = float(y_pred.detach().min()), float(y_pred.detach().max())
    if lo < 0.0 or hi > 1.0 + 1e-6:
        raise ValueError(
            f"loss: {loss_name} expects probabilities (a softmax output) but the model output lies in "
            f"[{lo:.3g}, {hi:.3g}]; end the model with Dense(n, activation='softmax') or pass "
            f"{_class_name(loss_name)}(from_logits=True)"
        )


def _class_name(loss_name: str) -> str:
    return "".join(part.capitalize() for part in loss_name.split("_"))


class SparseCategoricalCrossentropy(Loss):
    """Integer class ids ``y_true`` (..., ) against class scores ``y_pred`` (..., classes).

    ``-mean(log p[y])``; with ``from_logits`` the scores go through ``log_softmax``.
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def values(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"y: sparse_categorical_crossentropy expects class ids of shape {tuple(y_pred.shape[:-1])} "
                f"for outputs {tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
            )
        if y_true.is_floating_point():
            y_true = y_true.round()
        y_true = y_true.long()
        if y_true.numel() and (int(y_true.min()) < 0 or int(y_true.max()) >= classes):
            raise ValueError(f"y: class ids must lie in [0, {classes}), got [{int(y_true.min())}, {int(y_true.max())}]")
        if self.from_logits:
            logp = F.log_softmax(y_pred, dim=-1)
        else:
            _check_probabilities(y_pred, self.name)
            logp = torch.log(y_pred.clamp(_EPS, 1 - _EPS))
        return -logp.reshape(-1, classes).gather(1, y_true.reshape(-1, 1)).reshape(y_true.shape)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """One-hot (or soft) targets ``y_true`` with the shape of ``y_pred``: ``-mean(sum(y * log p))``."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def values(self, y_true, y_pred):
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"y: categorical_crossentropy expects one-hot targets of shape {tuple(y_pred.shape)}, "
                f"got {tuple(y_true.shape)}; for class ids use sparse_categorical_crossentropy"
            )
        if self.from_logits:
            logp = F.log_softmax(y_pred, dim=-1)
        else:
            _check_probabilities(y_pred, self.name)
            logp = torch.log(y_pred.clamp(_EPS, 1 - _EPS))
        return -(y_true.to(logp.dtype) * logp).sum(-1)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


def _check_same_shape(y_true, y_pred, name):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y: {name} expects targets of the output's shape {tuple(y_pred.shape)}, got {tuple(y_true.shape)}")


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred)**2)``."""

    name = "mse"

    def values(self, y_true, y_pred):
        _check_same_shape(y_true, y_pred, self.name)
        return (y_true.to(y_pred.dtype) - y_pred) ** 2


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)``."""

    name = "mae"

    def values(self, y_true, y_pred):
        _check_same_shape(y_true, y_pred, self.name)
        return (y_true.to(y_pred.dtype) - y_pred).abs()


def _same_rank(y_true, y_pred, name):
    """Targets (batch,) for outputs (batch, 1) get the trailing axis, as Keras lines them up; then the shapes must agree."""
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    _check_same_shape(y_true, y_pred, name)
    return y_true.to(y_pred.dtype)


class BinaryCrossentropy(Loss):
    """Targets in {0, 1} (or soft) against one probability per output: ``-mean(y log p + (1 - y) log(1 - p))``.

    As Keras: probabilities are clipped to [1e-7, 1 - 1e-7] first; with
    ``from_logits`` the outputs are logits and go through ``log_sigmoid``
    (``log(1 - sigmoid(z)) = log_sigmoid(-z)``), which is stable for any z.
    Targets (batch,) fit outputs (batch, 1).
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def values(self, y_true, y_pred):
        y = _same_rank(y_true, y_pred, self.name)
        if self.from_logits:
            return -(y * F.logsigmoid(y_pred) + (1 - y) * F.logsigmoid(-y_pred))
        _check_probabilities(y_pred, self.name)
        p = y_pred.clamp(_EPS, 1 - _EPS)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class Huber(Loss):
    """``0.5 e**2`` where ``|e| <= delta``, else ``delta (|e| - 0.5 delta)``, with ``e = y_pred - y_true`` (Keras's ``Huber``).

    Quadratic near zero, linear beyond ``delta`` (default 1.0), so outliers pull less than in mse.
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ValueError(f"delta: expected a positive number, got {delta!r}")
        self.delta = float(delta)

    def values(self, y_true, y_pred):
        err = (y_pred - _same_rank(y_true, y_pred, self.name)).abs()
        return torch.where(err <= self.delta, 0.5 * err**2, self.delta * (err - 0.5 * self.delta))

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


LOSSES: dict[str, type] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "huber": Huber,
}


class _CallableLoss(Loss):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"sample_weight: the loss function {self.name!r} gives one number, which cannot be "
                             "weighted per sample; use a Loss subclass with values()")
        return self.fn(y_true, y_pred)


def get_loss(spec) -> Loss:
    """A ``Loss`` from a name in ``LOSSES``, a ``Loss`` (returned as it is) or a callable ``(y_true, y_pred) -> scalar``."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        if spec not in LOSSES:
            raise ValueError(f"loss: unknown loss {spec!r}; expected one of {sorted(LOSSES)}, a Loss or a callable")
        return LOSSES[spec]()
    if callable(spec):
        return _CallableLoss(spec)
    raise TypeError(f"loss: expected a loss name, a Loss or a callable(y_true, y_pred), got {type(spec).__name__}")


# ------------------------------------------------------------------- metrics


def _binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    """Keras's ``BinaryAccuracy``: ``y_pred > threshold`` equals the target (0/1 or bool), averaged."""
    y = y_true if y_true.dim() == y_pred.dim() or y_pred.shape[-1] != 1 else y_true.unsqueeze(-1)
    return ((y_pred > threshold) == (y.to(y_pred.dtype) > 0.5)).to(y_pred.dtype).mean()


def _binary_crossentropy_metric(y_true, y_pred):
    """Keras's ``binary_crossentropy`` metric: the loss's formula on probabilities clipped to
    [1e-7, 1 - 1e-7], on any output (a metric only watches, so it does not refuse a linear one)."""
    y = _same_rank(y_true, y_pred, "binary_crossentropy")
    p = y_pred.clamp(_EPS, 1 - _EPS)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def get_metric(name: str, loss: Loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample-mean metric functions; "accuracy" follows the loss as in Keras.

    "accuracy" is sparse categorical accuracy with ``sparse_categorical_crossentropy``,
    categorical accuracy (argmax against argmax) with ``categorical_crossentropy``
    and binary accuracy (threshold 0.5, also for logits, as Keras) with
    ``binary_crossentropy``. Targets may be bool.
    """
    if name in ("accuracy", "acc"):
        if isinstance(loss, SparseCategoricalCrossentropy):
            return lambda y, p: (p.argmax(-1) == y.reshape(p.shape[:-1]).long()).float().mean()
        if isinstance(loss, CategoricalCrossentropy):
            return lambda y, p: (p.argmax(-1) == y.to(p.dtype).argmax(-1)).float().mean()
        if isinstance(loss, BinaryCrossentropy):
            return _binary_accuracy
        raise ValueError(
            f"metrics: 'accuracy' needs a crossentropy loss to know how to compare classes, got loss {loss.name!r}"
        )
    if name in ("mse", "mean_squared_error"):
        return MeanSquaredError()
    if name in ("mae", "mean_absolute_error"):
        return MeanAbsoluteError()
    if name in ("bce", "binary_crossentropy"):
        return _binary_crossentropy_metric
    raise ValueError(f"metrics: unknown metric {name!r}; expected 'accuracy', 'mse', 'mae' or 'bce'")
