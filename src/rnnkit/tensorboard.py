"""Keras's ``TensorBoard`` callback: ``fit``'s losses and metrics as TensorBoard event files.

    model.fit(x, y, epochs=20, validation_split=0.1, callbacks=[rk.TensorBoard("logs/run1")])
    # then: tensorboard --logdir logs

As Keras, the training values go to ``log_dir/train`` and the validation
values (``val_loss`` ... without the ``val_`` prefix) to
``log_dir/validation``, each under ``epoch_<name>`` at step = epoch. The
files are written by the real ``tensorboard`` package (through
``torch.utils.tensorboard``), an optional extra: ``pip install
rnnkit[tensorboard]``. TensorBoard's own reader
(``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``)
reads them back.
"""

from __future__ import annotations

import os

from .callbacks import Callback

# Keras's arguments that draw on TF's graph, profiler or projector: accepted at their off values only.
_UNSUPPORTED = {"write_images": False, "write_steps_per_second": False, "profile_batch": 0,
                "embeddings_freq": 0, "embeddings_metadata": None}


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
    except ImportError as e:
        raise ImportError(
            "TensorBoard: the tensorboard package is missing; install rnnkit's extra: pip install 'rnnkit[tensorboard]'"
        ) from e
    return SummaryWriter


class TensorBoard(Callback):
    """Write per-epoch loss and metrics (and optionally per-batch values and weight histograms) for TensorBoard.

    Args:
        log_dir: the run's directory; ``train/`` and ``validation/`` are made in it.
        histogram_freq: every this many epochs, a histogram of each weight
            (named by ``model.named_parameters()``) under ``train/``; 0: none.
        write_graph: Keras draws TF's graph; a torch model has no graph
            before tracing, so this writes the model's structure (its
            ``repr``) as a text summary ``graph`` under ``train/``.
        update_freq: ``"epoch"`` (the default), ``"batch"``, or an int N:
            also write the training batch values as ``batch_<name>`` every N
            batches (step = batches seen).
        write_images, write_steps_per_second, profile_batch, embeddings_freq,
            embeddings_metadata: Keras's TF-only options, accepted at their
            off values; anything else is a ``ValueError``.

    >>> history = model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[TensorBoard("logs")])  # doctest: +SKIP
    """

    def __init__(self, log_dir="logs", histogram_freq: int = 0, write_graph: bool = True, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq="epoch", profile_batch=0, embeddings_freq: int = 0,
                 embeddings_metadata=None):
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir: expected a path, got {type(log_dir).__name__}")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"histogram_freq: expected an int >= 0 (epochs between histograms), got {histogram_freq!r}")
        if update_freq not in ("epoch", "batch") and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1
        ):
            raise ValueError(f"update_freq: expected 'epoch', 'batch' or an int >= 1 (batches), got {update_freq!r}")
        given = {"write_images": write_images, "write_steps_per_second": write_steps_per_second,
                 "profile_batch": profile_batch, "embeddings_freq": embeddings_freq,
                 "embeddings_metadata": embeddings_metadata}
        for arg, value in given.items():
            if value != _UNSUPPORTED[arg]:
                raise ValueError(f"{arg}: a TF-only Keras option rnnkit does not write; expected "
                                 f"{_UNSUPPORTED[arg]!r}, got {value!r}")
        self._writer_class = _summary_writer()  # fail at construction, not after the first epoch
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = bool(write_graph)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers = {}
        self._batches = 0

    def _writer(self, split: str):
        if split not in self._writers:
            self._writers[split] = self._writer_class(log_dir=os.path.join(self.log_dir, split))
        return self._writers[split]

    def on_train_begin(self, logs=None):  # noqa: ARG002 - Keras's hook signature
        self._batches = 0
        if self.write_graph and self.model is not None:
            self._writer("train").add_text("graph", f"```\n{self.model!r}\n```", 0)

    def on_train_batch_end(self, batch, logs=None):  # noqa: ARG002
        self._batches += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        for name, value in (logs or {}).items():
            self._writer("train").add_scalar(f"batch_{name}", float(value), self._batches)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            split, name = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(split).add_scalar(f"epoch_{name}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0 and self.model is not None:
            for name, p in self.model.named_parameters():
                self._writer("train").add_histogram(name, p.detach().cpu().float().numpy(), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):  # noqa: ARG002
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
