"""The ``rnnkit`` command line: train the seeds' jobs, evaluate, sample, and the demo.

    rnnkit demo                       # hello, digits, series with presets; results next to baselines; plots
    rnnkit train digits --cell lstm --units 128 --epochs 20 --out runs/digits
    rnnkit train --resume runs/digits               # continue an interrupted run, same numbers
    rnnkit train --resume runs/digits --epochs 40 --out runs/digits-40   # a branch: copy, then continue there
    rnnkit train hello --quick                      # a task's tiny settings: seconds
    rnnkit evaluate runs/digits
    rnnkit predict runs/digits --input images.npy   # or a .csv of one flattened sample per row
    rnnkit train text --data book.txt --out runs/book && rnnkit sample runs/book --prime "The " --temperature 0.7
    rnnkit summary series --cell gru --units 64

``train`` refuses a folder that already holds a run (the error names
``--resume DIR`` and a new ``--out``); ``--overwrite`` replaces it.

Several processes: ``torchrun --nproc_per_node=N -m rnnkit train ...`` trains
with DistributedDataParallel (``--batch-size`` is the global batch); process
0 writes the run directory.

Errors are one line on stderr and a non-zero exit (``--debug`` shows the
traceback); warnings are one line too. Ctrl-C during training leaves the
run directory at its last complete epoch, ready for ``--resume``, and its
history plot.

This module only parses and dispatches: run directories are ``rnnkit.runs``,
and each task (its presets, report and sampling) is its module in
``rnnkit.data``.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

from . import __version__, runs
from .compat import v1 as graph_mode
from .data import CELLS, TASKS, SampleOptions, load_task
from .mixed_precision import POLICIES
from .tour import tour


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
MAX_UNITS = 8192  # issue 15: --units 1e9 asked the allocator for exabytes; an LSTM of 8192 units is 1 GiB of weights
_units = _arg_type(int, lambda v: 1 <= v <= MAX_UNITS, f"a positive integer up to {MAX_UNITS}")
_positive_float = _arg_type(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_rate = _arg_type(float, lambda v: 0.0 <= v < 1.0, "a rate in [0, 1)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), like every other rnnkit error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _either(names, conjunction: str = "or") -> str:
    names = list(names)
    return ", ".join(names[:-1]) + f" {conjunction} " + names[-1] if len(names) > 1 else names[0]


def _per_task(help_of) -> str:
    """``task: help; ...`` over the tasks for which ``help_of(spec)`` says something."""
    return "; ".join(f"{name}: {help_of(spec)}" for name, spec in TASKS.items() if help_of(spec))


def _sample_help(flag: str) -> str:
    return _per_task(lambda spec: spec.sample_help.get(flag))


_PRESET = "(default: the task's preset, listed below)"


def _flags(settings: dict) -> str:
    """Settings as the flags that give them, in ``runs.SETTINGS`` order (``--bidirectional`` for True)."""
    shown = []
    for k in runs.SETTINGS:
        v = settings.get(k)
        if v is not None and v is not False:
            shown.append(_flag(k) if v is True else f"{_flag(k)} {v}")
    return " ".join(shown)


def _presets_table() -> str:
    """The train/summary epilog: every task's presets and quick settings, as the flags spell them."""
    rows = []
    for name, spec in TASKS.items():
        rows.append(f"  {name:<7} {_flags(spec.presets)}")
        rows.append(f"  {'':<7} --quick: {_flags(spec.quick)}")
    return ("task presets (flags override them; unless listed: --layers 1 --optimizer adam, no dropout, no "
            "clipping):\n" + "\n".join(rows))


# What --resume cannot change: the run continues with its saved settings and seed.
_NOT_WITH_RESUME = [k for k in runs.SETTINGS if k != "epochs"] + ["seed", "dtype"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cell", choices=sorted(CELLS), help=f"recurrent cell {_PRESET}")
    p.add_argument("--units", type=_units, help=f"units per recurrent layer {_PRESET}")
    p.add_argument("--layers", type=_positive_int, help="stacked recurrent layers (default 1)")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help=f"wrap each recurrent layer in Bidirectional {_PRESET}")
    p.add_argument("--dropout", type=_rate, help=f"dropout rate before the output layer {_PRESET}")
    p.add_argument("--data", help="your own data file: " + _per_task(lambda spec: spec.data_help))
    p.add_argument("--seed", type=int, help="seed for weights, data and shuffling (default 0)")
    p.add_argument("--dtype", choices=POLICIES, help="the layers' Keras dtype policy: mixed_bfloat16 multiplies in "
                   "bfloat16 (weights and the output layer stay float32; mixed_float16 needs CUDA) (default float32)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch, Keras-style.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("tour", help="print the seeds' tour of layers, shapes and the stacked summary")
    epilog = dict(epilog=_presets_table(), formatter_class=argparse.RawDescriptionHelpFormatter)

    p = sub.add_parser("train", help="train a task and write a run directory", **epilog)
    p.add_argument("task", nargs="?", choices=list(TASKS), help=f"{_either(TASKS)} (not with --resume)")
    _model_flags(p)
    p.add_argument("--epochs", type=_positive_int, help=f"epochs to train {_PRESET}; with --resume, a new total")
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int,
                   help=f"samples per step {_PRESET}; under torchrun, the global batch")
    p.add_argument("--lr", type=_positive_float, help=f"initial learning rate, cosine decay to lr/20 {_PRESET}")
    p.add_argument("--optimizer", choices=["adam", "rmsprop", "sgd"], help="optimizer (default adam)")
    p.add_argument("--clipnorm", type=_positive_float, help="clip gradients to this global norm (default: no clipping)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--quick", action="store_true", help="the task's tiny settings (seconds), for tests and a first "
                                                        "look; flags still override them (not with --resume)")
    p.add_argument("--out", help="run directory (default runs/TASK); with --resume, a branch: the run is copied "
                                 "there and continues in the copy")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out (without it, rnnkit "
                                                            "refuses and names --resume)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run with its saved settings, to the same final weights as an "
                        "uninterrupted run on the CPU; takes --epochs, --out, --data, --device, --threads")

    p = sub.add_parser("evaluate", help="score a run directory's model on its task's test set")
    p.add_argument("run_dir")
    p.add_argument("--data", help="the run's data file, when it has moved since training")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")

    p = sub.add_parser("predict", help="the outputs of a run's model on your inputs")
    p.add_argument("run_dir")
    p.add_argument("--input", required=True, help=".npy of (samples, time, features), or .csv with one sample "
                                                  "per row (time x features values, flattened)")
    p.add_argument("--output", help="write the outputs to this .npy or .csv instead of printing them")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")

    samplers = [name for name, spec in TASKS.items() if spec.sample is not None]
    p = sub.add_parser("sample", help=f"generate from a {_either(samplers)} run")
    p.add_argument("run_dir")
    defaults = SampleOptions()
    p.add_argument("--length", type=_positive_int, help=_sample_help("length"))
    p.add_argument("--temperature", type=_positive_float, default=defaults.temperature,
                   help=_sample_help("temperature") + f" (default {defaults.temperature})")
    p.add_argument("--prime", default=defaults.prime, help=_sample_help("prime") + f" (default {defaults.prime!r})")
    p.add_argument("--start", type=float, help=_sample_help("start"))
    p.add_argument("--seed", type=int, help=_sample_help("seed") + " (default: a new one each time)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")

    p = sub.add_parser("summary", help="print the model table for a task and flags", **epilog)
    p.add_argument("task", choices=list(TASKS))
    _model_flags(p)

    demo_tasks = [name for name, spec in TASKS.items() if spec.headline is not None]
    p = sub.add_parser("demo", help=f"the README's main job: {', '.join(demo_tasks)} with results, baselines, plots")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--out", help="folder for the run directories (default runs/demo; a new demo replaces the "
                                 "runs of the last one)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data and shuffling (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--verbose", action="store_true", help="one line per epoch")

    p = sub.add_parser("graph", help="draw the graph a TF1 script builds (or a saved model's layers) as SVG/PNG")
    p.add_argument("target", metavar="SCRIPT_OR_MODEL", help="a TF1 graph-mode script (.py) or a saved rnnkit model")
    p.add_argument("-o", "--out", help="picture to write, .svg or .png (default SCRIPT_graph.svg)")
    p.add_argument("--logdir", help="also write the graph for TensorBoard into this folder")
    p.add_argument("--run", action="store_true", help="run the whole script (default: stop at its first Session.run)")
    return parser


def _overrides(args) -> dict:
    """The settings given as flags (None: not given, the task's preset stays)."""
    return {k: getattr(args, k, None) for k in runs.SETTINGS}


def _resume(args) -> None:
    # None: not given (--no-bidirectional gives False and --dropout 0 gives 0.0, both refused too).
    given = [_flag(k) for k in _NOT_WITH_RESUME if getattr(args, k) is not None] + (["--quick"] if args.quick else [])
    if given:
        raise ValueError(f"train --resume: {_either(given, 'and')} cannot change a run that continues with its "
                         f"saved settings; resume takes --epochs, --out (a branch), --data, --device and --threads, "
                         f"or start a new run with `rnnkit train TASK ... --out NEW_DIR`")
    if args.overwrite and args.out is None:
        raise ValueError("train --resume: --overwrite replaces a run in --out (a branch); without --out the run "
                         "continues where it is")
    runs.resume(args.resume, epochs=args.epochs, out=args.out, data=args.data, overwrite=args.overwrite,
                device=args.device, threads=args.threads)


def _run(args) -> int:
    if args.command == "tour":
        tour()
    elif args.command == "train":
        if (args.task is None) == (args.resume is None):
            raise ValueError("train: give a TASK, or --resume RUN_DIR (not both)")
        if args.resume:
            _resume(args)
        else:
            runs.train(args.task, args.out, overrides=_overrides(args), quick=args.quick, data=args.data,
                       seed=args.seed or 0, overwrite=args.overwrite, device=args.device, threads=args.threads,
                       dtype=args.dtype)
    elif args.command == "evaluate":
        runs.evaluate(args.run_dir, args.device, data=args.data)
    elif args.command == "predict":
        runs.predict(args.run_dir, args.input, args.output, args.device)
    elif args.command == "sample":
        options = SampleOptions(length=args.length, temperature=args.temperature, prime=args.prime,
                                start=args.start, seed=args.seed)
        runs.sample(args.run_dir, options, args.device)
    elif args.command == "summary":
        task = load_task(args.task, data=args.data, seed=args.seed or 0)
        runs.model_for(task, runs.settings(task, _overrides(args)), args.dtype).summary()
    elif args.command == "demo":
        runs.demo(args.out, args.seed, args.device, args.threads, quick=args.quick, verbose=args.verbose)
    elif args.command == "graph":  # rnnkit graph (issue 18)
        print("\n".join(graph_mode.draw.graph_command(args.target, args.out, args.logdir, run=args.run)))
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    print(f"rnnkit: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return _run(args)
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
