"""Crash-safe run directories: SIGKILL while saving loses nothing; a NaN loss keeps the last good checkpoint."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import safetensors.torch
import torch

import rnnkit as rk
from rnnkit import checkpoint, cli, files, runs, serialization
from rnnkit.callbacks import LearningRateScheduler, TerminateOnNaN
from rnnkit.checkpoint import ModelCheckpoint

# hello: one sample, one step per epoch; dropout makes the RNG state part of what must survive.
FLAGS = ["hello", "--epochs", "5", "--units", "4", "--dropout", "0.3", "--seed", "2", "--device", "cpu"]
KILL_EPOCH = 3  # the checkpoint being written when the process dies

# A training run that SIGKILLs itself at one chosen point while writing the KILL_EPOCH checkpoint: before the
# n-th os.fsync or os.replace of that write ("torn" also cuts the file being fsynced to half its size).
CHILD = textwrap.dedent("""
    import os, signal, sys
    from rnnkit import checkpoint, cli, runs
    kind, n, epoch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runs.SAVE_EVERY = 0.0
    counts, armed = {"fsync": 0, "replace": 0}, [False]
    real = {"fsync": os.fsync, "replace": os.replace}

    def hook(name):
        def call(*args):
            if armed[0]:
                counts[name] += 1
                if kind.endswith(name) and counts[name] == n:
                    if kind == "torn-fsync":
                        os.ftruncate(args[0], os.fstat(args[0]).st_size // 2)
                    os.kill(os.getpid(), signal.SIGKILL)
            return real[name](*args)
        return call

    os.fsync, os.replace = hook("fsync"), hook("replace")
    real_write = checkpoint.Checkpoint.write

    def write(self, path):
        armed[0] = self.epoch == epoch
        return real_write(self, path)

    checkpoint.Checkpoint.write = write
    sys.exit(cli.main(sys.argv[4:]))
""")

# (kind, n): a half-written temporary file; temporary files complete but not committed; the commit record
# written but nothing renamed; part of the files renamed; all renamed, the folder not yet fsynced.
KILL_POINTS = [("torn-fsync", 1), ("fsync", 4), ("replace", 1), ("replace", 2), ("replace", 5), ("replace", 8),
               ("fsync", 11)]


def weights(folder):
    return safetensors.torch.load_file(os.path.join(folder, "model.safetensors"))


def equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, request):
    """An uninterrupted run, and the weights its checkpoint held after each epoch."""
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setattr(runs, "SAVE_EVERY", 0.0)
    per_epoch = {}
    real_write = checkpoint.Checkpoint.write

    def write(self, path):
        per_epoch[self.epoch] = {k: v.clone() for k, v in self.weights.items()}
        return real_write(self, path)

    mp.setattr(checkpoint.Checkpoint, "write", write)
    out = tmp_path_factory.mktemp("straight")
    assert cli.main(["train", *FLAGS, "--out", str(out)]) == 0
    return out, per_epoch


@pytest.mark.slow
def test_sigkill_while_saving_keeps_a_whole_checkpoint_and_resume_matches(tmp_path, straight, monkeypatch):
    out, per_epoch = straight
    monkeypatch.setattr(runs, "SAVE_EVERY", 0.0)
    outcomes = set()
    for kind, n in KILL_POINTS:
        run = tmp_path / f"{kind}-{n}"
        proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(KILL_EPOCH), "train", *FLAGS,
                               "--out", str(run)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, (kind, n, proc.stdout, proc.stderr)
        # Loadable as it lies, before anything cleans up: the last checkpoint or the one being written, whole.
        before = sorted(os.listdir(run))
        model, epoch, history, _ = checkpoint.load_checkpoint(run)
        assert sorted(os.listdir(run)) == before  # loading changes nothing on disk
        assert epoch in (KILL_EPOCH - 1, KILL_EPOCH), (kind, n, epoch)
        assert equal({k: v for k, v in model.state_dict().items()}, per_epoch[epoch]), (kind, n)
        assert len(history["loss"]) == epoch
        outcomes.add(epoch)
        torch.manual_seed(1234)  # the resumed run must not depend on this process's RNG state
        assert cli.main(["train", "--resume", str(run)]) == 0
        assert equal(weights(run), weights(out)), (kind, n)
        assert json.loads((run / "history.json").read_text()) == json.loads((out / "history.json").read_text())
        # leftovers were cleaned; the commit record stays (it holds the tensor files' SHA-256)
        assert [p for p in os.listdir(run) if p.startswith(".")] == [files.COMMIT], (kind, n)
    assert outcomes == {KILL_EPOCH - 1, KILL_EPOCH}  # the points fall on both sides of the commit


SAVER = textwrap.dedent("""
    import sys, torch
    from rnnkit import checkpoint, Sequential, LSTM, Dense
    torch.manual_seed(0)
    model = Sequential([LSTM(32, input_shape=(4, 8)), Dense(16)])
    model.compile("adam", "mse")
    for epoch in range(1, 10**9):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(epoch)  # every tensor says which epoch wrote it
        checkpoint.save_checkpoint(sys.argv[1], model, epoch, {"loss": [float(e) for e in range(epoch)]})
        if epoch == 1:
            print("saved", flush=True)
""")


@pytest.mark.slow
def test_sigkill_at_random_times_in_a_loop_of_saves(tmp_path):
    rng = random.Random(0)
    for rep in range(4):
        run = tmp_path / f"r{rep}"
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(run)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait(timeout=60)
        model, epoch, history, _ = checkpoint.load_checkpoint(run)
        assert epoch >= 1 and history["loss"] == [float(e) for e in range(epoch)]
        assert all(torch.all(p == epoch) for p in model.parameters()), rep
        # A kill after the commit point leaves .commit.json: the loader follows it to the new files,
        # while the raw model.safetensors may still be the old one until the renames are finished.
        files.clean_leftovers(run)
        assert [p for p in os.listdir(run) if p.startswith(".")] == [files.COMMIT]  # only the commit record
        assert all(torch.all(p == epoch) for p in weights(run).values()), rep
        assert checkpoint.load_checkpoint(run)[1] == epoch


# ------------------------------------------------------------ non-finite loss


def regression_model():
    torch.manual_seed(0)
    model = rk.Sequential([rk.GRU(4, input_shape=(5, 2)), rk.Dense(1)])
    model.compile("adam", "mse", learning_rate=0.01)
    return model


def regression_data():
    rng = np.random.RandomState(0)
    x = rng.randn(16, 5, 2).astype(np.float32)
    return x, x.sum((1, 2))[:, None]


def explode_at(epoch):
    """A learning rate of 1e30 from ``epoch`` on: the weights overflow and the loss becomes inf/NaN."""
    return LearningRateScheduler(lambda e, lr: 0.01 if e < epoch else 1e30)


def test_terminate_on_nan_stops_and_the_checkpoint_keeps_the_last_good_epoch(tmp_path):
    x, y = regression_data()
    reference = regression_model()
    reference.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[explode_at(2)])

    model = regression_model()
    ckpt = ModelCheckpoint(tmp_path / "best", monitor="loss")
    history = model.fit(x, y, batch_size=4, epochs=6, shuffle=False, verbose=0,
                        callbacks=[explode_at(2), TerminateOnNaN(), ckpt])
    losses = history.history["loss"]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses[:2]) and not math.isfinite(losses[2])
    assert not all(torch.isfinite(p).all() for p in model.parameters())  # the exploded weights stay in memory
    saved = serialization.load_model(tmp_path / "best")  # ... but the file holds epoch 2, the last good one
    for (k, a), b in zip(reference.state_dict().items(), saved.state_dict().values()):
        assert torch.equal(a, b), k


def test_cli_stops_on_nan_with_one_line_and_keeps_the_last_good_epoch(tmp_path, monkeypatch, capsys):
    # series: an mse loss, so weights of 1e30 overflow it (a probability loss is clipped and stays finite).
    flags = ["series", "--epochs", "6", "--units", "4", "--batch-size", "256", "--seed", "1", "--device", "cpu"]
    monkeypatch.setattr(runs, "SAVE_EVERY", 0.0)
    monkeypatch.setattr(runs, "_cosine", lambda lr, epochs: lambda e, _lr: 0.05 if e < 2 else 1e30)
    assert cli.main(["train", *flags, "--epochs", "2", "--out", str(tmp_path / "good")]) == 0
    capsys.readouterr()
    assert cli.main(["train", *flags, "--out", str(tmp_path / "nan")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became" in err[0] and "epoch 2" in err[0], err
    model, epoch, history, _ = checkpoint.load_checkpoint(tmp_path / "nan")
    assert epoch == 2 and all(math.isfinite(v) for v in history["loss"])
    assert equal(weights(tmp_path / "nan"), weights(tmp_path / "good"))


def test_clipnorm_with_a_non_finite_gradient_raises_nothing_and_the_step_writes_nan():
    """What docs/guarantees.md states: clip_grad_norm_(error_if_nonfinite=False), so the step goes through."""
    model = regression_model()
    model.compile("sgd", lambda y, p: ((y - p) ** 2).mean() * float("inf"), clipnorm=1.0)
    x, y = regression_data()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not math.isfinite(history.history["loss"][0])
    assert all(torch.isnan(p).all() for p in model.parameters())
