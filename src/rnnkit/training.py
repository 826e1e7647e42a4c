"""Keras's training API for ``Sequential``: ``compile``, ``fit``, ``evaluate``, ``predict``.

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1)
    history.history["val_accuracy"]          # one number per epoch
    loss, accuracy = model.evaluate(x_test, y_test)
    probs = model.predict(x_test)            # numpy array

Inputs are numpy arrays or tensors (cast as Keras casts them), a
``torch.utils.data.Dataset`` of ``(x, y[, sample_weight])`` items, or a
``DataLoader``/generator/iterable of such batches (then ``y`` is omitted).
``sample_weight`` and ``class_weight`` weight the loss as Keras 3 does;
``train_on_batch``/``test_on_batch``/``predict_on_batch`` work on one batch. Losses and metrics live
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
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parameter import UninitializedParameter

from . import distributed
from .callbacks import Callback
from .kernels.threads import model_work, one_thread_if_small
from .losses import get_loss, get_metric
from .mixed_precision import for_loss
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
    if dev.type not in ("cpu", "cuda", "mps"):  # issue 15: "meta" has no data and failed later with a traceback
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for CUDA, but torch sees no CUDA device")
    return dev


# ---------------------------------------------------------------------- data
# Every data source gives batches as triples (x, y, sample_weight); y and
# sample_weight may be None. Arrays and map-style Datasets are batched here
# (shuffled by index); a DataLoader or a generator yields ready batches.


class _Arrays:
    """Samples held as tensors; batches are index selections."""

    def __init__(self, x, y, arg="x", sample_weight=None):
        self.x = _to_tensor(x, arg)
        self.y = None if y is None else _to_tensor(y, "y")
        self.sw = None if sample_weight is None else _to_tensor(sample_weight, "sample_weight")
        for name, t in (("y", self.y), ("sample_weight", self.sw)):
            if t is not None and len(t) != len(self.x):
                raise ValueError(f"{name}: expected {len(self.x)} samples to match x, got {len(t)}")

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        return self.x[idx], None if self.y is None else self.y[idx], None if self.sw is None else self.sw[idx]


def _split_item(item, with_y: bool, where: str):
    """``(x, y, sample_weight)`` of one Dataset item or one generator batch."""
    if isinstance(item, (tuple, list)) and len(item) in ((2, 3) if with_y else (1, 2, 3)):
        x, y, sw = (*item, None, None)[:3]
        return x, (y if with_y else None), (sw if with_y else None)
    if not with_y and not isinstance(item, (tuple, list, dict)):
        return item, None, None
    got = f"a {type(item).__name__}" + (f" of {len(item)}" if isinstance(item, (tuple, list)) else "")
    raise ValueError(f"{where}: expected (x, y) or (x, y, sample_weight), got {got}")


class _DatasetData:
    """A ``torch.utils.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)`` items (or bare ``x`` for predict)."""

    def __init__(self, ds, with_y=True):
        self.ds, self.with_y = ds, with_y

    def __len__(self):
        return len(self.ds)

    def batch(self, idx):
        items = [_split_item(self.ds[int(i)], self.with_y, "x: a Dataset item") for i in idx]
        xs, ys, sws = zip(*items)

        def stack(values, arg):
            if any(v is None for v in values):
                return None
            return torch.stack([_to_tensor(v, arg) for v in values])

        return stack(xs, "x"), stack(ys, "y"), stack(sws, "sample_weight")


class _Subset:
    def __init__(self, data, indices):
        self.data, self.indices = data, indices

    def __len__(self):
        return len(self.indices)

    def batch(self, idx):
        return self.data.batch(self.indices[idx])


class _Batches:
    """Ready batches from a ``DataLoader``, a generator or any iterable: nothing is batched or shuffled here.

    Without ``steps`` an epoch is one pass over the source. With ``steps``
    (``steps_per_epoch``) an epoch is that many batches and the next epoch
    goes on where it stopped, as in Keras; a source that can be iterated
    again (a DataLoader, a list) then starts over, a generator that is used
    up ends training with a warning.
    """

    def __init__(self, source, with_y=True):
        self.source, self.with_y = source, with_y
        self._it = None
        self.ran_out = False

    def known_len(self) -> int | None:
        try:
            return len(self.source)
        except TypeError:
            return None

    def _items(self, steps: int | None):
        if steps is None:  # one fresh pass
            self._it = None
            yield from self.source
            return
        count, restarted = 0, False
        while count < steps:
            if self._it is None:
                self._it = iter(self.source)
            try:
                item = next(self._it)
            except StopIteration:
                self._it = None
                if restarted or hasattr(self.source, "__next__"):  # empty, or a spent generator: no more data
                    return
                restarted = True  # a DataLoader or a list starts over
                continue
            count, restarted = count + 1, False
            yield item

    def epoch(self, steps: int | None):
        """The batches of one epoch as (x, y, sample_weight) tensors; ``ran_out`` tells when there were none."""
        count = 0
        for item in self._items(steps):
            x, y, sw = _split_item(item, self.with_y, "x: each batch")
            count += 1
            yield (_to_tensor(x, "x"), None if y is None else _to_tensor(y, "y"),
                   None if sw is None else _to_tensor(sw, "sample_weight"))
        self.ran_out = count == 0 or (steps is not None and count < steps)


def _to_tensor(a, arg) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError(f"{arg}: expected a numeric array, got an object array")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t  # inputs take the model's dtype batch by batch (_prepare)


_ARRAYS = (np.ndarray, torch.Tensor, list, tuple)


def _is_batches(x) -> bool:
    """A DataLoader, a generator or another iterable of batches (not an array, a list or a Dataset)."""
    if isinstance(x, (*_ARRAYS, str, bytes, dict)) or isinstance(x, torch.utils.data.Dataset):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def _as_data(x, y, arg="x", need_y=True, sample_weight=None):
    if isinstance(x, torch.utils.data.IterableDataset):
        raise TypeError(f"{arg}: an IterableDataset yields single samples; batch it with "
                        "torch.utils.data.DataLoader(dataset, batch_size=...) and pass the DataLoader")
    if isinstance(x, torch.utils.data.Dataset) or _is_batches(x):
        if y is not None or sample_weight is not None:
            given = "y" if y is not None else "sample_weight"
            raise ValueError(f"{given}: give {given} only with array {arg}; a {type(x).__name__} yields "
                             "(x, y[, sample_weight]) itself")
        if isinstance(x, torch.utils.data.Dataset):
            return _DatasetData(x, with_y=need_y)
        return _Batches(x, with_y=need_y)
    if x is None or not isinstance(x, _ARRAYS) and not hasattr(x, "__array__"):
        raise TypeError(
            f"{arg}: expected a numpy array, a tensor, a torch Dataset, a DataLoader or an iterable of "
            f"(x, y[, sample_weight]) batches, got {type(x).__name__}"
        )
    if need_y and y is None:
        raise ValueError(f"y: targets are required with array {arg}")
    return _Arrays(x, y, arg, sample_weight)


def _class_weights(class_weight, y: torch.Tensor) -> torch.Tensor:
    """One weight per sample, ``class_weight[class of y]`` (1.0 for classes not listed), as Keras does.

    The class is ``y`` itself for class ids (batch,) or (batch, 1), the
    argmax for one-hot targets (batch, classes).
    """
    if y.dim() > 2:
        raise ValueError(f"class_weight: supported for targets (batch,) or (batch, classes), got shape {tuple(y.shape)}; "
                         "for per-step targets give sample_weight instead")
    if y.dim() == 2:
        y = y.argmax(-1) if y.shape[-1] != 1 else y.squeeze(-1)
    ids = y.to(torch.float64).round().long() if y.dtype != torch.bool else y.long()
    w = torch.ones(len(ids), dtype=torch.float32)
    for cls, weight in class_weight.items():
        w[ids == cls] = float(weight)
    return w


def _check_class_weight(class_weight):
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict) or not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) and isinstance(v, (int, float, np.floating))
        and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for k, v in class_weight.items()
    ):
        raise ValueError(f"class_weight: expected a dict {{class id (int): weight >= 0}}, got {str(class_weight)[:80]}")
    return dict(class_weight)


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
    steps: int | None = None  # steps_per_epoch: None = one pass over the data
    val_steps: int | None = None  # validation_steps: None = all the validation data
    class_weight: dict | None = None
    ctx: distributed.Context | None = None
    sampler: torch.utils.data.DistributedSampler | None = None

    def distribute(self, model, ctx) -> None:
        """Train on one process of several: each takes B/N samples of every global batch B; see rnnkit.distributed."""
        if isinstance(self.data, _Batches):
            raise TypeError("x: training on several processes takes arrays or a map-style Dataset (each process "
                            f"takes its share of every batch), got a {type(self.data.source).__name__}")
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

    def batches(self, epoch: int):
        """``(batches, count)`` for ``epoch``: an iterator of (x, y, sample_weight) and its length (None: unknown)."""
        if isinstance(self.data, _Batches):
            count = self.steps if self.steps is not None else self.data.known_len()
            return self.data.epoch(self.steps), count
        order, bs = self.order(epoch), self.batch_size
        count = math.ceil(len(order) / bs)
        if self.steps is not None:
            count = min(count, self.steps)
        return (self.data.batch(order[i * bs:(i + 1) * bs]) for i in range(count)), count


def _split_validation(data, validation_split, validation_data, as_data=_as_data):
    """``(train, val)``: ``validation_data`` made data by ``as_data``, or the last ``validation_split`` of ``data`` held out."""
    if validation_data is not None and validation_split:
        raise ValueError("validation_split: give validation_split or validation_data, not both")
    val = None
    if validation_data is not None:
        if isinstance(validation_data, torch.utils.data.Dataset) or _is_batches(validation_data):
            val = as_data(validation_data, None, "validation_data")
        elif isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
            val = as_data(*validation_data[:2], "validation_data", sample_weight=(*validation_data, None)[2])
        else:
            raise ValueError("validation_data: expected (x_val, y_val), (x_val, y_val, sample_weight), "
                             "a Dataset or a DataLoader")
    elif validation_split:
        if isinstance(data, _Batches):
            raise ValueError(f"validation_split: needs arrays or a Dataset to split; x is a {type(data.source).__name__}, "
                             "give validation_data instead")
        if not 0.0 < float(validation_split) < 1.0:
            raise ValueError(f"validation_split: expected a fraction in (0, 1), got {validation_split!r}")
        n_val = int(len(data) * float(validation_split))
        if n_val == 0 or n_val == len(data):
            raise ValueError(f"validation_split: {validation_split} of {len(data)} samples leaves an empty split")
        split = len(data) - n_val
        data, val = _Subset(data, torch.arange(split)), _Subset(data, torch.arange(split, len(data)))
    if not isinstance(data, _Batches) and len(data) == 0:
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
    takes_global_policy = False  # a model's layers run under their own dtype policies (rnnkit.mixed_precision)

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

    # ---- hooks for models with several inputs or outputs (rnnkit.functional.Model overrides them)
    def _make_data(self, x, y, arg="x", need_y=True, sample_weight=None):
        return _as_data(x, y, arg, need_y, sample_weight)

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
        p = first_parameter(self)
        return p.device if p is not None else torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        p = first_parameter(self)
        return p.dtype if p is not None else torch.float32

    def _takes_ids(self) -> bool:
        """Whether the first layer reads integer ids (an Embedding), so integer inputs stay integers."""
        return False

    def _prepare(self, x: torch.Tensor, y: torch.Tensor | None, sw: torch.Tensor | None = None, class_weight=None):
        """A batch on the model's device, cast as Keras casts it.

        Inputs become the model's float dtype (bool and integer features too,
        unless the first layer reads ids); bool targets become floats, so
        one-hot bool targets work with every loss and metric. ``class_weight``
        turns into per-sample weights (multiplying any given ones).
        """
        dev, dtype = self._device(), self._dtype()
        x = x.to(dev)
        if x.is_floating_point() or (not x.is_complex() and not self._takes_ids()):
            x = x.to(dtype)
        if y is not None and class_weight is not None:
            cw = _class_weights(class_weight, y)
            sw = cw if sw is None else sw.float() * cw.reshape(-1, *[1] * (sw.dim() - 1))
        if y is not None:
            y = y.to(dev)
            if y.dtype == torch.bool:
                y = y.to(dtype)
        if sw is not None:
            sw = sw.to(device=dev, dtype=dtype)
        return x, y, sw

    def _scores(self, y: torch.Tensor, y_pred: torch.Tensor, sw: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch's loss (weighted by ``sw``, Keras's sum_over_batch_size) and metrics (unweighted, as Keras's ``metrics``)."""
        out = {"loss": self.loss(y, y_pred) if sw is None else self.loss(y, y_pred, sample_weight=sw)}
        penalties = self.losses  # regularizers: Keras adds model.losses to the loss it trains and reports
        if penalties:
            out["loss"] = out["loss"] + torch.stack([p.to(out["loss"].dtype) for p in penalties]).sum()
        for name, fn in self._metrics.items():
            out[name] = fn(y, y_pred)
        return out

    def _get_shuffle_generator(self) -> torch.Generator:
        if getattr(self, "shuffle_generator", None) is None:
            # Seeded from the global generator: torch.manual_seed() fixes the shuffle order too.
            self.shuffle_generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        return self.shuffle_generator

    def _eval_batches(self, data, batch_size: int, steps: int | None = None):
        """The (x, y, sample_weight) batches of an evaluation pass, in order (at most ``steps``)."""
        if isinstance(data, _Batches):
            return data.epoch(steps)
        n = len(data)
        count = math.ceil(n / batch_size) if steps is None else min(steps, math.ceil(n / batch_size))
        return (data.batch(torch.arange(i * batch_size, min((i + 1) * batch_size, n))) for i in range(count))

    def _one_thread_if_small(self, batch_size: int):
        """One torch thread for the loop when the model is small (``kernels.threads``): each of its ops is too
        small to gain from the thread pool, and a busy machine makes every fork-join wait. A model whose
        weights are not made yet (a lazy first epoch) keeps torch's threads."""
        if any(isinstance(p, UninitializedParameter) for p in self.parameters()):
            return nullcontext(False)
        return one_thread_if_small(model_work(self, batch_size))

    def _run_epoch_eval(self, data, batch_size, steps: int | None = None) -> dict[str, float]:
        """Loss and metrics over the batches, each batch's value weighted by its size (Keras's running mean)."""
        totals: dict[str, float] = {}
        seen = 0
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), self._one_thread_if_small(batch_size):
                for batch in self._eval_batches(data, batch_size, steps):
                    xb, yb, swb = self._prepare(*batch)
                    scores = self._scores(yb, for_loss(self(xb)), swb)
                    seen += self._batch_len(xb)
                    for k, v in scores.items():
                        totals[k] = totals.get(k, 0.0) + float(v) * self._batch_len(xb)
        finally:
            self.train(was_training)
        if not seen:
            raise ValueError("x: no batches to evaluate (an empty input, or a generator already used up)")
        return {k: v / seen for k, v in totals.items()}

    # ----------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None) -> History:
        """Train for ``epochs`` epochs (counting from ``initial_epoch``) and return a ``History``.

        x, y: arrays or tensors; or, with y omitted, a map-style Dataset of
            ``(x, y[, sample_weight])`` items, a ``DataLoader``, a generator or
            any iterable of such batches (then ``batch_size`` and ``shuffle`` are
            the loader's business). Bool and integer features become floats
            (except token ids for a first ``Embedding``), as Keras casts them.
        batch_size: samples per step for arrays and Datasets (default 32).
        validation_split: the last fraction of the samples (before shuffling,
            as in Keras) is held out; validation_data: ``(x_val, y_val)``,
            ``(x_val, y_val, sample_weight)``, a Dataset or a DataLoader.
        sample_weight: one weight per sample (or per sample and step); the
            loss becomes ``sum(w * loss) / count`` per batch, Keras 3's
            "sum_over_batch_size". Metrics stay unweighted, as Keras's ``metrics``.
        class_weight: ``{class id: weight}``, turned into per-sample weights
            from the targets (class ids, or the argmax of one-hot targets).
        steps_per_epoch: batches per epoch (None: one pass over the data). A
            generator goes on where the last epoch stopped; when it runs out,
            training stops with a warning, as in Keras. validation_steps: the
            batches of validation data used each epoch.
        verbose: 0 silent; 1 a progress bar on a terminal (one line per epoch
            otherwise); 2 one line per epoch; "auto" = 1.
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else _check_int(batch_size, "batch_size", 1)
        epochs = _check_int(epochs, "epochs", 0)
        initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
        steps = None if steps_per_epoch is None else _check_int(steps_per_epoch, "steps_per_epoch", 1)
        val_steps = None if validation_steps is None else _check_int(validation_steps, "validation_steps", 1)
        class_weight = _check_class_weight(class_weight)
        if class_weight is not None and sample_weight is not None:
            raise ValueError("class_weight: give class_weight or sample_weight, not both (as in Keras)")
        data, val = _split_validation(self._make_data(x, y, sample_weight=sample_weight), validation_split, validation_data,
                                      self._make_data)
        history = History()
        cbs = _attach(self, [history, *(callbacks or [])])
        history.params = {"epochs": epochs, "batch_size": batch_size, "steps": steps}
        if not isinstance(data, _Batches):
            history.params["samples"] = len(data)
        run = _Run(data, val, batch_size, epochs, shuffle, _progress_mode(verbose), cbs,
                   generator=self._get_shuffle_generator(), net=self, steps=steps, val_steps=val_steps,
                   class_weight=class_weight)
        self.stop_training = False
        ctx = distributed.active()
        if ctx is not None:
            run.distribute(self, ctx)
        for cb in cbs:
            cb.on_train_begin()
        self.train()
        try:
            for epoch in range(initial_epoch, epochs):
                with self._one_thread_if_small(run.batch_size):
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
        logs = self._train_epoch(run, epoch)
        if not logs:  # a generator with nothing left: Keras warns and stops
            warnings.warn(
                "x: the input ran out of data; training stops. Make sure the generator can give "
                "steps_per_epoch * epochs batches, or pass a DataLoader or a list that can be iterated again",
                stacklevel=3,
            )
            self.stop_training = True
            return
        if run.val is not None:
            logs.update({f"val_{k}": v for k, v in self._run_epoch_eval(run.val, run.batch_size, run.val_steps).items()})
        if run.mode != "silent":
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{run.epochs} - {time.perf_counter() - start:.1f}s - {shown}", flush=True)
        for cb in run.callbacks:
            cb.on_epoch_end(epoch, logs)
        if isinstance(run.data, _Batches) and run.data.ran_out and run.steps is not None:
            warnings.warn(
                f"x: the input ran out of data in epoch {epoch + 1} (fewer than steps_per_epoch={run.steps} "
                "batches); training stops", stacklevel=3,
            )
            self.stop_training = True

    def _train_epoch(self, run: _Run, epoch: int) -> dict[str, float]:
        """One pass over the epoch's batches, a step per batch; the mean of each batch log, weighted by size."""
        self.train()
        totals: dict[str, float] = {}
        seen = 0
        batches, count = run.batches(epoch)
        bar = _progress_bar(count, f"Epoch {epoch + 1}/{run.epochs}") if run.mode == "bar" else None
        try:
            for step, batch in enumerate(batches):
                xb, yb, swb = self._prepare(*batch, class_weight=run.class_weight)
                if yb is None:
                    raise ValueError("y: the batch has no targets; fit needs (x, y) or (x, y, sample_weight) batches")
                batch_logs = self._train_step(xb, yb, swb, run.net, run.ctx)
                seen += self._batch_len(xb)
                for k, v in batch_logs.items():
                    totals[k] = totals.get(k, 0.0) + v * self._batch_len(xb)
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
        return {k: v / seen for k, v in totals.items()} if seen else {}

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor, swb: torch.Tensor | None, net: torch.nn.Module,
                    ctx: distributed.Context | None = None) -> dict[str, float]:
        """One optimizer step on a batch (through ``net``, the model or its DDP wrapper); the batch's logs."""
        self.optimizer.zero_grad(set_to_none=True)
        # Losses and metrics in float32 from a mixed model's bfloat16 outputs, as Keras computes them.
        scores = self._scores(yb, for_loss(net(xb)), swb)
        scores["loss"].backward()
        if self.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(self.parameters(), self.clipvalue)
        if self.clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.clipnorm)
        self.optimizer.step()
        self.apply_constraints()  # Keras's kernel/recurrent/bias constraints, after each step
        batch_logs = {k: float(v.detach()) for k, v in scores.items()}
        if ctx is not None:  # every process sees the same numbers, so callbacks decide alike
            batch_logs = distributed.mean_across(batch_logs, ctx)
        return batch_logs

    # ------------------------------------------------------ evaluate/predict
    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose=0, sample_weight=None, steps=None,
                 return_dict: bool = False):
        """Loss and metrics over all samples in eval mode (no dropout), as Keras returns them.

        The loss alone when the model has no metrics, else ``[loss, *metrics]``
        (``loss, acc = model.evaluate(x, y)``); ``return_dict=True`` gives
        ``{"loss": ..., "accuracy": ...}``. ``x`` takes what ``fit`` takes;
        ``steps`` limits the batches; ``sample_weight`` weights the loss.
        """
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else _check_int(batch_size, "batch_size", 1)
        steps = None if steps is None else _check_int(steps, "steps", 1)
        scores = self._run_epoch_eval(self._make_data(x, y, sample_weight=sample_weight), batch_size, steps)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
        return _as_returned(scores, return_dict)

    def predict(self, x, batch_size: int | None = None, verbose=0, steps=None) -> np.ndarray:  # noqa: ARG002 - Keras's signature
        """The model's outputs for ``x`` in eval mode, as a numpy array (batched, no gradients).

        ``x``: arrays, a Dataset, a DataLoader or a generator of batches (of
        ``x`` alone, or of tuples whose first item is x); ``steps`` limits the batches.
        """
        data = self._make_data(x, None, need_y=False)
        batch_size = 32 if batch_size is None else _check_int(batch_size, "batch_size", 1)
        steps = None if steps is None else _check_int(steps, "steps", 1)
        outs = []
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), self._one_thread_if_small(batch_size):
                for batch in self._eval_batches(data, batch_size, steps):
                    xb, _, _ = self._prepare(batch[0], None)
                    outs.append(self._outputs_to_cpu(for_loss(self(xb))))  # numpy has no bfloat16
        finally:
            self.train(was_training)
        if not outs:
            raise ValueError("x: no samples to predict")
        return self._concat_outputs(outs)

    # ------------------------------------------------------------ on_batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
        """One optimizer step on one batch; its loss (and metrics) as ``evaluate`` returns them.

        As Keras: the loss alone without metrics, else ``[loss, *metrics]``;
        ``return_dict=True`` gives a dict. The model is left in training mode.
        """
        self._require_compiled("train_on_batch")
        class_weight = _check_class_weight(class_weight)
        if class_weight is not None and sample_weight is not None:
            raise ValueError("class_weight: give class_weight or sample_weight, not both (as in Keras)")
        data = self._one_batch(x, y, sample_weight, "train_on_batch")
        self.train()
        xb, yb, swb = self._prepare(*data.batch(torch.arange(len(data))), class_weight=class_weight)
        return _as_returned(self._train_step(xb, yb, swb, net=self), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """Loss and metrics of one batch in eval mode, no step; returned as ``evaluate`` returns them."""
        self._require_compiled("test_on_batch")
        data = self._one_batch(x, y, sample_weight, "test_on_batch")
        return _as_returned(self._run_epoch_eval(data, max(len(data), 1)), return_dict)

    def predict_on_batch(self, x) -> np.ndarray:
        """The model's outputs for one batch ``x`` in eval mode, as a numpy array."""
        return self.predict(x, batch_size=max(len(self._one_batch(x, None, None, "predict_on_batch")), 1))

    def _one_batch(self, x, y, sample_weight, what: str):
        """The samples of one batch given as arrays (what the ``*_on_batch`` methods take)."""
        need_y = what != "predict_on_batch"
        data = self._make_data(x, y, need_y=need_y, sample_weight=sample_weight)
        if isinstance(data, (_Batches, _DatasetData)):
            raise TypeError(f"x: {what} takes one batch as arrays or tensors, got a {type(x).__name__}")
        return data


def _as_returned(scores: dict[str, float], return_dict: bool):
    """Keras's return value: the dict, or the loss alone, or ``[loss, *metrics]``."""
    if return_dict:
        return scores
    values = list(scores.values())
    return values[0] if len(values) == 1 else values


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
