"""DistributedDataParallel on 2 CPU processes (gloo, 127.0.0.1 only) equals one process on the same global batches."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.torch
import torch

import rnnkit as rk
from rnnkit import distributed, files

N_SAMPLES, GLOBAL_BATCH, EPOCHS, WORLD = 21, 4, 2, 2  # 21 samples: the sampler pads and the last batch is short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(seed=0):
    torch.manual_seed(seed)
    model = rk.Sequential([
        rk.Bidirectional(rk.GRU(4, return_sequences=True), input_shape=(5, 3)),
        rk.LSTM(3),
        rk.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], clipnorm=1.0, learning_rate=0.01)
    return model


def data():
    rng = np.random.RandomState(0)
    x = rng.randn(N_SAMPLES, 5, 3).astype(np.float32)
    return x, (x[:, :, 0].sum(1) > 0).astype(np.int64) + (x[:, -1, 1] > 0.5)


# Each process runs this, with the variables torchrun would set. Process 1 seeds differently on purpose:
# DDP must copy process 0's weights and the sampler must take process 0's seed.
WORKER = textwrap.dedent("""
    import json, sys, torch
    import safetensors.torch
    sys.path.insert(0, sys.argv[2])
    from test_distributed import build, data, GLOBAL_BATCH, EPOCHS
    from rnnkit import distributed
    torch.set_num_threads(1)
    if sys.argv[3] == "torch":  # a group the user started: fit takes it as it is
        torch.distributed.init_process_group("gloo")
        ctx = distributed.active()
    else:
        ctx = distributed.init("cpu")
    try:
        model = build(seed=ctx.rank)
        history = model.fit(*data(), batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0)
        if distributed.is_main():
            safetensors.torch.save_file(model.state_dict(), sys.argv[1] + "/weights.safetensors")
            with open(sys.argv[1] + "/result.json", "w") as f:
                json.dump({"history": history.history, "seed": model.shuffle_generator.initial_seed()}, f)
        distributed.barrier()
    finally:
        distributed.cleanup()
""")


def run_processes(out_dir, world=WORLD, init="rnnkit"):
    port = free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo",
               "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(out_dir), os.path.dirname(__file__), init],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}"


def global_batches(seed, epoch, n=N_SAMPLES, batch=GLOBAL_BATCH, world=WORLD):
    """Written out without DistributedSampler: the epoch's permutation, padded from its start to a multiple
    of the world size, cut into contiguous global batches (the last one shorter)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    total = -(-n // world) * world
    perm = perm + perm[: total - n]
    return [perm[i:i + batch] for i in range(0, total, batch)]


@pytest.mark.parametrize("init", ["rnnkit", "torch"])
def test_two_processes_equal_one_process_on_the_same_global_batches(tmp_path, init):
    run_processes(tmp_path, init=init)
    result = json.loads((tmp_path / "result.json").read_text())
    got = safetensors.torch.load_file(tmp_path / "weights.safetensors")

    # One process, the same model and steps, written as a plain loop: mean loss over each whole global batch.
    model = build(seed=0)
    x, y = data()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    losses, start = [], {k: v.clone() for k, v in model.state_dict().items()}
    for epoch in range(EPOCHS):
        total, seen = 0.0, 0
        for idx in global_batches(result["seed"], epoch):
            model.optimizer.zero_grad()
            loss = model.loss(y[idx], model(x[idx]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            model.optimizer.step()
            total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
        losses.append(total / seen)

    assert got.keys() == model.state_dict().keys()
    for k, want in model.state_dict().items():
        assert not torch.equal(want, start[k]), k  # every weight trained
        torch.testing.assert_close(got[k], want, rtol=0, atol=1e-6, msg=k)
    np.testing.assert_allclose(result["history"]["loss"], losses, rtol=1e-6)


def test_global_batches_cover_each_sample_once_plus_padding():
    for epoch in range(3):
        flat = [i for b in global_batches(7, epoch) for i in b]
        assert sorted(set(flat)) == list(range(N_SAMPLES)) and len(flat) == N_SAMPLES + 1


@pytest.mark.slow
def test_cli_under_torchrun_writes_one_run_directory(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    run = tmp_path / "runs" / "series"
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}
    proc = subprocess.run(
        [torchrun, "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
         "-m", "rnnkit", "train", "series", "--epochs", "2", "--units", "4", "--batch-size", "64",
         "--device", "cpu", "--out", str(run)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("series: test MSE") == 1  # only process 0 reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and os.listdir(tmp_path / "runs") == ["series"]
    assert [p for p in os.listdir(run) if p.startswith(".")] == [files.COMMIT]  # only the commit record
    from rnnkit import checkpoint

    model, epoch, history, _ = checkpoint.load_checkpoint(run)
    assert epoch == 2 and len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["distributed"] == {"processes": 2, "backend": "gloo"}


# ------------------------------------------------------------- one process


def test_init_without_torchrun_names_the_missing_variable(monkeypatch):
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched_by_torchrun()
    with pytest.raises(ValueError, match="RANK: not set; start the processes with torchrun"):
        distributed.init()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match=r"RANK: expected a value in \[0, 2\)"):
        distributed.init()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="RANK: expected an integer >= 0, got 'one'"):
        distributed.init()
    assert distributed.active() is None and distributed.is_main()


def test_global_batch_must_split_evenly():
    ctx = distributed.Context(rank=0, world_size=4, local_rank=0, backend="gloo", device=torch.device("cpu"))
    assert distributed.local_batch_size(64, ctx) == 16
    with pytest.raises(ValueError, match="batch_size: the global batch must be a multiple of the 4 processes, got 30"):
        distributed.local_batch_size(30, ctx)


def test_one_process_group_trains_as_a_plain_run(tmp_path):
    """torchrun --nproc_per_node=1: the group exists, but fit takes the ordinary path (same numbers)."""
    run_processes(tmp_path, world=1)
    got = safetensors.torch.load_file(tmp_path / "weights.safetensors")
    model = build(seed=0)
    model.fit(*data(), batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0)
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k
