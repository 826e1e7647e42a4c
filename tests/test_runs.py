"""rnnkit.runs and the task registry: settings, quick presets, reports and sampling per task."""

import pytest

from rnnkit import cli, runs
from rnnkit.data import TASKS, SampleOptions, load_task


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
