"""Keras's training API for ``Sequential``: ``compile``, ``fit``, ``evaluate``, ``predict``.

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1)
    history.history["val_accuracy"]          # one number per epoch
    loss, accuracy = model.evaluate(x_test, y_test)
    probs = model.predict(x_test)            # numpy array

Inputs are numpy arrays, tensors, or a ``torch.utils.data.Dataset`` whose
items are ``(x, y)`` pairs (then ``y`` is omitted).

Crossentropy and probabilities: as in Keras, the crossentropy losses take
*probabilities* by default (a model ending in ``Dense(n, activation="softmax")``)
and compute ``-log(clip(p, 1e-7, 1 - 1e-7))`` of the true class. For a model
that ends in a plain ``Dense(n)`` (logits), pass a loss object with
``from_logits=True``: ``loss=SparseCategoricalCrossentropy(from_logits=True)``;
it applies ``log_softmax`` itself, which is the more stable choice. Outputs
outside [0, 1] given to a probability loss raise a ValueError rather than
training on a wrong loss.

Repeatability: ``fit`` shuffles with its own ``torch.Generator``
(``model.shuffle_generator``), seeded from torch's global generator on first
use, so ``torch.manual_seed(s)`` before building the model makes a CPU run
repeatable; ``rnnkit.io`` saves and restores that generator with the RNG
states for exact resumption (``fit(..., initial_epoch=k)``).

Several processes: under ``torchrun`` with ``rnnkit.distributed.init()``,
``fit`` trains with DistributedDataParallel; ``batch_size`` is then the
global batch (see ``rnnkit.distributed``).

Non-finite values: ``clipnorm`` calls ``clip_grad_norm_`` with
``error_if_nonfinite=False`` (torch's default), so a NaN or infinite
gradient raises nothing: the step writes NaN into the weights and the loss
is NaN from then on. ``TerminateOnNaN`` stops training at the first
non-finite batch loss; ``ModelCheckpoint`` and ``rnnkit train`` keep the
last epoch whose loss and weights were finite.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed
from .callbacks import Callback

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


def _metric(name: str, loss: Loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
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


_OPTIMIZERS = {
    # Keras's default learning rates and epsilons, so ported code trains alike.
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr or 1e-3, eps=1e-7),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr or 1e-3, alpha=0.9, eps=1e-7),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr or 1e-2),
}


def resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for CUDA, but torch sees no CUDA device")
    return dev


# ---------------------------------------------------------------------- data


class _Arrays:
    """Samples held as tensors; batches are index selections."""

    def __init__(self, x, y, arg="x"):
        self.x = _to_tensor(x, arg)
        self.y = None if y is None else _to_tensor(y, "y")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"y: expected {len(self.x)} samples to match x, got {len(self.y)}")

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        return self.x[idx], None if self.y is None else self.y[idx]


class _DatasetData:
    """A ``torch.utils.data.Dataset`` of ``(x, y)`` pairs (or bare ``x`` for predict)."""

    def __init__(self, ds, with_y=True):
        self.ds, self.with_y = ds, with_y

    def __len__(self):
        return len(self.ds)

    def batch(self, idx):
        items = [self.ds[int(i)] for i in idx]
        if self.with_y:
            if not all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items):
                raise ValueError("x: a Dataset given to fit/evaluate must yield (x, y) pairs")
            xs, ys = zip(*items)
            return torch.stack([_to_tensor(v, "x") for v in xs]), torch.stack([_to_tensor(v, "y") for v in ys])
        xs = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
        return torch.stack([_to_tensor(v, "x") for v in xs]), None


class _Subset:
    def __init__(self, data, indices):
        self.data, self.indices = data, indices

    def __len__(self):
        return len(self.indices)

    def batch(self, idx):
        return self.data.batch(self.indices[idx])


def _to_tensor(a, arg) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError(f"{arg}: expected a numeric array, got an object array")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t  # floating inputs take the model's dtype batch by batch (_prepare)


def _as_data(x, y, arg="x", need_y=True):
    if isinstance(x, torch.utils.data.Dataset) and not isinstance(x, torch.utils.data.IterableDataset):
        if y is not None:
            raise ValueError("y: give y only with array inputs; a Dataset yields (x, y) pairs itself")
        return _DatasetData(x, with_y=need_y)
    if isinstance(x, torch.utils.data.IterableDataset):
        raise TypeError(f"{arg}: an IterableDataset has no length to batch and shuffle; pass a map-style Dataset")
    if need_y and y is None:
        raise ValueError(f"y: targets are required with array {arg}")
    return _Arrays(x, y, arg)


# ------------------------------------------------------------------- history


class History(Callback):
    """What ``fit`` returns: ``history.history`` maps each logged name to a per-epoch list.

    >>> history.history
    {'loss': [0.9, 0.5], 'accuracy': [0.7, 0.85], 'val_loss': [0.6, 0.4], 'val_accuracy': [0.8, 0.9]}
    """

    def __init__(self, history: dict[str, list[float]] | None = None):
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: list[int] = []
        self.params: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))


# --------------------------------------------------------------------- mixin


class TrainingMixin:
    """``compile``/``fit``/``evaluate``/``predict`` for a ``torch.nn.Module`` mapping x -> y_pred."""

    optimizer = None
    loss = None
    stop_training = False

    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=None,
                clipnorm: float | None = None, clipvalue: float | None = None, learning_rate: float | None = None):
        """Choose the optimizer, loss and metrics.

        optimizer: "adam", "rmsprop", "sgd" (Keras's defaults; ``learning_rate``
            overrides the rate) or a ``torch.optim.Optimizer`` over this model's parameters.
        loss: a name in ``LOSSES``, a ``Loss`` (e.g. ``SparseCategoricalCrossentropy(from_logits=True)``)
            or a callable ``(y_true, y_pred) -> scalar tensor``.
        metrics: names among "accuracy", "mse", "mae".
        clipnorm / clipvalue: clip gradients by global norm / elementwise before each step.
        """
        # Everything is checked before anything is set, so a failed compile leaves the model as it was.
        if not any(True for _ in self.parameters()):
            raise ValueError("compile: the model has no parameters yet; give the first layer input_shape=(time, features)")
        for arg, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("learning_rate", learning_rate)):
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
                raise ValueError(f"{arg}: expected a positive number or None, got {v!r}")
        if isinstance(metrics, str):
            raise TypeError(f"metrics: expected a list of names, got the string {metrics!r}; write [{metrics!r}]")
        loss_fn = get_loss(loss)
        metric_names = ["accuracy" if n == "acc" else n for n in (metrics or [])]
        metric_fns = {n: _metric(n, loss_fn) for n in metric_names}
        if isinstance(optimizer, str):
            key = optimizer.lower()
            if key not in _OPTIMIZERS:
                raise ValueError(f"optimizer: unknown optimizer {optimizer!r}; expected one of {sorted(_OPTIMIZERS)}")
            opt = _OPTIMIZERS[key](self.parameters(), learning_rate)
        elif isinstance(optimizer, torch.optim.Optimizer):
            opt, key = optimizer, type(optimizer).__name__.lower()
        else:
            raise TypeError(f"optimizer: expected 'adam', 'rmsprop', 'sgd' or a torch optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.optimizer_name = opt, key
        self.clipnorm, self.clipvalue = clipnorm, clipvalue
        self.loss, self.metric_names, self._metrics = loss_fn, metric_names, metric_fns

    # ---- hooks for models with several inputs or outputs (rnnkit.functional.Model overrides them)
    def _make_data(self, x, y, arg="x", need_y=True):
        return _as_data(x, y, arg, need_y)

    def _batch_len(self, xb) -> int:
        return len(xb)

    def _outputs_to_cpu(self, y_pred):
        return y_pred.cpu()

    def _concat_outputs(self, outs) -> np.ndarray:
        return torch.cat(outs).numpy()
    # ---- end of the hooks

    # ------------------------------------------------------------- helpers
    def _require_compiled(self, what: str):
        if self.loss is None:
            raise ValueError(f"{what}: call compile(optimizer, loss, metrics) first")

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.float32

    def _prepare(self, x: torch.Tensor, y: torch.Tensor | None):
        dev = self._device()
        x = x.to(dev)
        if x.is_floating_point():
            x = x.to(self._dtype())
        return x, None if y is None else y.to(dev)

    def _scores(self, y: torch.Tensor, y_pred: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"loss": self.loss(y, y_pred)}
        for name, fn in self._metrics.items():
            out[name] = fn(y, y_pred)
        return out

    def _get_shuffle_generator(self) -> torch.Generator:
        if getattr(self, "shuffle_generator", None) is None:
            # Seeded from the global generator: torch.manual_seed() fixes the shuffle order too.
            self.shuffle_generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        return self.shuffle_generator

    def _run_epoch_eval(self, data, batch_size) -> dict[str, float]:
        totals: dict[str, float] = {}
        n = len(data)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for start in range(0, n, batch_size):
                    xb, yb = self._prepare(*data.batch(torch.arange(start, min(start + batch_size, n))))
                    scores = self._scores(yb, self(xb))
                    for k, v in scores.items():
                        totals[k] = totals.get(k, 0.0) + float(v) * self._batch_len(xb)
        finally:
            self.train(was_training)
        return {k: v / max(n, 1) for k, v in totals.items()}

    # ----------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size: int = 32, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, initial_epoch: int = 0
            ) -> History:
        """Train for ``epochs`` epochs (counting from ``initial_epoch``) and return a ``History``.

        validation_split: the last fraction of the samples (before shuffling,
            as in Keras) is held out; validation_data: ``(x_val, y_val)`` or a Dataset.
        verbose: 0 silent; 1 a progress bar on a terminal (one line per epoch
            otherwise); 2 one line per epoch; "auto" = 1.
        """
        self._require_compiled("fit")
        batch_size = _check_int(batch_size, "batch_size", 1)
        epochs = _check_int(epochs, "epochs", 0)
        initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
        data = self._make_data(x, y)
        if validation_data is not None and validation_split:
            raise ValueError("validation_split: give validation_split or validation_data, not both")
        val = None
        if validation_data is not None:
            if isinstance(validation_data, torch.utils.data.Dataset):
                val = self._make_data(validation_data, None, "validation_data")
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                val = self._make_data(validation_data[0], validation_data[1], "validation_data")
            else:
                raise ValueError("validation_data: expected (x_val, y_val) or a Dataset")
        elif validation_split:
            if not 0.0 < float(validation_split) < 1.0:
                raise ValueError(f"validation_split: expected a fraction in (0, 1), got {validation_split!r}")
            n_val = int(len(data) * float(validation_split))
            if n_val == 0 or n_val == len(data):
                raise ValueError(f"validation_split: {validation_split} of {len(data)} samples leaves an empty split")
            split = len(data) - n_val
            data, val = _Subset(data, torch.arange(split)), _Subset(data, torch.arange(split, len(data)))
        if len(data) == 0:
            raise ValueError("x: no training samples")

        history = History()
        cbs: list[Callback] = [history, *(callbacks or [])]
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected rnnkit.callbacks.Callback objects, got {type(cb).__name__}")
            cb.set_model(self)
        history.params = {"epochs": epochs, "batch_size": batch_size, "samples": len(data)}
        mode = _progress_mode(verbose)
        self.stop_training = False
        gen = self._get_shuffle_generator()
        ctx = distributed.active()
        net, sampler = self, None
        if ctx is not None:
            # Each process takes B/N samples of every global batch B; see rnnkit.distributed.
            batch_size = distributed.local_batch_size(batch_size, ctx)
            seed = distributed.broadcast_int(gen.initial_seed(), ctx)
            sampler = distributed.sampler(len(data), seed, shuffle, ctx)
            net = distributed.wrap(self, ctx)
            if ctx.rank:
                mode = "silent"
        for cb in cbs:
            cb.on_train_begin()
        self.train()
        try:
            for epoch in range(initial_epoch, epochs):
                for cb in cbs:
                    cb.on_epoch_begin(epoch)
                start = time.perf_counter()
                if sampler is not None:
                    sampler.set_epoch(epoch)
                    order = torch.tensor(list(sampler), dtype=torch.long)
                else:
                    order = torch.randperm(len(data), generator=gen) if shuffle else torch.arange(len(data))
                logs = self._train_epoch(data, order, batch_size, cbs, mode, epoch, epochs, net, ctx)
                if val is not None:
                    logs.update({f"val_{k}": v for k, v in self._run_epoch_eval(val, batch_size).items()})
                if mode != "silent":
                    shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
                    print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.1f}s - {shown}", flush=True)
                for cb in cbs:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            self.eval()
        for cb in cbs:
            cb.on_train_end()
        return history

    def _train_epoch(self, data, order, batch_size, cbs, mode, epoch, epochs, net, ctx) -> dict[str, float]:
        """One pass over ``order``; ``net`` is the model, or its DistributedDataParallel wrapper when ``ctx`` is set."""
        self.train()
        totals: dict[str, float] = {}
        seen = 0
        steps = math.ceil(len(order) / batch_size)
        bar = None
        if mode == "bar":
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", leave=False, file=sys.stderr)
        try:
            for step in range(steps):
                xb, yb = self._prepare(*data.batch(order[step * batch_size:(step + 1) * batch_size]))
                self.optimizer.zero_grad(set_to_none=True)
                scores = self._scores(yb, net(xb))
                scores["loss"].backward()
                if self.clipvalue is not None:
                    torch.nn.utils.clip_grad_value_(self.parameters(), self.clipvalue)
                if self.clipnorm is not None:
                    torch.nn.utils.clip_grad_norm_(self.parameters(), self.clipnorm)
                self.optimizer.step()
                n = self._batch_len(xb)
                seen += n
                batch_logs = {k: float(v.detach()) for k, v in scores.items()}
                if ctx is not None:  # every process sees the same numbers, so callbacks decide alike
                    batch_logs = distributed.mean_across(batch_logs, ctx)
                for k, v in batch_logs.items():
                    totals[k] = totals.get(k, 0.0) + v * n
                for cb in cbs:
                    cb.on_train_batch_end(step, batch_logs)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{totals['loss'] / seen:.4f}", refresh=False)
                if self.stop_training:
                    break
        finally:
            if bar is not None:
                bar.close()
        return {k: v / max(seen, 1) for k, v in totals.items()}

    # ------------------------------------------------------ evaluate/predict
    def evaluate(self, x=None, y=None, batch_size: int = 32, verbose=0, return_dict: bool = False):
        """Loss and metrics over all samples in eval mode (no dropout), as Keras returns them.

        The loss alone when the model has no metrics, else ``[loss, *metrics]``
        (``loss, acc = model.evaluate(x, y)``); ``return_dict=True`` gives
        ``{"loss": ..., "accuracy": ...}``.
        """
        self._require_compiled("evaluate")
        scores = self._run_epoch_eval(self._make_data(x, y), _check_int(batch_size, "batch_size", 1))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
        if return_dict:
            return scores
        values = list(scores.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int = 32) -> np.ndarray:
        """The model's outputs for ``x`` in eval mode, as a numpy array (batched, no gradients)."""
        data = self._make_data(x, None, need_y=False)
        batch_size = _check_int(batch_size, "batch_size", 1)
        outs = []
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(data), batch_size):
                    xb, _ = self._prepare(*data.batch(torch.arange(start, min(start + batch_size, len(data)))))
                    outs.append(self._outputs_to_cpu(self(xb)))
        finally:
            self.train(was_training)
        if not outs:
            raise ValueError("x: no samples to predict")
        return self._concat_outputs(outs)


def _check_int(value, arg, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _progress_mode(verbose) -> str:
    if verbose in (0, False):
        return "silent"
    if verbose in (1, "auto", True):
        return "bar" if sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None else "line"
    if verbose == 2:
        return "line"
    raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
