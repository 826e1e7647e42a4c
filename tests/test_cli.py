"""The `rnnkit` command through a subprocess, on tiny settings."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import safetensors.torch
import torch

from rnnkit import cli, runs


def rnnkit(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def one_line_error(proc, match):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert match in lines[0], lines[0]


@pytest.mark.slow
def test_train_evaluate_and_resume_files(tmp_path):
    run = tmp_path / "hello"
    out = rnnkit("train", "hello", "--epochs", "60", "--out", run).stdout
    assert "predicted 'ello'" in out
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "optimizer.safetensors", "optimizer.json", "trainer_state.json",
            "trainer_state.safetensors", "history.json", "metrics.json", "history.png"} <= names
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["predicted"] == "ello" and metrics["epochs"] == 60
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 60
    assert "predicted 'ello'" in rnnkit("evaluate", run).stdout


def test_errors_are_one_line(tmp_path):
    one_line_error(rnnkit("train", "digits", "--data", tmp_path / "none.npz", check=False), "does not exist")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    one_line_error(rnnkit("train", "digits", "--data", tmp_path / "bad.npz", check=False), "not a readable .npz")
    one_line_error(rnnkit("evaluate", tmp_path, check=False), "config.json")
    one_line_error(rnnkit("train", "mnist", check=False), "invalid choice: 'mnist'")
    one_line_error(rnnkit("train", "hello", "--units", "0", check=False), "expected a positive integer")
    one_line_error(rnnkit("train", check=False), "give a TASK, or --resume")
    proc = rnnkit("--debug", "evaluate", tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_summary_prints_the_table():
    out = rnnkit("summary", "series", "--cell", "lstm", "--units", "5", "--layers", "2").stdout
    assert "(None, 20, 5)" in out and "Total params: " in out
    # LSTM(5) on 1 feature: 4*5*(1+5+1) = 140; LSTM(5) on 5: 4*5*(5+5+1) = 220; Dense(1): 6.
    assert "Total params: 366" in out


@pytest.mark.slow
def test_sample_series_and_text(tmp_path):
    rnnkit("train", "series", "--epochs", "1", "--units", "8", "--out", tmp_path / "s")
    lines = rnnkit("sample", tmp_path / "s", "--length", "5").stdout.strip().splitlines()
    assert lines[0] == "t\tgenerated\ttrue" and len(lines) == 6
    assert (tmp_path / "s" / "series.png").stat().st_size > 1000
    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question. " * 20)
    rnnkit("train", "text", "--data", corpus, "--epochs", "1", "--units", "8", "--out", tmp_path / "t")
    a = rnnkit("sample", tmp_path / "t", "--prime", "to ", "--length", "30", "--seed", "1").stdout
    assert a == rnnkit("sample", tmp_path / "t", "--prime", "to ", "--length", "30", "--seed", "1").stdout
    assert a.startswith("to ") and len(a.rstrip("\n")) == 33
    one_line_error(rnnkit("sample", tmp_path / "t", "--temperature", "0", check=False), "temperature")


def test_resume_after_ctrl_c_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    """Ctrl-C right after epoch 2 is written, then --resume: the same final weights as one straight run."""
    flags = ["series", "--epochs", "4", "--units", "6", "--dropout", "0.2", "--seed", "3", "--device", "cpu"]
    monkeypatch.setattr(runs, "SAVE_EVERY", 0.0)
    assert cli.main(["train", *flags, "--out", str(tmp_path / "straight")]) == 0

    from rnnkit import checkpoint

    real_write = checkpoint.Checkpoint.write

    def write_then_interrupt(self, path):
        real_write(self, path)
        if self.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.Checkpoint, "write", write_then_interrupt)
    assert cli.main(["train", *flags, "--out", str(tmp_path / "cut")]) == 130
    assert json.loads((tmp_path / "cut" / "trainer_state.json").read_text())["epoch"] == 2
    monkeypatch.setattr(checkpoint.Checkpoint, "write", real_write)
    torch.manual_seed(99)  # the resumed run must not depend on the process's RNG state
    assert cli.main(["train", "--resume", str(tmp_path / "cut")]) == 0
    a = safetensors.torch.load_file(tmp_path / "straight" / "model.safetensors")
    b = safetensors.torch.load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha = json.loads((tmp_path / "straight" / "history.json").read_text())
    hb = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert ha == hb


@pytest.mark.slow
def test_real_sigint_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "digits", "--epochs", "1000", "--units", "8",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "trainer_state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    epoch = json.loads((run / "trainer_state.json").read_text())["epoch"]
    assert not [p for p in os.listdir(run) if ".tmp-" in p]
    from rnnkit.checkpoint import load_checkpoint

    _, loaded_epoch, history, _ = load_checkpoint(run)
    assert loaded_epoch == epoch and len(history.get("loss", [])) == epoch


@pytest.mark.slow
def test_demo_quick(tmp_path):
    out = rnnkit("demo", "--quick", "--out", tmp_path).stdout
    assert "demo finished" in out and "predicts 'ello'" in out and "persistence MSE" in out
    for png in ("hello/history.png", "digits/confusion.png", "digits/history.png", "series/series.png"):
        assert (tmp_path / png).stat().st_size > 1000
    metrics = json.loads((tmp_path / "digits" / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and np.isfinite(metrics["test"]["loss"])
