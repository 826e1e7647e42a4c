"""A small ``fit`` with another process busy on the machine (issue 14, "robust under load").

On a machine whose cores are all busy, a thread of ours that waits at a
barrier for a sibling thread waits for the scheduler to run that sibling
(milliseconds), not for its work (microseconds). Small work split over the
threads pays that wait on every step. This times a few small ``fit`` calls
(the digits and hello tasks' sizes) with torch's default threads and with one
thread, with and without a competitor process spinning on one core, and the
sequence kernel alone across work sizes (``--sweep``) to place the threshold
below which the native kernels run single-threaded.

    python benchmarks/bench_load.py                  # fit timings, JSON to benchmarks/load.json
    python benchmarks/bench_load.py --sweep          # kernel timings by work size, forced serial or not
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from bench_rnn import cpu_info  # benchmarks/ is the script's folder

import rnnkit as rk
from rnnkit.kernels import native
from rnnkit.kernels.threads import model_work, one_thread_if_small

# name: (cell, units, batch, steps, features, bidirectional, dropout)
TASKS = {
    "digits": ("GRU", 64, 32, 8, 8, True, 0.2),  # the digits task's presets (8x8 images, row by row)
    "hello": ("SimpleRNN", 8, 1, 4, 4, False, 0.0),  # the hello task: batch 1, 8 units
    "lstm_small": ("LSTM", 32, 16, 20, 8, False, 0.0),
}


def busy():
    """A competitor: one process spinning on a core."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def fit_seconds(task: str, batches: int, scoped: bool = False) -> float:
    cell, units, batch, steps, features, bidi, drop = TASKS[task]
    torch.manual_seed(0)
    layer = getattr(rk, cell)(units, dropout=drop)
    model = rk.Sequential([rk.Bidirectional(layer) if bidi else layer, rk.Dense(10, activation="softmax")], input_shape=(steps, features))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((batch * batches, steps, features)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, batch * batches)
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # warm up
    t = time.perf_counter()
    with one_thread_if_small(model_work(model, batch) if scoped else 1 << 62):  # the proposed fit hook
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return (time.perf_counter() - t) / batches * 1e3  # ms per batch


def fits(rounds: int, batches: int) -> dict:
    default = torch.get_num_threads()
    out = {}
    for load in (False, True):
        proc = busy() if load else None
        try:
            for task in TASKS:
                threshold = native.serial_work()
                # "split": every call on torch's threads (threshold 0: the kernels before this change)
                # "scoped": the fit inside kernels.threads.one_thread_if_small (the proposed fit hook)
                modes = {f"threads={default} split": (default, 0, False), f"threads={default}": (default, threshold, False),
                         f"threads={default} scoped": (default, threshold, True), "threads=1": (1, threshold, False)}
                runs = {k: [] for k in modes}
                for _ in range(rounds):  # interleaved
                    for k, (threads, work, scoped) in modes.items():
                        torch.set_num_threads(threads)
                        native.set_serial_work(work)
                        runs[k].append(fit_seconds(task, batches, scoped))
                torch.set_num_threads(default)
                native.set_serial_work(threshold)
                key = f"{task}{' busy' if load else ''}"
                out[key] = {k: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v)}
                            for k, v in runs.items()}
                print(key, {k: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for k, v in runs.items()},
                      flush=True)
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    return out


def sweep(rounds: int) -> dict:
    """Forward + backward of the native kernel, per work size, serial or threaded (threshold forced)."""
    out = {}
    threshold = native.serial_work()
    for cell in ("GRU", "LSTM"):
        for batch in (1, 8, 32, 64):
            for units in (32, 64, 128, 256):
                layer = getattr(rk, cell)(units, return_sequences=False, unroll=False)
                x = torch.randn(batch, 50, 16, requires_grad=True)
                layer(x[:, :20])  # build
                res = {"serial": [], "threaded": []}

                def step(layer=layer, x=x, batch=batch):
                    layer(x, mask=torch.ones(batch, 50, dtype=torch.bool)).sum().backward()  # mask: native route

                for _ in range(rounds):
                    for mode in res:
                        native.set_serial_work(1 << 62 if mode == "serial" else 0)
                        step()
                        t = time.thread_time()
                        w = time.perf_counter()
                        for _ in range(3):
                            step()
                        res[mode].append(((time.perf_counter() - w) / 3 * 1e3, (time.thread_time() - t) / 3 * 1e3))
                native.set_serial_work(threshold)
                gates = {"GRU": 3, "LSTM": 4}[cell]
                key = f"{cell} B{batch} H{units}"
                out[key] = {"work": batch * units * gates * units,
                            **{m: statistics.median(w for w, _ in v) for m, v in res.items()}}
                print(key, out[key], flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--out", default=str(Path(__file__).with_name("load.json")))
    a = p.parse_args()
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "cpu": cpu_info(),
              "threads": torch.get_num_threads(), "serial_work": native.serial_work()}
    if a.sweep:
        result["sweep"] = sweep(a.rounds)
    else:
        result["fit"] = fits(a.rounds, a.batches)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
