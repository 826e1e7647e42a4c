"""The ``rnnkit`` command line: train the seeds' jobs, evaluate, sample, and the demo.

    rnnkit demo                       # hello, digits, series with presets; results next to baselines; plots
    rnnkit train digits --cell lstm --units 128 --epochs 20 --out runs/digits
    rnnkit train digits --resume runs/digits        # continue an interrupted run, same numbers
    rnnkit evaluate runs/digits
    rnnkit train text --data book.txt --out runs/book && rnnkit sample runs/book --prime "The " --temperature 0.7
    rnnkit summary series --cell gru --units 64

Several processes: ``torchrun --nproc_per_node=N -m rnnkit train ...`` trains
with DistributedDataParallel (``--batch-size`` is the global batch); process
0 writes the run directory.

Errors are one line on stderr and a non-zero exit (``--debug`` shows the
traceback). Ctrl-C during training leaves the run directory at its last
complete epoch, ready for ``--resume``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path


def tour(print_fn=print) -> None:
    """The seeds' tour: layers, shapes, returns and the stacked summary."""
    import numpy as np
    import torch

    from . import GRU, LSTM, RNN, Sequential, SimpleRNN, SimpleRNNCell

    torch.manual_seed(0)
    h, e, l, o = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]  # noqa: E741

    def show(title, x, outputs, *states):
        print_fn(f"\n## {title}\nx_data shape: {tuple(x.shape)}")
        print_fn(f"outputs: {outputs.detach().numpy().round(4).tolist()}, shape: {tuple(outputs.shape)}")
        for name, s in zip(("states", "cell_states"), states):
            print_fn(f"{name}: {s.detach().numpy().round(4).tolist()}, shape: {tuple(s.shape)}")

    x = np.array([[h]], dtype=np.float32)
    show("SimpleRNNCell + RNN, one step", x, *RNN(SimpleRNNCell(2), return_sequences=True, return_state=True)(x))
    x = np.array([[h, e, l, l, o]], dtype=np.float32)
    show("SimpleRNN, five steps (the last output is the state)", x,
         *SimpleRNN(2, return_sequences=True, return_state=True)(x))
    x = np.array([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=np.float32)
    show("Batching input: hello, eolll, lleel", x, *SimpleRNN(2, return_sequences=True, return_state=True)(x))
    show("No return sequences", x, *SimpleRNN(2, return_sequences=False, return_state=True)(x))
    show("No return state", x, SimpleRNN(2)(x))
    show("GRU", x, *GRU(2, return_state=True)(x))
    outputs, h_states, c_states = LSTM(2, return_state=True)(x)
    show("LSTM (output, h, c)", x, outputs, h_states, c_states)
    print_fn("\n## Stacked RNN")
    model = Sequential()
    model.add(SimpleRNN(2, return_sequences=True, input_shape=(5, 4)))
    model.add(SimpleRNN(2, return_sequences=True))
    model.add(SimpleRNN(2, return_sequences=True))
    model.summary(print_fn=print_fn)


# --------------------------------------------------------------- training


TRAIN_FLAGS = ("cell", "units", "layers", "bidirectional", "dropout", "epochs", "batch_size", "lr", "optimizer",
               "clipnorm")
SAVE_EVERY = 30.0  # seconds between checkpoint writes during training

# Quick presets: every task in seconds, for tests and a first look (quality is not the point).
QUICK = {
    "hello": {"units": 8, "epochs": 60},
    "digits": {"units": 16, "epochs": 1},
    "series": {"units": 16, "epochs": 1},
    "text": {"units": 16, "epochs": 1},
}


def _settings(task, args, quick: bool = False) -> dict:
    """The training settings: the task's presets, then --quick, then flags the user gave."""
    s = {"layers": 1, "bidirectional": False, "dropout": 0.0, "optimizer": "adam", "clipnorm": None, **task.presets}
    if quick:
        s.update(QUICK[task.name])
    for k in TRAIN_FLAGS:
        v = getattr(args, k, None)
        if v is not None:
            s[k] = v
    return s


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _cosine(lr: float, epochs: int):
    # A decay that depends only on the epoch (not on the run's history), so a
    # resumed run follows the same rates: lr at epoch 0, lr/20 at the last.
    def schedule(epoch, _lr):
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs - 1, 1))))

    return schedule


def _make_callbacks(run_dir: Path, task_cfg: dict, history: dict, settings: dict, start_epoch: int):
    from . import distributed
    from .callbacks import Callback, LearningRateScheduler, TerminateOnNaN, finite_state
    from .checkpoint import Checkpoint

    class RunCheckpoint(Callback):
        """Snapshot weights, optimizer, RNGs and history after every epoch (in memory, cheap);
        write the snapshot at most every SAVE_EVERY seconds, at the end, and on Ctrl-C.

        An epoch whose loss or weights are not finite is not snapshotted, so the
        run directory keeps the last good epoch. Only process 0 of a
        distributed run snapshots and writes."""

        def __init__(self):
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
                self.snapshot = Checkpoint(self.model, self.epoch, self.history, task=task_cfg)
            if time.monotonic() - self.last_write >= SAVE_EVERY:
                self.flush()

        def flush(self):
            if self.snapshot is not None and self.snapshot.epoch != self.saved_epoch:
                self.snapshot.write(run_dir)
                self.saved_epoch = self.snapshot.epoch
                self.last_write = time.monotonic()

    ckpt = RunCheckpoint()
    return ckpt, [LearningRateScheduler(_cosine(settings["lr"], settings["epochs"])), TerminateOnNaN(), ckpt]


def train(task_name: str, args, quick: bool = False, print_fn=print) -> dict:
    """Train (or resume) one run; write the run directory; return the metrics dict.

    Under torchrun every process runs this; process 0 writes the files.
    """
    from . import distributed

    ctx = distributed.init(args.device) if distributed.launched_by_torchrun() else None
    try:
        return _train(task_name, args, quick, print_fn, ctx)
    finally:
        if ctx is not None:
            distributed.cleanup()


def _train(task_name: str, args, quick: bool, print_fn, ctx) -> dict:
    import numpy as np
    import torch

    from . import distributed
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data import build_model, load_task
    from .files import clean_leftovers
    from .serialization import read_config
    from .training import resolve_device

    device = ctx.device if ctx is not None else resolve_device(args.device)
    main = distributed.is_main()
    # The recurrent loop is many small ops: one CPU thread is the fastest at
    # these sizes and does not fight other processes for cores (two threads on
    # a busy 2-core machine measured 5-40x slower per batch).
    torch.set_num_threads(getattr(args, "threads", None) or 1)
    if args.resume:
        run_dir = Path(args.resume)
        if main:
            clean_leftovers(run_dir)  # finish or discard what a killed writer left
        distributed.barrier()
        task_cfg = read_config(run_dir).get("task") or {}
        if (not isinstance(task_cfg, dict) or task_cfg.get("name") not in QUICK
                or not isinstance(task_cfg.get("settings"), dict)):
            raise ValueError(f"resume: {run_dir} was not written by `rnnkit train` (no task in config.json)")
        settings = dict(task_cfg["settings"])
        if args.epochs is not None:
            settings["epochs"] = args.epochs
        task = load_task(task_cfg["name"], data=task_cfg.get("data"), seed=task_cfg["seed"])
        model, start_epoch, history, _ = load_checkpoint(run_dir, device=device)
        task_cfg["settings"] = settings
        print_fn(f"resuming {task.name} from {run_dir} at epoch {start_epoch}/{settings['epochs']}")
    else:
        _seed_everything(args.seed)
        data = None if args.data is None else str(Path(args.data).resolve())
        task = load_task(task_name, data=data, seed=args.seed)
        settings = _settings(task, args, quick)
        model = build_model(task, settings["cell"], settings["units"], settings["layers"],
                            settings["bidirectional"], settings["dropout"]).to(device)
        model.compile(settings["optimizer"], task.loss, task.metrics, clipnorm=settings["clipnorm"],
                      learning_rate=settings["lr"])
        run_dir = Path(args.out or f"runs/{task.name}")
        task_cfg = {"name": task.name, "data": data, "seed": args.seed, "settings": settings, "info": task.info}
        start_epoch, history = 0, {}
        if main:
            save_checkpoint(run_dir, model, 0, {}, task=task_cfg)  # a Ctrl-C in epoch 1 can still resume
    if ctx is not None:
        if settings["batch_size"] % ctx.world_size:
            raise ValueError(f"batch_size: the global batch {settings['batch_size']} must be a multiple of the "
                             f"{ctx.world_size} processes")
        if ctx.rank:  # the same weights (DDP copies process 0's), but dropout masks of its own
            _seed_everything(int(np.random.SeedSequence([task_cfg["seed"], ctx.rank, start_epoch]).generate_state(1)[0]))
    ckpt, callbacks = _make_callbacks(run_dir, task_cfg, history, settings, start_epoch)
    start = time.perf_counter()
    try:
        model.fit(task.x_train, task.y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
                  validation_split=0.1 if len(task.x_train) >= 20 else 0.0, callbacks=callbacks,
                  initial_epoch=start_epoch, verbose=getattr(args, "verbose", "auto") if main else 0)
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
    metrics = report(task, model, run_dir, print_fn=print_fn, plots=True)
    metrics.update({"epochs": ckpt.epoch, "train_seconds": round(seconds, 2), "device": str(device),
                    "settings": settings})
    if ctx is not None:
        metrics["distributed"] = {"processes": ctx.world_size, "backend": ctx.backend}
    from .files import write_json
    from .plots import plot_history

    write_json(run_dir / "metrics.json", metrics)
    plot_history(ckpt.history, run_dir / "history.png", title=f"{task.name}: training")
    return metrics


# ---------------------------------------------------------------- results


def report(task, model, run_dir: Path | None, print_fn=print, plots: bool = True) -> dict:
    """Score ``model`` on the task's test set next to its baseline; draw the task's plots into ``run_dir``."""
    import numpy as np

    test = model.evaluate(task.x_test, task.y_test, batch_size=256, return_dict=True)
    out = {"task": task.name, "test": test}
    if task.name == "hello":
        from .data.hello import decode

        said = decode(model.predict(task.x_test)[0])
        out["predicted"] = said
        out["baseline"] = {"always_l_accuracy": 0.5}  # "llll": the most frequent next character
        print_fn(f"hello: input 'hell' -> predicted {said!r} (target 'ello'), "
                 f"accuracy {test['accuracy']:.2f} vs 0.50 for always predicting 'l'")
    elif task.name == "digits":
        from .data.digits import baselines

        out["baseline"] = base = baselines(task)
        pred = model.predict(task.x_test, batch_size=256).argmax(-1)
        print_fn(f"digits ({task.info['source']}): test accuracy {test['accuracy']:.4f} vs "
                 f"{base['logistic_regression_accuracy']:.4f} logistic regression, "
                 f"{base['majority_class_accuracy']:.4f} majority class")
        if plots and run_dir is not None:
            from .plots import plot_confusion

            plot_confusion(task.y_test, pred, run_dir / "confusion.png")
    elif task.name == "series":
        from .data.series import RESOLUTION, generate, persistence_mse, signal, windows

        out["baseline"] = {"persistence_mse": persistence_mse(task)}
        base = out["baseline"]["persistence_mse"]
        ratio = f"{base / test['loss']:.1f}x lower" if test["loss"] < base else f"{test['loss'] / base:.1f}x HIGHER"
        print_fn(f"series: test MSE {test['loss']:.4f} vs {base:.4f} for persistence (predict the last value), {ratio}")
        # A test window (t in [24, 26]) and, from its end, 30 values generated by feeding predictions back.
        t0, steps = float(task.info["generate_from"]), 30
        window, truth = windows(np.array([t0]))
        forecast = model.predict(window)[0, :, 0]
        gen = generate(model, window[0], steps)[0, :, 0]
        t_window = t0 + np.arange(task.info["steps"]) * RESOLUTION
        t_gen = t_window[-1] + (1 + np.arange(steps)) * RESOLUTION
        out["generated_mse_first_10"] = float(((gen[:10] - signal(t_gen[:10])) ** 2).mean())
        if plots and run_dir is not None:
            from .plots import plot_series

            plot_series(t_window, window[0, :, 0], forecast, truth[0, :, 0], run_dir / "series.png",
                        t_gen=t_gen, generated=gen, truth_gen=signal(t_gen))
    elif task.name == "text":
        from .data.text import sample

        freq = np.bincount(task.y_train.ravel(), minlength=task.output_units) / task.y_train.size
        unigram = float(-np.log(np.clip(freq[task.y_test.ravel()], 1e-12, None)).mean())
        out["baseline"] = {"unigram_loss": unigram}
        print_fn(f"text: test loss {test['loss']:.3f} nats/char vs {unigram:.3f} for character frequencies; "
                 f"accuracy {test['accuracy']:.3f}")
        prime = "".join(task.info["vocab"][i] for i in task.x_test[0, :16])  # held-out text to start from
        out["sample"] = prime + sample(model, task.info["vocab"], prime=prime, length=120, temperature=0.7, seed=0)
        print_fn("sample: " + out["sample"])
    return out


def _load_run(run_dir, device="cpu"):
    """The model and task of a run directory written by ``rnnkit train``."""
    from .data import load_task
    from .serialization import load_model, read_config

    task_cfg = read_config(run_dir).get("task")
    if not isinstance(task_cfg, dict) or task_cfg.get("name") not in QUICK:
        raise ValueError(f"run directory: {run_dir} was not written by `rnnkit train` (no task in config.json)")
    model = load_model(run_dir, device=device)
    return model, task_cfg, lambda: load_task(task_cfg["name"], data=task_cfg.get("data"), seed=task_cfg["seed"])


def evaluate(args, print_fn=print) -> dict:
    model, _, load = _load_run(args.run_dir, args.device)
    return report(load(), model, None, print_fn=print_fn, plots=False)


def sample_cmd(args, print_fn=print) -> None:
    import numpy as np

    model, task_cfg, _ = _load_run(args.run_dir, args.device)
    if task_cfg["name"] == "text":
        from .data.text import sample

        text = sample(model, task_cfg["info"]["vocab"], prime=args.prime, length=args.length,
                      temperature=args.temperature, seed=args.seed)
        print_fn(args.prime + text)
    elif task_cfg["name"] == "series":
        from .data.series import RESOLUTION, generate, signal, windows

        start = task_cfg["info"]["generate_from"] if args.start is None else args.start
        window, _ = windows(np.array([float(start)]))
        gen = generate(model, window[0], args.length)[0, :, 0]
        t = start + (task_cfg["info"]["steps"] + np.arange(args.length)) * RESOLUTION
        print_fn("t\tgenerated\ttrue")
        for ti, g in zip(t, gen):
            print_fn(f"{ti:.1f}\t{g:.4f}\t{signal(ti):.4f}")
    else:
        raise ValueError(f"sample: the {task_cfg['name']} task does not generate; sample works for text and series")


def summary(args, print_fn=print) -> None:
    from .data import build_model, load_task

    task = load_task(args.task, data=args.data, seed=args.seed)
    s = _settings(task, args)
    build_model(task, s["cell"], s["units"], s["layers"], s["bidirectional"], s["dropout"]).summary(print_fn=print_fn)


def demo(args, print_fn=print) -> int:
    """hello, digits and series with their presets; each result beside its baseline; plots in --out."""
    out = Path(args.out or "runs/demo")
    results = {}
    start = time.perf_counter()
    for name in ("hello", "digits", "series"):
        print_fn(f"\n== {name}")
        targs = argparse.Namespace(**{k: None for k in TRAIN_FLAGS}, seed=args.seed, device=args.device, data=None,
                                   threads=args.threads,
                                   out=str(out / name), resume=None, verbose=2 if args.verbose else 0)
        t = time.perf_counter()
        results[name] = train(name, targs, quick=args.quick, print_fn=print_fn)
        print_fn(f"   ({time.perf_counter() - t:.1f}s; run directory {out / name})")
    print_fn(f"\n== demo finished in {time.perf_counter() - start:.1f}s")
    print_fn(f"{'task':<8}{'result':<34}baseline")
    h, d, s = results["hello"], results["digits"], results["series"]
    rows = [
        ("hello", f"predicts {h['predicted']!r} (target 'ello')", "'llll' (always 'l'): accuracy 0.50"),
        ("digits", f"test accuracy {d['test']['accuracy']:.4f}",
         f"logistic regression {d['baseline']['logistic_regression_accuracy']:.4f}"),
        ("series", f"test MSE {s['test']['loss']:.4f}", f"persistence MSE {s['baseline']['persistence_mse']:.4f}"),
    ]
    for row in rows:
        print_fn(f"{row[0]:<8}{row[1]:<34}{row[2]}")
    print_fn(f"plots: {', '.join(str(p) for p in sorted(out.glob('*/*.png')))}")
    return 0


# --------------------------------------------------------------- argparse


def _arg_type(convert, ok, expected: str):
    """An argparse ``type=``: convert the text, check it, or say what was expected."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _arg_type(int, lambda v: v >= 1, "a positive integer")
_positive_float = _arg_type(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_rate = _arg_type(float, lambda v: 0.0 <= v < 1.0, "a rate in [0, 1)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), like every other rnnkit error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _model_flags(p: argparse.ArgumentParser) -> None:
    from .data import CELLS

    p.add_argument("--cell", choices=sorted(CELLS), help="recurrent cell (default: the task's preset)")
    p.add_argument("--units", type=_positive_int, help="units per recurrent layer")
    p.add_argument("--layers", type=_positive_int, help="stacked recurrent layers")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="wrap each recurrent layer in Bidirectional (default: the task's preset)")
    p.add_argument("--dropout", type=_rate, help="dropout rate before the output layer")
    p.add_argument("--data", help="digits: mnist.npz or a folder of IDX files; text: a UTF-8 text file")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data and shuffling (default 0)")


def _parser() -> argparse.ArgumentParser:
    from .data import TASKS

    parser = _Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch, Keras-style.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tour", help="print the seeds' tour of layers, shapes and the stacked summary")

    p = sub.add_parser("train", help="train a task and write a run directory")
    p.add_argument("task", nargs="?", choices=TASKS, help="hello, digits, series or text (not with --resume)")
    _model_flags(p)
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float, help="initial learning rate (cosine decay to lr/20)")
    p.add_argument("--optimizer", choices=["adam", "rmsprop", "sgd"])
    p.add_argument("--clipnorm", type=_positive_float, help="clip gradients to this global norm")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--out", help="run directory (default runs/TASK)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run with its saved settings, to the same final weights as an "
                        "uninterrupted run on the CPU (a new --epochs also changes the learning-rate schedule)")

    p = sub.add_parser("evaluate", help="score a run directory's model on its task's test set")
    p.add_argument("run_dir")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("sample", help="generate from a text or series run")
    p.add_argument("run_dir")
    p.add_argument("--length", type=_positive_int, default=200, help="characters (text) or values (series)")
    p.add_argument("--temperature", type=float, default=1.0, help="text: sampling temperature (>= 0.001)")
    p.add_argument("--prime", default="The ", help="text: the characters to start from")
    p.add_argument("--start", type=float, help="series: start time of the 20-step window to continue")
    p.add_argument("--seed", type=int, help="text: sampling seed")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("summary", help="print the model table for a task and flags")
    p.add_argument("task", choices=TASKS)
    _model_flags(p)

    p = sub.add_parser("demo", help="the README's main job: hello, digits, series with results, baselines, plots")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--out", help="folder for the run directories (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--verbose", action="store_true", help="one line per epoch")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tour":
            tour()
        elif args.command == "train":
            if (args.task is None) == (args.resume is None):
                raise ValueError("train: give a TASK, or --resume RUN_DIR (not both)")
            train(args.task, args)
        elif args.command == "evaluate":
            evaluate(args)
        elif args.command == "sample":
            sample_cmd(args)
        elif args.command == "summary":
            summary(args)
        elif args.command == "demo":
            return demo(args)
        return 0
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        print(f"rnnkit: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if args.debug:
            raise
        print(f"rnnkit: error: this command needs the module {e.name!r}: pip install 'rnnkit[tasks]'", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as e:
        if args.debug:
            raise
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
