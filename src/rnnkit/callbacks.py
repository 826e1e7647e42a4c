"""Keras's training callbacks: hooks that ``fit`` calls around epochs and batches.

A callback sees the model (``self.model``) and the epoch's ``logs`` dict
(``{"loss": ..., "accuracy": ..., "val_loss": ...}``). It may stop training
by setting ``model.stop_training = True``.

    model.fit(x, y, epochs=50, validation_split=0.1,
              callbacks=[EarlyStopping("val_loss", patience=3, restore_best_weights=True)])

``ModelCheckpoint``, which writes run directories, lives in ``rnnkit.checkpoint``
(``rk.ModelCheckpoint``), so this module stands on nothing else of rnnkit.
"""

from __future__ import annotations

import math
import warnings

import torch


class Callback:
    """Base class: override the hooks you need; each gets the epoch/batch number and ``logs``."""

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    # Keras's rule: accuracies (and AUCs) grow, everything else shrinks.
    return "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"


class Monitor(Callback):
    """Watches one logged value for improvement (``EarlyStopping``, ``ReduceLROnPlateau``, ``ModelCheckpoint``).

    ``best`` is the best value so far; ``current(logs)`` reads the value, ``improved(value)`` compares it.
    A value missing from the logs (``val_loss`` without validation data) is
    warned about once per training, naming the callback (``owner``) and the
    logged names, and the epoch is skipped, as in Keras.
    """

    def __init__(self, monitor: str, mode: str, min_delta: float, owner: str | None = None):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a log name such as 'val_loss', got {type(monitor).__name__}")
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf
        self.owner = owner or type(self).__name__
        self.warned = False

    def current(self, logs) -> float | None:
        """The watched value, or None (warned once) when the logs lack it."""
        logs = logs or {}
        if self.monitor not in logs:
            if not self.warned:
                self.warned = True
                warnings.warn(
                    f"{self.owner} is conditioned on {self.monitor!r}, which is not available; the logs have "
                    f"{', '.join(sorted(logs))}. Validation values need validation_data or validation_split; "
                    "this callback does nothing until the value is logged",
                    stacklevel=3,
                )
            return None
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights of its best
    epoch (kept as a CPU copy of the state dict).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False):
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, got {patience!r}")
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):  # noqa: ARG002 - Keras's hook signature
        self.warned = False
        self.wait = 0
        self.stopped_epoch = None
        self.best_epoch = None
        self.best_weights = None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self.current(logs)
        if value is None:
            return
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience and epoch > 0:  # Keras's rule
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):  # noqa: ARG002
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch is not None:
            self.model.load_state_dict(self.best_weights)


def finite_state(model, logs=None) -> bool:
    """True when the logged ``loss`` (if any) and every weight of ``model`` are finite: a state worth saving."""
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        return False
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (epoch counts from 0).

    The rate depends only on the epoch, so a resumed run follows the same schedule.

    >>> LearningRateScheduler(lambda epoch, lr: 1e-3 * 0.5 ** (epoch // 5))
    """

    def __init__(self, schedule, verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"schedule: expected a callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):  # noqa: ARG002
        lr = float(self.schedule(epoch, float(self.model.optimizer.param_groups[0]["lr"])))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"schedule: returned learning rate {lr!r} for epoch {epoch}; expected a positive number")
        for group in self.model.optimizer.param_groups:
            group["lr"] = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:.3g}")


class ReduceLROnPlateau(Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Waits ``cooldown`` epochs after a reduction before counting again, and
    never goes below ``min_lr``. The optimizer's ``param_groups`` hold the
    rate, so it is saved with the optimizer state.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, mode: str = "auto",
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0, verbose: int = 0):
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < float(factor) < 1.0:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor!r}")
        self.factor = float(factor)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, got {patience!r}")
        self.patience = patience
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.verbose = verbose

    def on_train_begin(self, logs=None):  # noqa: ARG002
        self.warned = False
        self.wait = 0
        self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self.current(logs)
        if value is None:
            return
        logs["lr"] = self.model.optimizer.param_groups[0]["lr"]
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in self.model.optimizer.param_groups:
                old = float(group["lr"])
                new = max(old * self.factor, self.min_lr)
                if old - new > 1e-12:
                    group["lr"] = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new:.3g}")
            self.cooldown_counter = self.cooldown
            self.wait = 0




class CSVLogger(Callback):
    """Keras's ``CSVLogger``: one row per epoch, ``epoch`` then the logged values in sorted key order.

    The file is opened when training begins (``append=True`` adds to an
    existing file, with no second header) and flushed after every row, so
    an interrupted run keeps the epochs it finished. A field holding the
    separator, a quote or a newline is quoted as the csv module reads it.

        model.fit(x, y, epochs=10, validation_split=0.1, callbacks=[CSVLogger("history.csv")])
        # epoch,accuracy,loss,val_accuracy,val_loss
        # 0,0.61,1.12,0.70,0.95
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        if not isinstance(separator, str) or len(separator) != 1 or separator in "\"\r\n":
            raise ValueError(f"separator: expected one character other than a quote or newline, got {separator!r}")
        self.filename, self.separator, self.append = str(filename), separator, bool(append)
        self.keys = None
        self._file = None

    def on_train_begin(self, logs=None):  # noqa: ARG002
        self._header = True  # only when the file starts empty: appending continues the same table
        if self.append:
            try:
                with open(self.filename, "rb") as f:
                    self._header = not f.read(1)
            except FileNotFoundError:
                pass
        self._file = open(self.filename, "a" if self.append else "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self._header:
                self._write_row(["epoch", *self.keys])
        # An epoch cut short by stop_training may lack values: "NA", as Keras writes.
        self._write_row([epoch, *(logs.get(k, "NA") for k in self.keys)])

    def on_train_end(self, logs=None):  # noqa: ARG002
        if self._file is not None:
            self._file.close()
        self._file = None

    def _write_row(self, values) -> None:
        self._file.write(self.separator.join(self._field(v) for v in values) + "\r\n")
        self._file.flush()

    def _field(self, v) -> str:
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            v = v.item() if v.numel() == 1 else v.tolist()
        text = str(v)
        if any(c in text for c in (self.separator, '"', "\r", "\n")):
            text = '"' + text.replace('"', '""') + '"'
        return text
