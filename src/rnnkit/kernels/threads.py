"""One thread for small work: a training or inference loop that cannot gain from threads.

torch runs each op on its intra-op threads (``torch.get_num_threads()``,
one per core by default). For a small model every op is microseconds of
work, and each multithreaded op (an MKL GEMM, an optimizer's foreach update)
forks and joins the pool. On an idle machine that costs a few microseconds
per op; when other processes keep the cores busy, a thread waiting at the
join waits for the scheduler to run its sibling: measured on this project's
2-core machine, one ``(32, 64) @ (64, 192)`` ``torch.mm`` took 72 ms on two
threads and 0.015 ms on one, and a digits-sized ``fit`` step 550 ms against
38 ms (docs/performance.md, "Small work").

The native kernels decide per call (``native.runs_serial``, from 2^17
multiply-adds per step, where splitting starts to pay on an idle machine).
The ops around them (dense heads, losses, the optimizer) are torch's:
``one_thread_if_small`` runs a whole loop on one thread when the model's
work per step is below ``SMALL_MODEL_WORK`` (2^22), and gives torch its
thread count back afterwards; ``fit``/``evaluate``/``predict`` do so::

    with one_thread_if_small(model_work(model, batch_size)):
        for xb, yb in batches:
            ...

Work per step is estimated as parameters x batch rows (each weight takes
part in one multiply-add per row and time step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Multiply-adds per step (parameters x batch) below which a whole loop runs on one thread. Higher than the
# kernels' own per-call threshold (native.SERIAL_WORK, 2^17): a loop scoped here pays little on an idle
# machine (up to ~1.5x on its recurrent kernels near 2^22, measured; its other ops are microseconds) and,
# with other processes busy, saves the 15-80x that every fork/join of torch's ops then costs
# (docs/performance.md, "Small work").
SMALL_MODEL_WORK = 1 << 22


def small_work() -> int:
    """The threshold ``one_thread_if_small`` compares with: ``SMALL_MODEL_WORK``."""
    return SMALL_MODEL_WORK


def model_work(module: torch.nn.Module, batch_size: int) -> int:
    """Multiply-adds per time step, estimated: ``module``'s parameter count x ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    return sum(p.numel() for p in module.parameters()) * batch_size


@contextmanager
def one_thread_if_small(work: int) -> Iterator[bool]:
    """Run the block on one torch thread when ``work`` < ``small_work()``; yields whether it did.

    ``torch.set_num_threads`` is process-wide: other Python threads running
    torch ops meanwhile also get one thread until the block ends.
    """
    threads = torch.get_num_threads()
    if threads < 2 or work >= small_work():
        yield False
        return
    torch.set_num_threads(1)
    try:
        yield True
    finally:
        torch.set_num_threads(threads)
