"""Training on several processes with PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

    torchrun --nproc_per_node=2 -m rnnkit train series --batch-size 64 --out runs/series

or, in a script started the same way::

    from rnnkit import distributed
    ctx = distributed.init()                # joins the group torchrun describes (gloo on CPU, nccl on GPU)
    model = build_model(...).to(ctx.device)
    model.compile("adam", "mse")
    model.fit(x, y, batch_size=64, epochs=10)   # 64 is the global batch: 32 per process with 2 processes
    if distributed.is_main():
        save_checkpoint("runs/mine", model, epoch=10)
    distributed.barrier()                   # nobody leaves while process 0 writes
    distributed.cleanup()

While a group of more than one process is active, ``fit`` trains like this
(nothing changes for a single process):

* The model is wrapped in ``DistributedDataParallel`` for the training
  forward pass. Its backward averages the gradients of all N processes.
  Every parameter must take part in the loss (``find_unused_parameters`` is
  off): rnnkit's layers always use all their weights.
* ``batch_size`` is the global batch ``B``; it must be a multiple of N and
  each process takes ``b = B / N`` samples of it. A ``DistributedSampler``
  (``set_epoch(epoch)`` every epoch, seeded from process 0) deals the
  samples. Every process gets the same number of samples (the sampler
  repeats up to N - 1 of them when N does not divide the count), so in every
  step all local batches have the same size ``b'`` and

      mean over processes of (mean loss over b' local samples) = mean loss over the N b' samples,

  the same loss (and gradient) a single process computes on the whole
  global batch. Global batch ``s`` is the slice ``[s B, (s + 1) B)`` of the
  sampler's padded permutation, dealt round-robin.
* Each batch's logs (loss, metrics) are averaged across processes, so every
  callback sees the same numbers and takes the same decision (stopping on a
  NaN loss, say) on every process; validation runs whole on each process.
* Only process 0 prints progress.

The ``rnnkit train`` command also writes the run directory from process 0
only, waits for it at a barrier and gives each process its own dropout
stream. Tested on CPU with gloo (``tests/test_distributed.py``); nccl on GPU
uses the same code with the model on ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Set by torchrun for every process it starts (torch.distributed's "env://" rendezvous).
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """This process's place in the group: ``rank`` of ``world_size``, and where its model lives."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


_context: Context | None = None


def launched_by_torchrun() -> bool:
    """True when the environment describes a process group (torchrun sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def _env_int(name: str, minimum: int) -> int:
    text = os.environ.get(name)
    if text is None:
        raise ValueError(f"{name}: not set; start the processes with torchrun --nproc_per_node=N "
                         f"(it sets {', '.join(ENV_VARS)})")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def init(device="auto", timeout_s: float = 600.0) -> Context:
    """Join the process group described by torchrun's environment variables; returns this process's ``Context``.

    device: "auto" (CUDA when present), "cpu" or "cuda". On CUDA the process
    uses ``cuda:LOCAL_RANK`` and the nccl backend; on CPU, gloo.
    timeout_s: how long collective calls wait for the other processes.
    Calling it again returns the same context.
    """
    global _context
    if _context is not None and dist.is_initialized():
        return _context
    rank, world = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    if rank >= world:
        raise ValueError(f"RANK: expected a value in [0, {world}) for WORLD_SIZE={world}, got {rank}")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ValueError(f"{name}: not set; start the processes with torchrun --nproc_per_node=N")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda' under torchrun (each process takes "
                         f"cuda:LOCAL_RANK), got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda:
        if not torch.cuda.is_available():
            raise ValueError("device: 'cuda' asked for, but torch sees no CUDA device")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK: {local_rank} but only {torch.cuda.device_count()} CUDA devices are visible")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
    _context = Context(rank, world, local_rank, backend, dev)
    return _context


def active() -> Context | None:
    """The context while a group of two or more processes is active, else None (train as one process).

    A group started with ``torch.distributed.init_process_group`` rather than
    ``init()`` is taken as it is (nccl: the current CUDA device; gloo: CPU).
    """
    global _context
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    if _context is None:
        backend = dist.get_backend()
        dev = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        _context = Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), backend, dev)
    return _context


def is_main() -> bool:
    """True on process 0, and in a run of one process: the one that prints and writes files."""
    ctx = active()
    return ctx is None or ctx.rank == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for without a group)."""
    if dist.is_initialized():
        if _context is not None and _context.backend == "nccl":
            dist.barrier(device_ids=[_context.local_rank])
        else:
            dist.barrier()


def cleanup() -> None:
    """Leave the process group (safe to call when none is active)."""
    global _context
    if dist.is_initialized():
        dist.destroy_process_group()
    _context = None


# ------------------------------------------------------------------ for fit


def local_batch_size(batch_size: int, ctx: Context) -> int:
    """Each process's share ``B / N`` of the global batch ``B``."""
    if batch_size % ctx.world_size:
        raise ValueError(f"batch_size: the global batch must be a multiple of the {ctx.world_size} processes, "
                         f"got {batch_size}")
    return batch_size // ctx.world_size


def broadcast_int(value: int, ctx: Context) -> int:
    """Process 0's ``value``, on every process."""
    t = torch.tensor([int(value)], dtype=torch.int64, device=ctx.device)
    dist.broadcast(t, src=0)
    return int(t.item())


def sampler(n: int, seed: int, shuffle: bool, ctx: Context) -> torch.utils.data.DistributedSampler:
    """This process's share of ``n`` samples; call ``set_epoch(epoch)`` before each epoch for a new order."""
    return torch.utils.data.DistributedSampler(range(n), num_replicas=ctx.world_size, rank=ctx.rank,
                                               shuffle=shuffle, seed=seed, drop_last=False)


def wrap(model: torch.nn.Module, ctx: Context) -> torch.nn.parallel.DistributedDataParallel:
    """``DistributedDataParallel`` around ``model`` (its weights are copied from process 0 to the others)."""
    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=False)


def mean_across(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """The mean of each value over all processes (every process must pass the same keys, in the same order)."""
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(values, (t / ctx.world_size).tolist()))
