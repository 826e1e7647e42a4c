"""TF1's ``dynamic_rnn``/``static_rnn`` on the v1 LSTM and GRU: the fused path against the readable loop.

Workload (the seeds' row-by-row MNIST): batch 128, 28 steps, 28 features,
128 units, a dense head (10 classes) on the last output.

* ``train``: one training step: forward, cross-entropy, backward, Adam;
* ``infer``: the forward pass under ``torch.no_grad()``.

Contenders, each on the same cell object:

* ``dynamic_rnn`` and ``static_rnn`` (the steps as a list): what a TF1 port calls;
* ``reference``: ``RNN(cell, unroll=True)``, the cell's own TF1 step once per
  time step, which is what both functions ran before the v1 cells had a core form.

They run in interleaved rounds (every contender once per round, so machine
noise hits all alike); the table shows medians (and minima) in ms and each
one's speed-up over ``reference`` (median over median). The kernel each ran is printed from ``cell.kernel_used``.

    python benchmarks/bench_v1.py               # 20 rounds
    python benchmarks/bench_v1.py --rounds 5    # a short run
    PYTHONPATH=/path/to/other/src python benchmarks/bench_v1.py   # the same numbers for another checkout
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import rnnkit as rk
from rnnkit import v1

BATCH, STEPS, FEATURES, UNITS, CLASSES = 128, 28, 28, 128, 10
CELLS = {"BasicLSTMCell": v1.BasicLSTMCell, "GRUCell": v1.GRUCell}


class Model(nn.Module):
    """A v1 cell run by ``how`` ("dynamic_rnn", "static_rnn" or "reference"), then a dense head on the last output."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.head = nn.Linear(UNITS, CLASSES)
        self.reference = rk.RNN(cell, return_sequences=True, return_state=True, unroll=True)

    def forward(self, x, how):
        if how == "dynamic_rnn":
            last = v1.dynamic_rnn(self.cell, x)[0][:, -1]
        elif how == "static_rnn":
            last = v1.static_rnn(self.cell, list(x.unbind(1)))[0][-1]
        else:
            last = self.reference(x)[0][:, -1]
        return self.head(last)


def contenders(model, x, y):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(how):
        def step():
            optimizer.zero_grad()
            F.cross_entropy(model(x, how), y).backward()
            optimizer.step()

        return step

    def infer(how):
        def step():
            with torch.no_grad():
                model(x, how)

        return step

    hows = ("dynamic_rnn", "static_rnn", "reference")
    return {mode: {how: make(how) for how in hows} for mode, make in (("train", train), ("infer", infer))}


def kernel_of(model, x, how):
    model(x, how)
    layer = model.reference if how == "reference" else model.cell
    return getattr(layer, "kernel_used", "?")  # an older rnnkit records nothing on the cell


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(BATCH, STEPS, FEATURES)
    y = torch.randint(0, CLASSES, (BATCH,))
    print(f"rnnkit from {rk.__file__}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"batch {BATCH}, {STEPS} steps, {FEATURES} features, {UNITS} units; median ms of {args.rounds} rounds\n")
    print(f"{'cell':<14} {'mode':<6} {'contender':<12} {'median':>8} {'min':>8} {'speed-up':>9}  kernel")
    for name, make in CELLS.items():
        model = Model(make(UNITS, input_size=FEATURES))
        runs = contenders(model, x, y)
        kernels = {how: kernel_of(model, x, how) for how in runs["train"]}
        for mode, fns in runs.items():
            times = {how: [] for how in fns}
            for fn in fns.values():  # warm-up
                fn()
            for _ in range(args.rounds):
                for how, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    times[how].append(1e3 * (time.perf_counter() - start))
            ref = statistics.median(times["reference"])
            for how, ts in times.items():
                ms = statistics.median(ts)
                print(f"{name:<14} {mode:<6} {how:<12} {ms:8.2f} {min(ts):8.2f} {ref / ms:8.2f}x  {kernels[how]}")


if __name__ == "__main__":
    main()
