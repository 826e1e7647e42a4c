"""Keras's training API for ``Sequential``: ``compile``, ``fit``, ``evaluate``, ``predict``.

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1)
    history.history["val_accuracy"]          # one number per epoch
    loss, accuracy = model.evaluate(x_test, y_test)
    probs = model.predict(x_test)            # numpy array

Inputs are numpy arrays, tensors, or a ``torch.utils.data.Dataset`` whose
items are ``(x, y)`` pairs (then ``y`` is omitted). Losses and metrics live
in ``rnnkit.losses`` (probabilities versus logits: see there), the
optimizers built by name in ``rnnkit.optimizers``.

Repeatability: ``fit`` shuffles with its own ``torch.Generator``
(``model.shuffle_generator``), seeded from torch's global generator on first
use, so ``torch.manual_seed(s)`` before building the model makes a CPU run
repeatable; ``rnnkit.checkpoint`` saves and restores that generator with the
RNG states for exact resumption (``fit(..., initial_epoch=k)``).

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
from dataclasses import dataclass

import numpy as np
import torch

from . import distributed
from .callbacks import Callback
from .losses import get_loss, get_metric
from .ops import first_parameter
from .optimizers import get_optimizer


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


# ----------------------------------------------------------------- fit's parts


@dataclass
class _Run:
    """The settings of one ``fit`` call, fixed before its first epoch."""

    data: object  # the training samples (_Arrays, _DatasetData or _Subset)
    val: object | None  # the validation samples, or None
    batch_size: int  # per process: the global batch divided among the processes (distribute)
    epochs: int
    shuffle: bool
    mode: str  # progress: "silent", "line" or "bar"
    callbacks: list[Callback]
    generator: torch.Generator  # the model's shuffle generator
    net: torch.nn.Module  # what computes the outputs: the model, or its DistributedDataParallel wrapper
    ctx: distributed.Context | None = None
    sampler: torch.utils.data.DistributedSampler | None = None

    def distribute(self, model, ctx) -> None:
        """Train on one process of several: each takes B/N samples of every global batch B; see rnnkit.distributed."""
        self.ctx = ctx
        self.batch_size = distributed.local_batch_size(self.batch_size, ctx)
        seed = distributed.broadcast_int(self.generator.initial_seed(), ctx)
        self.sampler = distributed.sampler(len(self.data), seed, self.shuffle, ctx)
        self.net = distributed.wrap(model, ctx)
        if ctx.rank:
            self.mode = "silent"

    def order(self, epoch: int) -> torch.Tensor:
        """The indices of the samples this process trains on in ``epoch``, in training order."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            return torch.tensor(list(self.sampler), dtype=torch.long)
        n = len(self.data)
        return torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)


def _split_validation(data, validation_split, validation_data):
    """``(train, val)``: ``validation_data`` as data, or the last ``validation_split`` of ``data`` held out."""
    if validation_data is not None and validation_split:
        raise ValueError("validation_split: give validation_split or validation_data, not both")
    val = None
    if validation_data is not None:
        if isinstance(validation_data, torch.utils.data.Dataset):
            val = _as_data(validation_data, None, "validation_data")
        elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            val = _as_data(validation_data[0], validation_data[1], "validation_data")
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
    return data, val


def _attach(model, cbs: list) -> list[Callback]:
    """``cbs``, each checked to be a ``Callback`` and given the model."""
    for cb in cbs:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks: expected rnnkit.callbacks.Callback objects, got {type(cb).__name__}")
        cb.set_model(model)
    return cbs


def _progress_bar(steps: int, desc: str):
    from tqdm import tqdm  # optional: only on a terminal with tqdm installed (_progress_mode)

    return tqdm(total=steps, desc=desc, leave=False, file=sys.stderr)


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
        loss: a name in ``rnnkit.losses.LOSSES``, a ``Loss`` (e.g. ``SparseCategoricalCrossentropy(from_logits=True)``)
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
        metric_fns = {n: get_metric(n, loss_fn) for n in metric_names}
        opt, key = get_optimizer(optimizer, self.parameters(), learning_rate)
        self.optimizer, self.optimizer_name = opt, key
        self.clipnorm, self.clipvalue = clipnorm, clipvalue
        self.loss, self.metric_names, self._metrics = loss_fn, metric_names, metric_fns

    # ------------------------------------------------------------- helpers
    def _require_compiled(self, what: str):
        if self.loss is None:
            raise ValueError(f"{what}: call compile(optimizer, loss, metrics) first")

    def _device(self) -> torch.device:
        p = first_parameter(self)
        return p.device if p is not None else torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        p = first_parameter(self)
        return p.dtype if p is not None else torch.float32

    def _prepare(self, x: torch.Tensor, y: torch.Tensor | None):
        dev = self._device()
        x = x.to(dev)
        if x.is_floating_point():
            x = x.to(self._dtype())
        return x, None if y is None else y.to(dev)

    def _scores(self, y: torch.Tensor, y_pred: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"loss": self.loss(y, y_pred)}
        # ---- regularizers (kcontract, issue 12): Keras adds model.losses to the loss it trains and reports ----
        penalties = self.losses
        if penalties:
            out["loss"] = out["loss"] + torch.stack([p.to(out["loss"].dtype) for p in penalties]).sum()
        # ---- end regularizers ----
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
                        totals[k] = totals.get(k, 0.0) + float(v) * len(xb)
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
        data, val = _split_validation(_as_data(x, y), validation_split, validation_data)
        history = History()
        cbs = _attach(self, [history, *(callbacks or [])])
        history.params = {"epochs": epochs, "batch_size": batch_size, "samples": len(data)}
        run = _Run(data, val, batch_size, epochs, shuffle, _progress_mode(verbose), cbs,
                   generator=self._get_shuffle_generator(), net=self)
        self.stop_training = False
        ctx = distributed.active()
        if ctx is not None:
            run.distribute(self, ctx)
        for cb in cbs:
            cb.on_train_begin()
        self.train()
        try:
            for epoch in range(initial_epoch, epochs):
                self._fit_epoch(run, epoch)
                if self.stop_training:
                    break
        finally:
            self.eval()
        for cb in cbs:
            cb.on_train_end()
        return history

    def _fit_epoch(self, run: _Run, epoch: int) -> None:
        """One epoch of ``fit``: train, validate, report, and tell the callbacks."""
        for cb in run.callbacks:
            cb.on_epoch_begin(epoch)
        start = time.perf_counter()
        logs = self._train_epoch(run, run.order(epoch), epoch)
        if run.val is not None:
            logs.update({f"val_{k}": v for k, v in self._run_epoch_eval(run.val, run.batch_size).items()})
        if run.mode != "silent":
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{run.epochs} - {time.perf_counter() - start:.1f}s - {shown}", flush=True)
        for cb in run.callbacks:
            cb.on_epoch_end(epoch, logs)

    def _train_epoch(self, run: _Run, order: torch.Tensor, epoch: int) -> dict[str, float]:
        """One pass over the samples ``order``, a step per batch; the mean of each batch log, weighted by size."""
        self.train()
        totals: dict[str, float] = {}
        seen = 0
        steps = math.ceil(len(order) / run.batch_size)
        bar = _progress_bar(steps, f"Epoch {epoch + 1}/{run.epochs}") if run.mode == "bar" else None
        try:
            for step in range(steps):
                xb, yb = self._prepare(*run.data.batch(order[step * run.batch_size:(step + 1) * run.batch_size]))
                batch_logs = self._train_step(run, xb, yb)
                seen += len(xb)
                for k, v in batch_logs.items():
                    totals[k] = totals.get(k, 0.0) + v * len(xb)
                for cb in run.callbacks:
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

    def _train_step(self, run: _Run, xb: torch.Tensor, yb: torch.Tensor) -> dict[str, float]:
        """One optimizer step on a batch (through ``run.net``, the model or its DDP wrapper); the batch's logs."""
        self.optimizer.zero_grad(set_to_none=True)
        scores = self._scores(yb, run.net(xb))
        scores["loss"].backward()
        if self.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(self.parameters(), self.clipvalue)
        if self.clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.clipnorm)
        self.optimizer.step()
        self.apply_constraints()  # kcontract, issue 12: Keras's kernel/recurrent/bias constraints after each step
        batch_logs = {k: float(v.detach()) for k, v in scores.items()}
        if run.ctx is not None:  # every process sees the same numbers, so callbacks decide alike
            batch_logs = distributed.mean_across(batch_logs, run.ctx)
        return batch_logs

    # ------------------------------------------------------ evaluate/predict
    def evaluate(self, x=None, y=None, batch_size: int = 32, verbose=0, return_dict: bool = False):
        """Loss and metrics over all samples in eval mode (no dropout), as Keras returns them.

        The loss alone when the model has no metrics, else ``[loss, *metrics]``
        (``loss, acc = model.evaluate(x, y)``); ``return_dict=True`` gives
        ``{"loss": ..., "accuracy": ...}``.
        """
        self._require_compiled("evaluate")
        scores = self._run_epoch_eval(_as_data(x, y), _check_int(batch_size, "batch_size", 1))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
        if return_dict:
            return scores
        values = list(scores.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int = 32) -> np.ndarray:
        """The model's outputs for ``x`` in eval mode, as a numpy array (batched, no gradients)."""
        data = _as_data(x, None, need_y=False)
        batch_size = _check_int(batch_size, "batch_size", 1)
        outs = []
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(data), batch_size):
                    xb, _ = self._prepare(*data.batch(torch.arange(start, min(start + batch_size, len(data)))))
                    outs.append(self(xb).cpu())
        finally:
            self.train(was_training)
        if not outs:
            raise ValueError("x: no samples to predict")
        return torch.cat(outs).numpy()


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
