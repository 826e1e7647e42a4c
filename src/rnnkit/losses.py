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
    """A loss: ``loss(y_true, y_pred) -> scalar mean`` over every sample (and time step)."""

    name = "loss"

    def __call__(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}


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

    def __call__(self, y_true, y_pred):
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
        return -logp.reshape(-1, classes).gather(1, y_true.reshape(-1, 1)).mean()

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """One-hot (or soft) targets ``y_true`` with the shape of ``y_pred``: ``-mean(sum(y * log p))``."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
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
        return -(y_true.to(logp.dtype) * logp).sum(-1).mean()

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


def _check_same_shape(y_true, y_pred, name):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y: {name} expects targets of the output's shape {tuple(y_pred.shape)}, got {tuple(y_true.shape)}")


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred)**2)``."""

    name = "mse"

    def __call__(self, y_true, y_pred):
        _check_same_shape(y_true, y_pred, self.name)
        return ((y_true.to(y_pred.dtype) - y_pred) ** 2).mean()


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)``."""

    name = "mae"

    def __call__(self, y_true, y_pred):
        _check_same_shape(y_true, y_pred, self.name)
        return (y_true.to(y_pred.dtype) - y_pred).abs().mean()


LOSSES: dict[str, type] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


class _CallableLoss(Loss):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true, y_pred):
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


def get_metric(name: str, loss: Loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample-mean metric functions; "accuracy" follows the loss as in Keras."""
    if name in ("accuracy", "acc"):
        if isinstance(loss, SparseCategoricalCrossentropy):
            return lambda y, p: (p.argmax(-1) == y.reshape(p.shape[:-1]).long()).float().mean()
        if isinstance(loss, CategoricalCrossentropy):
            return lambda y, p: (p.argmax(-1) == y.argmax(-1)).float().mean()
        raise ValueError(
            f"metrics: 'accuracy' needs a crossentropy loss to know how to compare classes, got loss {loss.name!r}"
        )
    if name in ("mse", "mean_squared_error"):
        return MeanSquaredError()
    if name in ("mae", "mean_absolute_error"):
        return MeanAbsoluteError()
    raise ValueError(f"metrics: unknown metric {name!r}; expected 'accuracy', 'mse' or 'mae'")
