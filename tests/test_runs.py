"""rnnkit.runs and the task registry: settings, quick presets, reports and sampling per task; runs loaded in
Python (rnnkit.data.load_run); plots, tour and summary output."""

import numpy as np
import pytest

from rnnkit import cli, runs
from rnnkit.data import TASKS, SampleOptions, load_task
from rnnkit.tour import tour


def test_every_task_is_registered_once_with_valid_settings():
    assert list(TASKS) == ["hello", "digits", "series", "text"]
    for name, spec in TASKS.items():
        assert spec.name == name
        assert set(spec.quick) <= set(runs.SETTINGS), name
        assert set(spec.sample_help) <= set(SampleOptions.__dataclass_fields__), name
        assert (spec.sample is None) == (not spec.sample_help), name


def test_settings_take_presets_then_quick_then_flags():
    task = load_task("series")
    s = runs.settings(task)
    assert s["units"] == task.presets["units"] and s["optimizer"] == "adam" and s["clipnorm"] is None
    assert runs.settings(task, quick=True)["units"] == TASKS["series"].quick["units"]
    s = runs.settings(task, {"units": 3, "cell": None}, quick=True)
    assert s["units"] == 3 and s["cell"] == task.presets["cell"]
    with pytest.raises(ValueError, match="'colour'"):
        runs.settings(task, {"colour": "red"})


def test_quick_run_evaluates_and_a_task_without_sampling_says_so(tmp_path, capsys):
    metrics = runs.train("hello", tmp_path / "h", quick=True, device="cpu", verbose=0, print_fn=lambda *_: None)
    assert metrics["settings"]["epochs"] == TASKS["hello"].quick["epochs"]
    assert runs.evaluate(tmp_path / "h", "cpu", print_fn=lambda *_: None)["test"] == metrics["test"]
    with pytest.raises(ValueError, match="hello task does not generate; sample works for series and text"):
        runs.sample(tmp_path / "h", device="cpu")
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(tmp_path / "h"), "--quick"]) == 2
    assert "train --resume: --quick cannot change a run that continues with its saved settings" in \
        capsys.readouterr().err


def test_load_run_samples_and_predicts_in_python(tmp_path):
    from rnnkit.data import load_run

    corpus = tmp_path / "c.txt"
    corpus.write_text("to be or not to be, that is the question. " * 20)
    runs.train("text", tmp_path / "t", data=corpus, quick=True, device="cpu", verbose=0, print_fn=lambda *_: None)
    run = load_run(tmp_path / "t", device="cpu")
    assert run.task_name == "text" and run.config["settings"]["units"] == TASKS["text"].quick["units"]
    text = run.sample(prime="to ", length=40, temperature=0.5, seed=3)
    assert len(text) == 40 and set(text) <= set(run.config["info"]["vocab"])
    assert text == run.sample(SampleOptions(prime="to ", length=40, temperature=0.5, seed=3))
    x = run.task().x_train[:2]
    probs = run.predict(x)
    assert probs.shape == (2, 64, len(run.config["info"]["vocab"]))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"character ids must lie in \[0, "):
        run.predict(x + 1000)


def test_history_plot_uses_a_log_loss_axis_when_the_range_is_wide_and_labels_its_axes(monkeypatch, tmp_path):
    from rnnkit import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)
    wide = {"loss": [10.0, 1.0, 0.1, 0.05], "val_loss": [9.0, 2.0, 0.2, 0.1], "accuracy": [0.01, 0.5, 0.9, 0.99]}
    plots.plot_history(wide, tmp_path / "h.png")
    plots.plot_history({"loss": [1.0, 0.8, 0.7]}, tmp_path / "h.png")
    loss_ax, acc_ax = figures[0].axes
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel(), acc_ax.get_ylabel()) == ("epoch", "loss", "accuracy")
    assert figures[1].axes[0].get_yscale() == "linear"
    plots.plot_series(np.arange(3.0), [0, 1, 2], [1, 2, 3], [1, 2, 3], tmp_path / "s.png",
                      t_gen=np.arange(3.0, 5.0), generated=[3, 4], truth_gen=[3, 4])
    assert all(ax.get_xlabel() == "t" and ax.get_ylabel() == "signal" for ax in figures[2].axes)


def test_tour_prints_rounded_numbers_and_summary_columns_stay_apart():
    import re

    lines = []
    tour(print_fn=lines.append)
    text = "\n".join(lines)
    assert "-0.0075" in text and not re.search(r"\d\.\d{5,}", text)
    task = load_task("digits")
    table = []
    runs.model_for(task, runs.settings(task)).summary(print_fn=table.append)
    row = next(line for line in table[0].splitlines() if line.startswith("bidirectional"))
    assert re.match(r"bidirectional(_\d+)? \(Bidirectional\) {2,}\(None, 128\) {2,}28416$", row), row
