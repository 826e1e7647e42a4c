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

import rnnkit as rk
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
    # A job started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: the child gets Ctrl-C's default disposition back, whatever ran pytest.
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "digits", "--epochs", "1000", "--units", "8",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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


# ------------------------------------------------------- runs are never lost


def run_files(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_train_refuses_an_existing_run_unless_overwrite(tmp_path, capsys):
    run = tmp_path / "h"
    flags = ["train", "hello", "--quick", "--epochs", "3", "--device", "cpu", "--out", str(run)]
    assert cli.main(flags) == 0
    out = capsys.readouterr().out
    assert f"run directory: {run}\nplots: {run / 'history.png'}" in out
    before = run_files(run)
    assert cli.main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rnnkit: error: out: {run} already holds a run at epoch 3 of 3; continue it with "
                   f"`rnnkit train --resume {run} --epochs N`, or train into a new --out (--overwrite replaces it)"]
    assert run_files(run) == before  # nothing touched
    assert cli.main([*flags[:-2], "--out", str(run), "--overwrite", "--seed", "1"]) == 0
    assert run_files(run)["model.safetensors"] != before["model.safetensors"]
    # A folder of other files is never a run to replace, even with --overwrite.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert cli.main([*flags[:-2], "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_interrupted_run_names_the_ways_forward_and_keeps_its_plot(tmp_path, monkeypatch, capsys):
    real = runs.RunCheckpoint.on_epoch_end

    def end_then_interrupt(self, epoch, logs=None):
        real(self, epoch, logs)
        if self.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runs.RunCheckpoint, "on_epoch_end", end_then_interrupt)
    run = tmp_path / "s"
    assert cli.main(["train", "series", "--epochs", "4", "--units", "4", "--device", "cpu", "--out", str(run)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rnnkit: interrupted: {run} holds epoch 2 of 4; plot {run / 'history.png'}; continue it with "
                   f"`rnnkit train --resume {run}`, or train into a new --out (--overwrite replaces it)"]
    assert (run / "history.png").stat().st_size > 1000
    monkeypatch.setattr(runs.RunCheckpoint, "on_epoch_end", real)
    # Re-running the same command instead of --resume is refused the same way.
    assert cli.main(["train", "series", "--epochs", "4", "--units", "4", "--out", str(run)]) == 2
    assert f"already holds a run at epoch 2 of 4; continue it with `rnnkit train --resume {run}`" in \
        capsys.readouterr().err


def test_resume_branches_into_a_new_out_and_refuses_what_it_cannot_honour(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["train", "series", "--epochs", "2", "--units", "4", "--device", "cpu", "--out", str(a)]) == 0
    before = run_files(a)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(a), "--epochs", "3", "--out", str(b)]) == 0
    assert f"resuming series from {a} at epoch 2/3, continuing in {b}" in capsys.readouterr().out
    assert run_files(a) == before  # the source run is left as it was
    assert json.loads((b / "trainer_state.json").read_text())["epoch"] == 3
    assert len(json.loads((b / "history.json").read_text())["loss"]) == 3
    assert json.loads((b / "metrics.json").read_text())["settings"]["epochs"] == 3
    # A branch into a folder holding a run is refused like train; --overwrite replaces it.
    assert cli.main(["train", "--resume", str(a), "--epochs", "4", "--out", str(b)]) == 2
    assert f"out: {b} already holds a run at epoch 3 of 3" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(a), "--epochs", "4", "--out", str(b), "--overwrite"]) == 0
    assert json.loads((b / "trainer_state.json").read_text())["epoch"] == 4
    # Flags that would change the trained model are refused by name, before anything runs.
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(a), "--units", "3", "--lr", "0.1", "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train --resume: --units, --lr and --seed cannot change a run" in err[0]
    assert "--epochs, --out (a branch), --data" in err[0]
    assert cli.main(["train", "--resume", str(a), "--no-bidirectional", "--dropout", "0"]) == 2
    assert "train --resume: --bidirectional and --dropout cannot change" in capsys.readouterr().err
    assert run_files(a) == before


def test_version_and_help_show_the_presets():
    assert rnnkit("--version").stdout.strip() == f"rnnkit {rk.__version__}"
    help_text = rnnkit("train", "--help").stdout
    assert "task presets" in help_text and "--cell gru --units 64 --bidirectional --dropout 0.2" in help_text
    for flag in ("--epochs", "--batch-size", "--overwrite", "--resume", "--out", "--data"):
        line = next(i for i, text in enumerate(help_text.splitlines()) if text.strip().startswith(flag))
        # argparse puts the help on the flag's line or the next one; an undocumented flag has neither.
        assert len(" ".join(help_text.splitlines()[line:line + 2]).split()) > 3, flag


# --------------------------------------------------------- predict, --data, sample


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "d"
    runs.train("digits", run, quick=True, device="cpu", verbose=0, print_fn=lambda *_: None)
    return run


def test_predict_reads_npy_and_csv(digits_run, tmp_path, capsys):
    from rnnkit.data import load_run

    x = load_run(digits_run, device="cpu").task().x_test[:3]
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x.reshape(3, -1), delimiter=",", header="three digits, one a row")
    expected = load_run(digits_run, device="cpu").model.predict(x)
    assert cli.main(["predict", str(digits_run), "--input", str(tmp_path / "x.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "class," + ",".join(f"p{i}" for i in range(10)) and len(lines) == 4
    assert [int(line.split(",")[0]) for line in lines[1:]] == expected.argmax(-1).tolist()
    np.testing.assert_allclose([[float(v) for v in line.split(",")[1:]] for line in lines[1:]], expected, rtol=1e-5)
    assert cli.main(["predict", str(digits_run), "--input", str(tmp_path / "x.csv")]) == 0
    assert capsys.readouterr().out.strip().splitlines() == lines
    assert cli.main(["predict", str(digits_run), "--input", str(tmp_path / "x.csv"), "--output",
                     str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5)
    np.save(tmp_path / "bad.npy", np.zeros((2, 8, 5), np.float32))
    capsys.readouterr()
    assert cli.main(["predict", str(digits_run), "--input", str(tmp_path / "bad.npy")]) == 2
    assert "input: expected (samples, time, 8) like the training data's (8, 8), got an array of shape (2, 8, 5)" \
        in capsys.readouterr().err


def test_evaluate_and_resume_take_data_when_the_file_moved(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question. " * 20)
    run = tmp_path / "t"
    assert cli.main(["train", "text", "--data", str(corpus), "--epochs", "1", "--units", "4", "--device", "cpu",
                     "--out", str(run)]) == 0
    moved = corpus.rename(tmp_path / "moved.txt")
    capsys.readouterr()
    assert cli.main(["evaluate", str(run)]) == 2
    assert f"this run was trained on {corpus}, which no longer exists; give its new place with --data" in \
        capsys.readouterr().err
    assert cli.main(["evaluate", str(run), "--data", str(moved)]) == 0
    assert "text: test loss" in capsys.readouterr().out
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--data", str(moved)]) == 0
    assert json.loads((run / "config.json").read_text())["task"]["data"] == str(moved)
    assert cli.main(["evaluate", str(run)]) == 0  # the new place is kept


def test_sample_warns_when_it_extrapolates(tmp_path, capsys):
    run = tmp_path / "s"
    runs.train("series", run, quick=True, device="cpu", verbose=0, print_fn=lambda *_: None)
    assert cli.main(["sample", str(run), "--length", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and len(captured.out.strip().splitlines()) == 4
    assert cli.main(["sample", str(run), "--start", "1000", "--length", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "rnnkit: warning: series: t from 1000 to 1002.2 leaves the training data's range [0, 30]; the model "
        "extrapolates, and its values there mean little"]
    assert captured.out.splitlines()[1].startswith("1002.0\t")
