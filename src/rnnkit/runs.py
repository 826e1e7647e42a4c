"""Run directories: train a task into one, resume it, evaluate and sample it; the demo.

A run directory holds the last complete epoch (weights, optimizer, RNG
states, history: a ``Checkpoint``) and, in config.json, the task and its
settings. So ``resume`` continues an interrupted run to the same final
weights as an uninterrupted one (on the CPU), and ``evaluate`` and
``sample`` rebuild the task a model was trained on.

    metrics = train("digits", "runs/digits", overrides={"cell": "lstm", "epochs": 20})
    metrics = resume("runs/digits")              # after a Ctrl-C
    metrics = resume("runs/digits", epochs=40, out="runs/digits-40")   # a branch: copy, then continue there
    evaluate("runs/digits")

A run is never replaced by accident: ``train`` into a folder that holds a
run refuses (``overwrite=True`` replaces it), and so does a ``resume`` branch.

Under torchrun every process calls ``train`` or ``resume`` (DistributedDataParallel,
``batch_size`` is the global batch); process 0 writes the run directory and reports.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from contextlib import contextmanager, nullcontext
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .callbacks import Callback, LearningRateScheduler, TerminateOnNaN, finite_state
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import TASKS, SampleOptions, Task, build_model, load_run, load_task, read_array, task_config
from .data.run import data_path, epochs_done
from .data.task import SETTINGS
from .files import atomic_write, clean_leftovers, write_json, writer_lock
from .mixed_precision import get as get_policy
from .model import Sequential
from .plots import plot_history
from .training import resolve_device

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


def model_for(task: Task, settings: dict, dtype=None) -> Sequential:
    """The model ``settings`` describe for ``task`` (not compiled); ``dtype``: its layers' dtype policy."""
    return build_model(task, settings["cell"], settings["units"], settings["layers"], settings["bidirectional"],
                       settings["dropout"], dtype)


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


def _ways_forward(run_dir: Path, finished: bool = False) -> str:
    resume = f"rnnkit train --resume {run_dir}" + (" --epochs N" if finished else "")
    return f"continue it with `{resume}`, or train into a new --out (--overwrite replaces it)"


def check_out(run_dir: Path, overwrite: bool = False) -> bool:
    """Refuse to write a new run into ``run_dir`` when it holds one, unless ``overwrite``; True when it must be
    cleared first. A folder with other files is always refused: rnnkit deletes only its own runs."""
    if not run_dir.exists():
        return False
    if not run_dir.is_dir():
        raise ValueError(f"out: {run_dir} is a file; expected a folder for the run (new or empty)")
    if not any(run_dir.iterdir()):
        return False
    if not (run_dir / "config.json").exists() and not (run_dir / "trainer_state.json").exists():
        raise ValueError(f"out: {run_dir} holds files and is not a run directory; give a new or empty folder as --out")
    if overwrite:
        return True
    done = epochs_done(run_dir)
    try:
        planned = task_config(run_dir)["settings"].get("epochs")
    except ValueError:
        planned = None
    what = "a run" if done is None else f"a run at epoch {done}" + (f" of {planned}" if planned else "")
    raise ValueError(f"out: {run_dir} already holds {what}; {_ways_forward(run_dir, done is not None and done == planned)}")


def train(task_name: str, out=None, *, overrides: dict | None = None, quick: bool = False, data=None, seed: int = 0,
          overwrite: bool = False, device: str = "auto", threads: int = 1, verbose="auto", print_fn=print,
          dtype=None) -> dict:
    """Train ``task_name`` into the run directory ``out`` (default runs/TASK); return the metrics.

    overrides: settings that replace the task's presets (see ``settings``);
    quick: the task's quick preset first, seconds instead of minutes.
    dtype: the layers' dtype policy (``"mixed_bfloat16"``: bfloat16 products, float32 weights and head);
    the saved model keeps it, so ``--resume``, ``evaluate`` and ``predict`` compute alike.
    overwrite: replace a run already in ``out`` (without it, that is a ValueError).
    Process 0 writes the run directory; other processes return ``{}``.
    """
    run_dir = Path(out or f"runs/{task_name}")
    policy = get_policy(dtype)  # a bad name fails before anything happens
    clear = check_out(run_dir, overwrite)  # before the data loads: a refusal costs nothing
    with _processes(device, threads) as (ctx, dev):
        seed_everything(seed)
        data = None if data is None else str(Path(data).resolve())
        task = load_task(task_name, data=data, seed=seed)
        s = settings(task, overrides, quick)
        model = model_for(task, s, policy).to(dev)
        model.compile(s["optimizer"], task.loss, task.metrics, clipnorm=s["clipnorm"], learning_rate=s["lr"])
        task_cfg = {"name": task.name, "data": data, "seed": seed, "settings": s, "info": task.info}
        if policy is not None:  # for the record: the model's own config carries the policy
            task_cfg["dtype"] = policy.name
        distributed.barrier()  # every process has checked `out` before process 0 clears it
        if distributed.is_main() and clear:
            shutil.rmtree(run_dir)
        with _writer(run_dir):
            if distributed.is_main():
                save_checkpoint(run_dir, model, 0, {}, task=task_cfg)  # a Ctrl-C in epoch 1 can still resume
            return _fit(task, model, run_dir, task_cfg, 0, {}, ctx, dev, verbose, print_fn)


def resume(run_dir, *, epochs: int | None = None, out=None, data=None, overwrite: bool = False,
           device: str = "auto", threads: int = 1, verbose="auto", print_fn=print) -> dict:
    """Continue the run in ``run_dir`` from its last complete epoch, with its saved settings; return the metrics.

    epochs: a new total (this also changes the learning-rate schedule).
    out: a branch: copy ``run_dir`` there and continue in the copy (``run_dir`` stays as it is); a run
    already in ``out`` is refused unless ``overwrite``.
    data: a new place for the run's data file (digits' MNIST, text's corpus), kept for later resumes.
    """
    source = Path(run_dir)
    run_dir = Path(out) if out is not None else source
    branch = run_dir.resolve() != source.resolve()
    task_config(source, "resume")  # a run written by `rnnkit train`, checked before anything is copied
    clear = check_out(run_dir, overwrite) if branch else False
    with _processes(device, threads) as (ctx, dev):
        distributed.barrier()  # every process has checked `out` before process 0 writes there
        if distributed.is_main():
            if clear:
                shutil.rmtree(run_dir)
            if branch:
                shutil.copytree(source, run_dir, dirs_exist_ok=True)
        with _writer(run_dir):
            if distributed.is_main():
                clean_leftovers(run_dir)  # finish or discard what a killed writer left
            distributed.barrier()
            task_cfg = task_config(run_dir, "resume")
            task_cfg["data"] = data_path(task_cfg, data)
            s = dict(task_cfg["settings"])
            if epochs is not None:
                s["epochs"] = epochs
            task = load_task(task_cfg["name"], data=task_cfg["data"], seed=task_cfg["seed"])
            model, start_epoch, history, _ = load_checkpoint(run_dir, device=dev)
            task_cfg["settings"] = s
            print_fn(f"resuming {task.name} from {source} at epoch {start_epoch}/{s['epochs']}"
                     + (f", continuing in {run_dir}" if branch else ""))
            return _fit(task, model, run_dir, task_cfg, start_epoch, history, ctx, dev, verbose, print_fn)


def _writer(run_dir: Path):
    """The run directory's writer lock, held by the process that writes it (process 0 under torchrun)."""
    return writer_lock(run_dir) if distributed.is_main() else nullcontext()


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
        plots = ""
        if main and ckpt.saved_epoch > 0:
            saved = {k: v[: ckpt.saved_epoch] for k, v in ckpt.history.items()}
            plots = f"; plot {plot_history(saved, run_dir / 'history.png', title=f'{task.name}: training')}"
        raise KeyboardInterrupt(
            f"interrupted: {run_dir} holds epoch {ckpt.saved_epoch} of {s['epochs']}{plots}; "
            f"{_ways_forward(run_dir)}"
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
    print_fn(f"run directory: {run_dir}")
    print_fn(f"plots: {', '.join(str(p) for p in sorted(run_dir.glob('*.png')))}")
    return metrics


def report(task: Task, model, run_dir: Path | None = None, print_fn=print) -> dict:
    """Score ``model`` on the task's test set next to its baseline (the task's report); plots into ``run_dir``."""
    test = model.evaluate(task.x_test, task.y_test, batch_size=256, return_dict=True)
    return {"task": task.name, "test": test, **TASKS[task.name].report(task, model, test, run_dir, print_fn)}


def evaluate(run_dir, device: str = "auto", data=None, print_fn=print) -> dict:
    """Score a run directory's model on its task's test set (``report`` without plots); ``data``: a new place
    for the run's data file."""
    run = load_run(run_dir, device=device)
    return report(run.task(data), run.model, None, print_fn=print_fn)


def sample(run_dir, options: SampleOptions | None = None, device: str = "auto", print_fn=print):
    """Print what the run's task generates from its model (text: characters; series: values); return it."""
    options = options or SampleOptions()
    run = load_run(run_dir, device=device)
    result = run.sample(options)
    print_fn(TASKS[run.task_name].show_sample(result, options))
    return result


def predict(run_dir, inputs, output=None, device: str = "auto", print_fn=print) -> np.ndarray:
    """The run's model on the samples in the file ``inputs`` (.npy or .csv, see ``rnnkit.data.Run.inputs``).

    Writes ``output`` (.npy: the outputs as they are; .csv: one flattened row per sample) when given, else
    prints one CSV row per sample (a classifier's rows start with the predicted class). Returns the outputs.
    """
    run = load_run(run_dir, device=device)
    y = run.predict(read_array(inputs))
    rows = y.reshape(len(y), -1)
    if output is not None:
        output = Path(output)
        if output.suffix.lower() not in (".npy", ".csv"):
            raise ValueError(f"output: expected a .npy or .csv file name, got {output.name!r}")
        buf = BytesIO()
        if output.suffix.lower() == ".npy":
            np.save(buf, y)
        else:
            np.savetxt(buf, rows, delimiter=",", fmt="%.7g")
        atomic_write(output, buf.getvalue())
        print_fn(f"{len(y)} predictions of shape {y.shape[1:]} written to {output}")
        return y
    classifier = y.ndim == 2 and run.model.layers[-1].get_config().get("activation") == "softmax"
    names = [f"p{i}" for i in range(rows.shape[1])] if classifier else [f"y{i}" for i in range(rows.shape[1])]
    print_fn(",".join((["class"] if classifier else []) + names))
    for i, row in enumerate(rows):
        print_fn(",".join(([str(int(y[i].argmax()))] if classifier else []) + [f"{v:.6g}" for v in row]))
    return y


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
        # The demo's own runs are replaced on the next demo (a folder that is not a run is still refused).
        results[name] = train(name, out / name, quick=quick, seed=seed, overwrite=True, device=device,
                              threads=threads, verbose=2 if verbose else 0, print_fn=print_fn)
        print_fn(f"   ({time.perf_counter() - t:.1f}s)")
    print_fn(f"\n== demo finished in {time.perf_counter() - start:.1f}s")
    print_fn(f"{'task':<8}{'result':<34}baseline")
    for name, spec in shown.items():
        result, baseline = spec.headline(results[name])
        print_fn(f"{name:<8}{result:<34}{baseline}")
    print_fn(f"plots: {', '.join(str(p) for p in sorted(out.glob('*/*.png')))}")
    return results
