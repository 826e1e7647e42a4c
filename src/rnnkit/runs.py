"""Run directories: train a task into one, resume it, evaluate and sample it; the demo.

A run directory holds the last complete epoch (weights, optimizer, RNG
states, history: a ``Checkpoint``) and, in config.json, the task and its
settings. So ``resume`` continues an interrupted run to the same final
weights as an uninterrupted one (on the CPU), and ``evaluate`` and
``sample`` rebuild the task a model was trained on.

    metrics = train("digits", "runs/digits", overrides={"cell": "lstm", "epochs": 20})
    metrics = resume("runs/digits")              # after a Ctrl-C
    evaluate("runs/digits")

Under torchrun every process calls ``train`` or ``resume`` (DistributedDataParallel,
``batch_size`` is the global batch); process 0 writes the run directory and reports.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .callbacks import Callback, LearningRateScheduler, TerminateOnNaN, finite_state
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import TASKS, SampleOptions, Task, build_model, load_task
from .files import clean_leftovers, write_json, writer_lock
from .model import Sequential
from .plots import plot_history
from .serialization import load_model, read_config
from .training import resolve_device

SETTINGS = ("cell", "units", "layers", "bidirectional", "dropout", "epochs", "batch_size", "lr", "optimizer",
            "clipnorm")
DEFAULTS = {"layers": 1, "bidirectional": False, "dropout": 0.0, "optimizer": "adam", "clipnorm": None}
SAVE_EVERY = 30.0  # seconds between checkpoint writes during training


def settings(task: Task, overrides: dict | None = None, quick: bool = False) -> dict:
    """The training settings: ``DEFAULTS``, the task's presets, its quick preset, then ``overrides`` not None."""
    s = {**DEFAULTS, **task.presets}
    if quick:
        s.update(TASKS[task.name].quick)
    for k, v in (overrides or {}).items():
        if k not in SETTINGS:
            raise ValueError(f"overrides: expected settings among {list(SETTINGS)}, got {k!r}")
        if v is not None:
            s[k] = v
    return s


def model_for(task: Task, settings: dict) -> Sequential:
    """The model ``settings`` describe for ``task`` (not compiled)."""
    return build_model(task, settings["cell"], settings["units"], settings["layers"], settings["bidirectional"],
                       settings["dropout"])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _cosine(lr: float, epochs: int):
    # A decay that depends only on the epoch (not on the run's history), so a
    # resumed run follows the same rates: lr at epoch 0, lr/20 at the last.
    def schedule(epoch, _lr):
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs - 1, 1))))

    return schedule


class RunCheckpoint(Callback):
    """Snapshot weights, optimizer, RNGs and history after every epoch (in memory, cheap);
    write the snapshot at most every ``SAVE_EVERY`` seconds, at the end (``flush``), and on Ctrl-C.

    An epoch whose loss or weights are not finite is not snapshotted, so the
    run directory keeps the last good epoch (``bad`` tells which went wrong).
    Only process 0 of a distributed run snapshots and writes.
    """

    def __init__(self, run_dir: Path, task_cfg: dict, history: dict, start_epoch: int):
        self.run_dir, self.task_cfg = run_dir, task_cfg
        self.history = {k: list(v) for k, v in history.items()}
        self.epoch = self.saved_epoch = start_epoch
        self.snapshot = None
        self.bad = None  # (epoch, loss) of the first non-finite epoch
        self.last_write = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        self.epoch = epoch + 1
        if not finite_state(self.model, logs):
            self.bad = self.bad or (epoch + 1, (logs or {}).get("loss"))
            return
        if distributed.is_main():
            self.snapshot = Checkpoint(self.model, self.epoch, self.history, task=self.task_cfg)
        if time.monotonic() - self.last_write >= SAVE_EVERY:
            self.flush()

    def flush(self):
        if self.snapshot is not None and self.snapshot.epoch != self.saved_epoch:
            self.snapshot.write(self.run_dir)
            self.saved_epoch = self.snapshot.epoch
            self.last_write = time.monotonic()


@contextmanager
def _processes(device: str, threads: int):
    """This process's (distributed context or None, device); inside torchrun's process group when it launched us."""
    ctx = distributed.init(device) if distributed.launched_by_torchrun() else None
    try:
        dev = ctx.device if ctx is not None else resolve_device(device)
        # The recurrent loop is many small ops: one CPU thread is the fastest at
        # these sizes and does not fight other processes for cores (two threads on
        # a busy 2-core machine measured 5-40x slower per batch).
        torch.set_num_threads(threads)
        yield ctx, dev
    finally:
        if ctx is not None:
            distributed.cleanup()


def train(task_name: str, out=None, *, overrides: dict | None = None, quick: bool = False, data=None, seed: int = 0,
          device: str = "auto", threads: int = 1, verbose="auto", print_fn=print) -> dict:
    """Train ``task_name`` into the run directory ``out`` (default runs/TASK); return the metrics.

    overrides: settings that replace the task's presets (see ``settings``);
    quick: the task's quick preset first, seconds instead of minutes.
    Process 0 writes the run directory; other processes return ``{}``.
    """
    with _processes(device, threads) as (ctx, dev):
        seed_everything(seed)
        data = None if data is None else str(Path(data).resolve())
        task = load_task(task_name, data=data, seed=seed)
        s = settings(task, overrides, quick)
        model = model_for(task, s).to(dev)
        model.compile(s["optimizer"], task.loss, task.metrics, clipnorm=s["clipnorm"], learning_rate=s["lr"])
        run_dir = Path(out or f"runs/{task.name}")
        task_cfg = {"name": task.name, "data": data, "seed": seed, "settings": s, "info": task.info}
        with writer_lock(run_dir) if distributed.is_main() else nullcontext():  # issue 15: one writer per folder
            if distributed.is_main():
                save_checkpoint(run_dir, model, 0, {}, task=task_cfg)  # a Ctrl-C in epoch 1 can still resume
            return _fit(task, model, run_dir, task_cfg, 0, {}, ctx, dev, verbose, print_fn)


def resume(run_dir, *, epochs: int | None = None, device: str = "auto", threads: int = 1, verbose="auto",
           print_fn=print) -> dict:
    """Continue the run in ``run_dir`` from its last complete epoch, with its saved settings; return the metrics.

    epochs: a new total (this also changes the learning-rate schedule).
    """
    with _processes(device, threads) as (ctx, dev):
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise ValueError(f"resume: {run_dir} does not exist or is not a directory")
        with writer_lock(run_dir) if distributed.is_main() else nullcontext():  # issue 15: one writer per folder
            if distributed.is_main():
                clean_leftovers(run_dir)  # finish or discard what a killed writer left
            distributed.barrier()
            task_cfg = _task_config(run_dir, "resume")
            s = dict(task_cfg["settings"])
            if epochs is not None:
                s["epochs"] = epochs
            task = load_task(task_cfg["name"], data=task_cfg.get("data"), seed=task_cfg["seed"])
            model, start_epoch, history, _ = load_checkpoint(run_dir, device=dev)
            task_cfg["settings"] = s
            print_fn(f"resuming {task.name} from {run_dir} at epoch {start_epoch}/{s['epochs']}")
            return _fit(task, model, run_dir, task_cfg, start_epoch, history, ctx, dev, verbose, print_fn)


def _fit(task: Task, model, run_dir: Path, task_cfg: dict, start_epoch: int, history: dict, ctx, device, verbose,
         print_fn) -> dict:
    """Train from ``start_epoch`` to the end, checkpointing into ``run_dir``; then report, metrics.json, plots."""
    s = task_cfg["settings"]
    main = distributed.is_main()
    if ctx is not None:
        if s["batch_size"] % ctx.world_size:
            raise ValueError(f"batch_size: the global batch {s['batch_size']} must be a multiple of the "
                             f"{ctx.world_size} processes")
        if ctx.rank:  # the same weights (DDP copies process 0's), but dropout masks of its own
            seed_everything(int(np.random.SeedSequence([task_cfg["seed"], ctx.rank, start_epoch]).generate_state(1)[0]))
    ckpt = RunCheckpoint(run_dir, task_cfg, history, start_epoch)
    callbacks = [LearningRateScheduler(_cosine(s["lr"], s["epochs"])), TerminateOnNaN(), ckpt]
    start = time.perf_counter()
    try:
        model.fit(task.x_train, task.y_train, epochs=s["epochs"], batch_size=s["batch_size"],
                  validation_split=0.1 if len(task.x_train) >= 20 else 0.0, callbacks=callbacks,
                  initial_epoch=start_epoch, verbose=verbose if main else 0)
    except KeyboardInterrupt:
        ckpt.flush()  # the last complete epoch, not the half-trained weights of this one
        raise KeyboardInterrupt(
            f"interrupted: {run_dir} holds the last complete epoch ({ckpt.saved_epoch}); "
            f"continue with `rnnkit train --resume {run_dir}`"
        ) from None
    ckpt.flush()
    distributed.barrier()  # the run directory is complete before any process goes on
    if ckpt.bad is not None:
        raise ValueError(f"train: the loss became {ckpt.bad[1]} in epoch {ckpt.bad[0]}; {run_dir} keeps epoch "
                         f"{ckpt.saved_epoch}, the last with a finite loss and weights (try a lower --lr or --clipnorm)")
    if not main:
        return {}
    seconds = time.perf_counter() - start
    metrics = report(task, model, run_dir, print_fn=print_fn)
    metrics.update({"epochs": ckpt.epoch, "train_seconds": round(seconds, 2), "device": str(device), "settings": s})
    if ctx is not None:
        metrics["distributed"] = {"processes": ctx.world_size, "backend": ctx.backend}
    write_json(run_dir / "metrics.json", metrics)
    plot_history(ckpt.history, run_dir / "history.png", title=f"{task.name}: training")
    return metrics


def report(task: Task, model, run_dir: Path | None = None, print_fn=print) -> dict:
    """Score ``model`` on the task's test set next to its baseline (the task's report); plots into ``run_dir``."""
    test = model.evaluate(task.x_test, task.y_test, batch_size=256, return_dict=True)
    return {"task": task.name, "test": test, **TASKS[task.name].report(task, model, test, run_dir, print_fn)}


def _task_config(run_dir: Path, what: str) -> dict:
    """The task section of a run directory's config.json, checked to come from ``train``."""
    task_cfg = read_config(run_dir).get("task")
    if (not isinstance(task_cfg, dict) or task_cfg.get("name") not in TASKS
            or not isinstance(task_cfg.get("settings"), dict)):
        raise ValueError(f"{what}: {run_dir} was not written by `rnnkit train` (no task in config.json)")
    # issue 15: a hand-edited task section gave KeyError tracebacks; name what is missing instead.
    s = task_cfg["settings"]
    missing = [k for k in SETTINGS if k not in s] + [k for k in ("seed", "info") if k not in task_cfg]
    if missing:
        raise ValueError(f"{what}: config.json's task section lacks {missing}; expected the settings {list(SETTINGS)}, "
                         "seed and info that `rnnkit train` writes")
    for key in ("epochs", "batch_size", "units", "layers"):
        if type(s[key]) is not int or s[key] < 1:
            raise ValueError(f"{what}: config.json: task.settings.{key} should be a positive integer, got {s[key]!r}")
    if type(task_cfg["seed"]) is not int:
        raise ValueError(f"{what}: config.json: task.seed should be an integer, got {task_cfg['seed']!r}")
    if not isinstance(s["lr"], (int, float)) or isinstance(s["lr"], bool) or not 0 < s["lr"] < math.inf:
        raise ValueError(f"{what}: config.json: task.settings.lr should be a positive number, got {s['lr']!r}")
    return task_cfg


def evaluate(run_dir, device: str = "auto", print_fn=print) -> dict:
    """Score a run directory's model on its task's test set (``report`` without plots)."""
    task_cfg = _task_config(run_dir, "run directory")
    model = load_model(run_dir, device=device)
    task = load_task(task_cfg["name"], data=task_cfg.get("data"), seed=task_cfg["seed"])
    return report(task, model, None, print_fn=print_fn)


def sample(run_dir, options: SampleOptions | None = None, device: str = "auto", print_fn=print) -> None:
    """Print what the run's task generates from its model (text: characters; series: values)."""
    task_cfg = _task_config(run_dir, "run directory")
    model = load_model(run_dir, device=device)
    spec = TASKS[task_cfg["name"]]
    if spec.sample is None:
        can = " and ".join(name for name, other in TASKS.items() if other.sample is not None)
        raise ValueError(f"sample: the {spec.name} task does not generate; sample works for {can}")
    spec.sample(model, task_cfg["info"], options or SampleOptions(), print_fn)


def demo(out=None, seed: int = 0, device: str = "auto", threads: int = 1, quick: bool = False,
         verbose: bool = False, print_fn=print) -> dict:
    """Train every task with a demo headline (hello, digits, series) with its presets; print each result
    beside its baseline; run directories and plots under ``out`` (default runs/demo). Returns the metrics per task."""
    out = Path(out or "runs/demo")
    shown = {name: spec for name, spec in TASKS.items() if spec.headline is not None}
    results = {}
    start = time.perf_counter()
    for name in shown:
        print_fn(f"\n== {name}")
        t = time.perf_counter()
        results[name] = train(name, out / name, quick=quick, seed=seed, device=device, threads=threads,
                              verbose=2 if verbose else 0, print_fn=print_fn)
        print_fn(f"   ({time.perf_counter() - t:.1f}s; run directory {out / name})")
    print_fn(f"\n== demo finished in {time.perf_counter() - start:.1f}s")
    print_fn(f"{'task':<8}{'result':<34}baseline")
    for name, spec in shown.items():
        result, baseline = spec.headline(results[name])
        print_fn(f"{name:<8}{result:<34}{baseline}")
    print_fn(f"plots: {', '.join(str(p) for p in sorted(out.glob('*/*.png')))}")
    return results
