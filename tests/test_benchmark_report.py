"""The label-fraction report renders from a multirun folder, and a failed job is a row, never dropped."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import benchmark_label_fractions as report  # noqa: E402


def _job(root: Path, number: int | str, metrics: dict | None, overrides: list[str]) -> None:
    folder = root / str(number)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


def _ok(method: str, labels: int, split_seed: int, acc: float) -> dict:
    return {"dataset": "digits", "method": method, "num_labeled": labels, "label_fraction": None, "seed": 0,
            "split_seed": split_seed, "status": "ok", "test/acc": acc, "val/acc": acc, "epochs": 10, "train_seconds": 1.0}


def make_fixture_multirun(root: Path) -> None:
    jobs = [
        (_ok("supervised", 20, 0, 0.70), ["data.num_labeled=20", "model=supervised", "data.split_seed=0"]),
        (_ok("supervised", 20, 1, 0.74), ["data.num_labeled=20", "model=supervised", "data.split_seed=1"]),
        (_ok("ssgan", 20, 0, 0.80), ["data.num_labeled=20", "model=ssgan", "data.split_seed=0"]),
        (_ok("ssgan", 20, 1, 0.84), ["data.num_labeled=20", "model=ssgan", "data.split_seed=1"]),
        (_ok("supervised", 50, 0, 0.90), ["data.num_labeled=50", "model=supervised", "data.split_seed=0"]),
        # a job that failed on a bad value: main() recorded it
        ({"dataset": "digits", "method": "ssgan", "num_labeled": 50, "seed": 0, "split_seed": 0, "status": "failed",
          "error": "training diverged: discriminator_loss became nan at epoch 3, batch 7"},
         ["data.num_labeled=50", "model=ssgan", "data.split_seed=0"]),
        # a job killed before it wrote metrics.json
        (None, ["data.num_labeled=50", "model=ssgan", "data.split_seed=1"]),
    ]
    for number, (metrics, overrides) in enumerate(jobs):
        _job(root, number, metrics, overrides)


def test_report_has_a_row_per_job_means_per_cell_the_best_in_bold_and_the_failures(tmp_path) -> None:
    make_fixture_multirun(tmp_path)
    rows = report.write_report(tmp_path, title="fixture")
    assert len(rows) == 7

    with open(tmp_path / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["job"] for row in table] == [str(n) for n in range(7)]
    assert [row["status"] for row in table].count("failed") == 2
    assert "diverged" in table[5]["error"] and "stopped before it finished" in table[6]["error"]
    assert table[6]["method"] == "ssgan" and table[6]["num_labeled"] == "50"  # read back from the overrides

    markdown = (tmp_path / "results.md").read_text()
    lines = {line.split("|")[1].strip(): line for line in markdown.splitlines() if line.startswith("| ") and "labels" not in line}
    assert "| supervised | ssgan |" in markdown
    assert "72.00 ± 2.83 (n=2)" in lines["20"] and "**82.00 ± 2.83 (n=2)**" in lines["20"]  # ssgan is best at 20
    assert "**90.00 (n=1)**" in lines["50"] and "| 2 failed |" in lines["50"]  # ssgan at 50: both jobs failed
    assert "2 failed run(s)" in markdown and "job 5" in markdown and "job 6" in markdown

    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_re_renders_from_an_existing_folder_without_training(tmp_path, capsys) -> None:
    make_fixture_multirun(tmp_path)
    # exit 1: the report holds failed runs, which a script or CI running the benchmark must see
    assert report.main(["--report", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("error: 2 of 7 runs did not finish (failed, e.g. job 5); results.md counts "
                                         "them in its cells")
    assert "wrote" in captured.out
    assert report.main(["--report", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # a folder without runs: the same status as the other input errors
        report.main(["--report", str(tmp_path / "empty")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (f"error: no runs under {tmp_path / 'empty'}; pass the multirun folder "
                                               "(the one holding 0/, 1/, ...)")
    # a new sweep into it is refused up front (its jobs would find the earlier runs in their folders)
    capsys.readouterr()
    assert report.main(["digits", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path} already holds a sweep's runs; choose a new --out")
    # nor into a run's own folder: the report counted that run among the sweep's (as ".")
    single = tmp_path.parent / f"{tmp_path.name}_single_run"
    single.mkdir()
    (single / "metrics.json").write_text("{}")
    assert report.main(["digits", "--out", str(single)]) == 2
    assert capsys.readouterr().err == f"error: {single} is the folder of a run (metrics.json); choose a new --out\n"
    assert sorted(path.name for path in single.iterdir()) == ["metrics.json"]


def test_one_report_of_a_sweep_run_in_parts_counts_each_job_once(tmp_path, capsys) -> None:
    first, second, combined = tmp_path / "part1", tmp_path / "part2", tmp_path / "all"
    make_fixture_multirun(first)
    _job(second, 0, _ok("ssgan", 50, 0, 0.95), ["data.num_labeled=50", "model=ssgan", "data.split_seed=0"])
    _job(second, 1, _ok("ssgan", 50, 1, 0.97), ["data.num_labeled=50", "model=ssgan", "data.split_seed=1"])

    assert report.main(["--report", str(first), str(second)]) == 2  # where would the report go?
    assert "needs --out" in capsys.readouterr().err
    assert not (first / "results.csv").exists() and not combined.exists()

    # a job folder inside another folder given is still counted once
    assert report.main(["--report", str(first), str(second), str(second / "1"), "--out", str(combined)]) == 1
    with open(combined / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["job"] for row in table] == [f"part1/{n}" for n in range(7)] + ["part2/0", "part2/1"]
    lines = {line.split("|")[1].strip(): line for line in (combined / "results.md").read_text().splitlines()
             if line.startswith("| ") and "labels" not in line}
    assert "**96.00 ± 1.41 (n=2)**" in lines["50"]  # the second part's two ssgan runs; the first part's both failed
    assert "job part1/5" in (combined / "results.md").read_text()
    assert not (first / "results.csv").exists()  # the parts are only read


def test_a_multirun_with_a_bad_and_a_crashing_job_finishes_the_others_and_the_report_marks_both(tmp_path,
                                                                                                 train_in_process) -> None:
    # ssgan-train's main() in this process (the multiruns' jobs run in it too, one after another)
    sweep_dir = tmp_path / "sweep"
    tiny = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "callbacks=none")
    # job 0 is fine; job 1 asks for fewer labels than classes (a bad value); job 2 builds a callback
    # whose __init__ crashes (a crash inside instantiation, not a checked setting)
    code, stderr = train_in_process("-m", "data.num_labeled=20,7", *tiny, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    # the sweep goes on past the failed job, and ends with one line and status 3, so a shell can tell
    assert code == 3 and stderr.strip().splitlines()[-1] == (
        f"error: 1 of 2 jobs of the sweep did not finish (the first, in {sweep_dir / '1'}: data.num_labeled=7 is below "
        "the number of classes (10); use at least 10); each one's metrics.json holds its error")
    code, stderr = train_in_process("-m", "data.num_labeled=20", "+callbacks.crash._target_=conftest.CrashingCallback",
                                    *tiny, f"hydra.sweep.dir={sweep_dir / 'crash'}", cwd=tmp_path)
    assert code == 3 and stderr.strip().splitlines()[-1] == (
        "error: the sweep's only job failed: RuntimeError: a crash inside the callback's __init__")
    # a job whose discriminator lr blows the weights up diverges at its first batch
    code, stderr = train_in_process("-m", "data.num_labeled=20", "model.optimizer_d.lr=1e30", *tiny,
                                    f"hydra.sweep.dir={sweep_dir / 'diverge'}", cwd=tmp_path)
    assert code == 3 and stderr.strip().splitlines()[-1].startswith("error: the sweep's only job failed: ")

    rows = report.write_report(sweep_dir)
    by_status = {row["status"] for row in rows}
    assert by_status == {"ok", "failed", "diverged"}
    divergence = next(row for row in rows if row["status"] == "diverged")
    assert "became nan at epoch 0" in divergence["error"] and divergence["test_acc"] is None
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 1 and ok[0]["num_labeled"] == 20 and ok[0]["test_acc"] is not None
    failed = sorted((row for row in rows if row["status"] == "failed"), key=lambda r: r["run_dir"])
    assert len(failed) == 2
    assert "below the number of classes" in failed[0]["error"] and failed[0]["num_labeled"] == 7
    # the failed job's record names its validation size too (it named the label count but not that)
    assert json.loads((Path(failed[0]["run_dir"]) / "metrics.json").read_text())["num_val"] == 100
    assert "RuntimeError: a crash inside the callback's __init__" in failed[1]["error"]
    # a crash is told from a refused setting (the bench scripts say a setting that every job refused once)
    assert [json.loads((Path(row["run_dir"]) / "metrics.json").read_text()).get("crashed") for row in failed] == [None, True]
    markdown = (sweep_dir / "results.md").read_text()
    assert "3 failed run(s)" in markdown and "diverged: generator_loss became nan" in markdown


def test_a_sweep_whose_jobs_all_fail_the_same_way_ends_with_that_error_once(tmp_path, train_in_process) -> None:
    missing = tmp_path / "no_such_folder"
    code, stderr = train_in_process("-m", "data=fashion_mnist", f"data.root={missing}", "data.download=false", "seed=0,1,2",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    last = stderr.strip().splitlines()[-1]
    assert code == 3 and last.startswith("error: all 3 jobs of the sweep failed: ") and str(missing) in last, stderr[-2000:]
    assert "Traceback" not in stderr


def test_a_killed_job_row_takes_its_defaults_from_hydras_record(tmp_path) -> None:
    _job(tmp_path, 0, None, ["data.num_labeled=50"])  # killed before metrics.json; model, seeds and data by default
    record = tmp_path / "0" / ".hydra"
    (record / "config.yaml").write_text("seed: 3\ndata:\n  num_labeled: 50\n  label_fraction: null\n  split_seed: 2\n")
    (record / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      data: digits\n      model: ssgan\n"
                                       "      self_training: default\n")
    [row] = report.collect(tmp_path)
    assert row["status"] == "failed" and "stopped before it finished" in row["error"]
    assert {key: row.get(key) for key in ("dataset", "method", "num_labeled", "seed", "split_seed")} == {
        "dataset": "digits", "method": "ssgan+self-training", "num_labeled": 50, "seed": 3, "split_seed": 2}


def test_a_failed_job_with_a_typo_or_no_label_count_is_a_failed_row_in_both_reports(tmp_path, capsys) -> None:
    import summarize_runs

    make_fixture_multirun(tmp_path)
    failed = {"dataset": "digits", "method": "ssgan", "seed": 0, "split_seed": 0, "status": "failed", "error": "..."}
    _job(tmp_path, 7, {**failed, "num_labeled": "2O"}, ["data.num_labeled=2O"])  # a letter O for a zero
    _job(tmp_path, 8, {**failed, "num_labeled": None, "label_fraction": 0.001}, ["data.label_fraction=0.001"])
    _job(tmp_path, 9, None, ["data.label_fraction=0.O1", "model=ssgan"])  # killed before metrics, a typo in its fraction
    rows = report.write_report(tmp_path, title="fixture")  # once: TypeError comparing '2O' with 20
    assert [row["status"] for row in rows].count("failed") == 5
    assert "job 7" in (tmp_path / "results.md").read_text()
    assert summarize_runs.main([str(tmp_path)]) == 1  # it lists failed runs (once: TypeError formatting a null label count)
    printed = capsys.readouterr().out
    assert "2O" in printed
    # a long method name keeps the columns in line: every row's seed column ends where the header's does
    _job(tmp_path, 10, _ok("supervised+self-training", 20, 0, 0.5), [])
    assert summarize_runs.main([str(tmp_path)]) == 1
    runs_table, means_table = capsys.readouterr().out.split("mean ± std over runs")
    header, *lines = [line for line in runs_table.splitlines() if line.startswith("digits") or "status" in line]
    seed_end = header.index("seed") + len("seed")
    assert lines and all(line[seed_end - 1].isdigit() and line[seed_end] == " " for line in lines), lines
    mean_starts = {line.index(" ± ") for line in means_table.splitlines() if " ± " in line}
    assert len(mean_starts) == 1, means_table  # the means' column too


def test_a_fraction_sweep_keeps_finished_and_failed_runs_of_a_fraction_on_one_line(tmp_path) -> None:
    def fraction_run(split_seed: int, acc: float) -> dict:
        return {**_ok("ssgan", 18, split_seed, acc), "label_fraction": 0.01}  # 1 % of digits' training images

    _job(tmp_path, 0, fraction_run(0, 0.80), ["data.label_fraction=0.01", "model=ssgan", "data.split_seed=0"])
    _job(tmp_path, 1, fraction_run(1, 0.84), ["data.label_fraction=0.01", "model=ssgan", "data.split_seed=1"])
    # failed before it drew its split: it knows its fraction, not its label count
    _job(tmp_path, 2, None, ["data.label_fraction=0.01", "model=ssgan", "data.split_seed=2"])
    _job(tmp_path, 3, {**fraction_run(0, 0.9), "num_labeled": 180, "label_fraction": 0.1},
         ["data.label_fraction=0.1", "model=ssgan", "data.split_seed=0"])
    # and a count sweep reported with it: its lines go in among the fraction's by their number of labels
    _job(tmp_path, 4, _ok("ssgan", 50, 0, 0.86), ["data.num_labeled=50", "model=ssgan", "data.split_seed=0"])
    _job(tmp_path, 5, _ok("ssgan", 1000, 0, 0.95), ["data.num_labeled=1000", "model=ssgan", "data.split_seed=0"])
    # a fraction whose every run failed: by its fraction at the labels the others drew (0.05: 90 labels here)
    _job(tmp_path, 6, {"status": "failed", "error": "boom", "method": "ssgan", "dataset": "digits", "label_fraction": 0.05,
                       "num_labeled": None, "seed": 0, "split_seed": 0},
         ["data.label_fraction=0.05", "model=ssgan", "data.split_seed=0"])
    report.write_report(tmp_path, title="fixture")
    markdown = (tmp_path / "results.md").read_text()
    body = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| labels")]
    # once the failed job had a line "0.01" of its own, apart from its finished runs' line "18"; and the
    # fraction lines came first, before 50
    assert body[:2] == ["| 0.01 (18 labels) | **82.00 ± 2.83 (n=2)**, 1 failed |", "| 50 | **86.00 (n=1)** |"]
    assert body[2].startswith("| 0.05 |") and "1 failed" in body[2]
    assert body[3:] == ["| 0.1 (180 labels) | **90.00 (n=1)** |", "| 1000 | **95.00 (n=1)** |"]
    assert "- job 2 (ssgan, label fraction 0.01, seed ?, split seed 2)" in markdown
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_cell_mixing_runs_of_different_settings_is_flagged(tmp_path) -> None:
    _job(tmp_path, 0, _ok("ssgan", 50, 0, 0.82), ["data.num_labeled=50", "model=ssgan", "trainer.max_epochs=1"])
    _job(tmp_path, 1, _ok("ssgan", 50, 0, 0.93), ["data.num_labeled=50", "model=ssgan", "trainer.max_epochs=30"])
    _job(tmp_path, 2, _ok("ssgan", 20, 0, 0.80), ["data.num_labeled=20", "model=ssgan", "seed=0", "trainer.max_epochs=1"])
    _job(tmp_path, 3, _ok("ssgan", 20, 1, 0.81), ["data.num_labeled=20", "model=ssgan", "seed=1", "trainer.max_epochs=1"])
    # how a run was run is not a setting: a job resumed by hand, and Hydra's sweeper writing False for false
    _job(tmp_path, 4, _ok("ssgan", 250, 0, 0.92), ["data.num_labeled=250", "model=ssgan", "seed=0", "trainer.max_epochs=1",
                                                  "ckpt_path=last", "trainer.enable_progress_bar=False",
                                                  "data.augment_flip=False"])
    _job(tmp_path, 5, _ok("ssgan", 250, 1, 0.93), ["data.num_labeled=250", "model=ssgan", "seed=1", "trainer.max_epochs=1",
                                                  "data.augment_flip=false"])
    report.write_report(tmp_path, title="fixture")
    markdown = (tmp_path / "results.md").read_text()
    # once these were averaged as if they were seeds (87.5 ± 7.8) with no word of it
    assert "these cells hold runs with different settings" in markdown
    assert "- 50 labels, ssgan: trainer.max_epochs=1 | trainer.max_epochs=30" in markdown
    flagged = markdown.split("Warning")[1]
    assert "20 labels" not in flagged  # other seeds of one setting are what a cell is for
    assert "250 labels" not in flagged


def test_a_cell_whose_failed_run_had_other_settings_is_flagged_too(tmp_path) -> None:
    # one finished run and one failed run of another learning rate: "82.00 (n=1), 1 failed" read as two seeds
    _job(tmp_path, 0, _ok("ssgan", 50, 0, 0.82), ["data.num_labeled=50", "model=ssgan", "model.optimizer_d.lr=0.003"])
    _job(tmp_path, 1, None, ["data.num_labeled=50", "model=ssgan", "model.optimizer_d.lr=0.001", "data.split_seed=1"])
    _job(tmp_path, 2, _ok("ssgan", 20, 0, 0.80), ["data.num_labeled=20", "model=ssgan", "data.split_seed=0"])
    _job(tmp_path, 3, None, ["data.num_labeled=20", "model=ssgan", "data.split_seed=1"])
    _job(tmp_path, 4, _ok("ssgan", 100, 0, 0.90), ["data.num_labeled=100", "model=ssgan", "trainer.max_epochs=30"])
    _job(tmp_path, 5, None, [])  # killed before Hydra wrote its overrides: its settings are unknown, not none
    (tmp_path / "5" / ".hydra" / "overrides.yaml").unlink()
    (tmp_path / "5" / ".hydra" / "config.yaml").write_text("seed: 0\ndata:\n  num_labeled: 100\n  split_seed: 1\n")
    (tmp_path / "5" / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      data: digits\n"
                                                         "      model: ssgan\n")
    report.write_report(tmp_path, title="fixture")
    markdown = (tmp_path / "results.md").read_text()
    flagged = markdown.split("**Warning:**")[1].split("failed")[0]
    assert "- 50 labels, ssgan: model.optimizer_d.lr=0.001 | model.optimizer_d.lr=0.003" in flagged
    assert "20 labels" not in flagged  # a failed run of the same settings is just a missing seed
    assert "100 labels" not in flagged and "| 100 | **90.00 (n=1)**, 1 failed |" in markdown


def test_plot_has_no_tick_for_a_label_count_whose_every_job_failed(tmp_path, monkeypatch) -> None:
    pyplot = pytest.importorskip("matplotlib.pyplot")
    make_fixture_multirun(tmp_path)
    _job(tmp_path, 7, {"dataset": "digits", "method": "ssgan", "num_labeled": 200, "seed": 0, "split_seed": 0,
                       "status": "failed", "error": "out of memory"}, ["data.num_labeled=200", "model=ssgan"])
    closed = []
    monkeypatch.setattr(pyplot, "close", closed.append)  # keep the figure to read its axis
    rows = report.collect_all([tmp_path])
    assert report.render_plot(rows, tmp_path / "results.png", "fixture")
    (axes,) = closed[0].axes
    assert list(axes.get_xticks()) == [20, 50]  # 200 has no point, so no tick


def test_a_point_of_one_run_has_no_error_bar_and_the_table_names_its_std(tmp_path, monkeypatch) -> None:
    # a bar of 0 showed one run as if its seeds had agreed exactly
    pyplot = pytest.importorskip("matplotlib.pyplot")
    assert math.isnan(report.error_bar([90.0])) and report.error_bar([80.0, 90.0]) == pytest.approx(7.0711, abs=1e-4)
    make_fixture_multirun(tmp_path)  # supervised: 2 runs at 20 labels, 1 at 50
    closed = []
    monkeypatch.setattr(pyplot, "close", closed.append)
    rows = report.collect_all([tmp_path])
    assert report.render_plot(rows, tmp_path / "results.png", "fixture")
    (axes,) = closed[0].axes
    supervised = next(c for c in axes.containers if c.get_label() == "supervised")
    (bars,) = supervised.lines[2]  # one vertical segment per point, at 20 and 50 labels
    at_20, at_50 = bars.get_segments()
    assert abs(at_20[1][1] - at_20[0][1]) == pytest.approx(2 * 2.8284, abs=1e-3)  # 70 and 74 %: ± their sample std
    assert len(at_50) == 0  # one run: no bar drawn
    assert "mean ± sample std (n − 1) over seeds" in report.render_markdown(rows, "fixture")


def test_plot_says_which_fraction_line_it_leaves_out_for_drawing_different_counts(tmp_path, monkeypatch, capsys) -> None:
    pyplot = pytest.importorskip("matplotlib.pyplot")
    make_fixture_multirun(tmp_path)
    # one label fraction on two data sets of other sizes: 60 labels on one, 70 on the other
    for job, (dataset, drawn) in enumerate((("digits", 60), ("other", 70)), start=7):
        _job(tmp_path, job, {**_ok("ssgan", drawn, 0, 0.85), "dataset": dataset, "label_fraction": 0.05},
             ["data.num_labeled=null", "data.label_fraction=0.05", "model=ssgan"])
    closed = []
    monkeypatch.setattr(pyplot, "close", closed.append)
    assert report.render_plot(report.collect_all([tmp_path]), tmp_path / "results.png", "fixture")
    (axes,) = closed[0].axes
    assert 60 not in list(axes.get_xticks()) and 70 not in list(axes.get_xticks())
    assert ("results.png leaves out label fraction 0.05: its runs drew different label counts (60, 70)"
            in capsys.readouterr().err)


def _sweep_record(root: Path, params: dict, task: list[str], choices: dict, subdir: str = "${hydra.job.num}") -> None:
    """Hydra's multirun.yaml, as the basic sweeper writes it before the first job (the keys the report reads)."""
    from omegaconf import OmegaConf

    root.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({
        "seed": 0, "data": {"num_labeled": 50, "label_fraction": None, "split_seed": 0},
        "hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": params},
                  "sweep": {"dir": str(root), "subdir": subdir},
                  "overrides": {"task": task}, "runtime": {"choices": choices}}}), root / "multirun.yaml")


def test_jobs_in_folders_named_by_another_subdir_are_not_taken_for_unstarted_ones(tmp_path) -> None:
    _sweep_record(tmp_path, {"data.split_seed": "0,1"}, ["model=ssgan", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"}, subdir="run_${data.split_seed}")
    for seed in (0, 1):
        _job(tmp_path, f"run_{seed}", _ok("ssgan", 50, seed, 0.8), [f"data.split_seed={seed}", "model=ssgan", "sweep=x"])
    rows = report.write_report(tmp_path, title="fixture")
    assert [(row["job"], row["status"]) for row in rows] == [("run_0", "ok"), ("run_1", "ok")]
    assert "left out" not in (tmp_path / "results.md").read_text()
    # a job of such a sweep that never began is a row too (it was left out, and the count of unfinished runs with it)
    _sweep_record(tmp_path, {"data.split_seed": "0,1,2"}, ["model=ssgan", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"}, subdir="run_${data.split_seed}")
    rows = report.collect(tmp_path)
    assert [(row["job"], row["status"], row["split_seed"]) for row in rows] == [
        ("#2", "not started", 2), ("run_0", "ok", 0), ("run_1", "ok", 1)]
    # nor are jobs in nested folders (subdir=${model}/${data.split_seed}) taken for unstarted ones
    nested = tmp_path / "nested"
    _sweep_record(nested, {"data.split_seed": "0,1"}, ["model=ssgan", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"}, subdir="${model}/${data.split_seed}")
    for seed in (0, 1):
        _job(nested / "ssgan", seed, _ok("ssgan", 50, seed, 0.8), [f"data.split_seed={seed}", "model=ssgan", "sweep=x"])
    assert [(row["job"], row["status"]) for row in report.collect(nested)] == [("ssgan/0", "ok"), ("ssgan/1", "ok")]


def test_jobs_a_killed_sweep_never_started_are_rows_too(tmp_path, capsys) -> None:
    # the sweep config's params and the command line, as `-m sweep=... model=ssgan,supervised` gives them
    _sweep_record(tmp_path, {"data.num_labeled": "20,50", "data.split_seed": "0,1"}, ["model=ssgan,supervised", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"})
    # job 0 finished, job 1 was killed (its .hydra only); jobs 2-7 never began
    _job(tmp_path, 0, _ok("ssgan", 20, 0, 0.8), ["data.num_labeled=20", "data.split_seed=0", "model=ssgan", "sweep=x"])
    _job(tmp_path, 1, None, ["data.num_labeled=20", "data.split_seed=0", "model=supervised", "sweep=x"])
    rows = report.write_report(tmp_path, title="fixture")
    assert [row["job"] for row in rows] == [str(n) for n in range(8)]
    waiting = [row for row in rows if row["status"] == "not started"]
    assert [(row["num_labeled"], row["split_seed"], row["method"]) for row in waiting] == [
        (20, 1, "ssgan"), (20, 1, "supervised"), (50, 0, "ssgan"), (50, 0, "supervised"), (50, 1, "ssgan"),
        (50, 1, "supervised")]  # Hydra's order: the product of the params, then the command line
    markdown = (tmp_path / "results.md").read_text()
    assert "| 20 | 1 failed, 1 not started | **80.00 (n=1)**, 1 not started |" in markdown  # supervised | ssgan
    assert "7 failed or unstarted run(s)" in markdown and "- job 7 (supervised, 50 labels, seed 0, split seed 1): " \
        "not started: the sweep stopped before this job began" in markdown


def test_a_job_folder_missing_before_later_jobs_is_not_said_to_be_after_the_sweeps_stop(tmp_path) -> None:
    # the sweep finished, then job 1's folder was deleted: it was "not started: the sweep stopped before this job began"
    _sweep_record(tmp_path, {"data.split_seed": "0,1,2"}, ["model=ssgan", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"})
    for seed in (0, 2):
        _job(tmp_path, seed, _ok("ssgan", 50, seed, 0.8), [f"data.split_seed={seed}", "model=ssgan", "sweep=x"])
    rows = {row["job"]: row for row in report.collect(tmp_path)}
    assert rows["1"]["status"] == "not started"
    assert rows["1"]["error"] == ("it has no folder, though later jobs of the sweep began: it never started, or its folder "
                                  "was deleted or moved")
    assert [rows[job]["status"] for job in ("0", "2")] == ["ok", "ok"]


def test_a_part_run_again_counts_once_and_other_damage_is_a_failed_row(tmp_path, capsys) -> None:
    first, again = tmp_path / "part1", tmp_path / "part1b"
    overrides = [["data.num_labeled=20", "model=ssgan", f"data.split_seed={seed}"] for seed in (0, 1, 2)]
    _job(first, 0, _ok("ssgan", 20, 0, 0.70), overrides[0])
    _job(first, 1, _ok("ssgan", 20, 1, 0.72), overrides[1])
    _job(first, 2, None, overrides[2])  # killed; the part was then run again whole
    (first / "2" / ".hydra" / "config.yaml").write_text("seed: 0\ndata:\n  num_labeled: 20\n  split_seed: 2\n")
    (first / "2" / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      data: digits\n"
                                                         "      model: ssgan\n      self_training: none\n")
    for number, acc in enumerate((0.80, 0.82, 0.84)):
        _job(again, number, _ok("ssgan", 20, number, acc), overrides[number])
    assert report.main(["--report", str(first), str(again), "--out", str(tmp_path / "all")]) == 0
    markdown = (tmp_path / "all" / "results.md").read_text()
    assert "| 20 | **82.00 ± 2.00 (n=3)** |" in markdown  # not n=5 with the first part's runs
    assert "3 run(s) left out: their settings ran again, and one run of each counts" in markdown
    assert "- job part1/2: the same settings ran as job part1b/2, which counts (failed: no metrics.json" in markdown
    assert "failed run(s)" not in markdown
    # two folders of the same name: their jobs keep apart
    _job(tmp_path / "a" / "lf", 0, _ok("ssgan", 50, 0, 0.9), ["data.num_labeled=50", "model=ssgan"])
    _job(tmp_path / "b" / "lf", 0, _ok("ssgan", 50, 1, 0.9), ["data.num_labeled=50", "model=ssgan", "data.split_seed=1"])
    rows = report.collect_all([tmp_path / "a" / "lf", tmp_path / "b" / "lf"])
    assert [row["job"] for row in rows] == ["a/lf/0", "b/lf/0"]

    # a NaN accuracy, a cut-off metrics.json, a run without test images, a changed config file
    damaged = tmp_path / "damaged"
    _job(damaged, 0, _ok("ssgan", 20, 0, float("nan")), ["data.num_labeled=20", "model=ssgan"])
    _job(damaged, 1, _ok("supervised", 20, 0, 0.6), ["data.num_labeled=20", "model=supervised"])
    _job(damaged, 2, None, ["data.num_labeled=20", "model=ssgan", "data.split_seed=1"])
    (damaged / "2" / "metrics.json").write_text('{"dataset": "digits", "status": "o')
    _job(damaged, 3, {**_ok("supervised", 20, 1, 0.6), "test/acc": None}, ["data.num_labeled=20", "model=supervised",
                                                                         "data.split_seed=1"])
    for number, epochs in ((4, 60), (5, 5)):
        _job(damaged, number, _ok("ssgan", 50, number, 0.9), ["data.num_labeled=50", "model=ssgan", f"seed={number}"])
        (damaged / str(number) / ".hydra" / "config.yaml").write_text(f"seed: {number}\ntrainer:\n  max_epochs: {epochs}\n")
    rows = report.write_report(damaged, title="fixture")
    assert rows[0]["status"] == "failed" and "test accuracy is nan" in rows[0]["error"]
    assert rows[2]["status"] == "failed" and rows[2]["error"].startswith("unreadable metrics.json")
    markdown = (damaged / "results.md").read_text()
    assert "| 20 | **60.00 (n=1)**, 1 with no test set | 2 failed |" in markdown  # supervised, then ssgan
    assert "- 50 labels, ssgan: config.yaml differs in trainer.max_epochs: 5 | 60" in markdown

    # a killed job whose overrides.yaml was cut off mid-character: a failed row, not a UnicodeDecodeError
    cut = tmp_path / "cut"
    _job(cut, 0, _ok("ssgan", 20, 0, 0.8), ["data.num_labeled=20", "model=ssgan"])
    _job(cut, 1, None, [])
    (cut / "1" / ".hydra" / "overrides.yaml").write_bytes(b"- data.root=/donn\xc3")
    rows = report.write_report(cut, title="fixture")
    assert [row["status"] for row in rows] == ["ok", "failed"]


def test_reports_that_would_mislead_and_commands_that_mix_modes_are_one_line_errors(tmp_path, capsys) -> None:
    _job(tmp_path / "d", 0, _ok("ssgan", 20, 0, 0.8), ["data.num_labeled=20"])
    _job(tmp_path / "f", 0, {**_ok("ssgan", 20, 0, 0.7), "dataset": "fashion_mnist"}, ["data.num_labeled=20"])
    with pytest.raises(SystemExit):
        report.main(["--report", str(tmp_path / "d"), str(tmp_path / "f"), "--out", str(tmp_path / "both")])
    assert capsys.readouterr().err.strip() == ("error: the runs are of 2 data sets (digits, fashion_mnist); report each "
                                               "data set's runs on their own (a sweep of one data set per folder)")
    assert report.main(["digits", "--report", str(tmp_path / "d")]) == 2
    assert "--report re-renders existing runs and trains nothing" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert report.main(["--report", str(tmp_path / "d"), "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path / 'file'} is a file; give a folder"
    with pytest.raises(SystemExit):
        report.main(["digits", "trainer.max_epochs=5"])
    assert capsys.readouterr().err == (f"error: {Path(sys.argv[0]).name}: unrecognized arguments: trainer.max_epochs=5; "
                                       f"put Hydra overrides after --, e.g. digits -- trainer.max_epochs=5; "
                                       f"see {Path(sys.argv[0]).name} --help\n")  # one line, no usage block
    assert report.hydra_value("runs/a,b") == '"runs/a,b"' and report.hydra_value("runs/lf_1") == "runs/lf_1"


def test_a_report_goes_only_into_the_folder_of_an_ssgan_sweep(tmp_path, capsys) -> None:
    # another program's multirun (Hydra's records, no metrics.json) gets no results.* from this script
    other = tmp_path / "other"
    (other / "0" / ".hydra").mkdir(parents=True)
    (other / "0" / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    (other / "0" / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n")
    OmegaConf.save(OmegaConf.create({"lr": 0.0, "hydra": {"overrides": {"task": ["lr=0.0,0.1"]}}}), other / "multirun.yaml")
    assert report.main(["--report", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {other} holds no ssgan-train runs (no job's metrics.json, and Hydra's records there are another "
        "program's); pass the multirun folder of an ssgan-train sweep")
    assert sorted(path.name for path in other.iterdir()) == ["0", "multirun.yaml"]
    # nor a table of "?" rows from summarize_runs.py
    import summarize_runs

    assert summarize_runs.main([str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {other} holds no ssgan-train runs (no run's metrics.json, and Hydra's records there are another "
        "program's); pass a folder of ssgan-train runs")
    # one run's folder: its report would count that run alone, among its own outputs
    _job(tmp_path / "sweep", 0, _ok("ssgan", 20, 0, 0.8), ["data.num_labeled=20"])
    assert report.main(["--report", str(tmp_path / "sweep" / "0")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path / 'sweep' / '0'} is the folder of one run "
                                                      "(metrics.json), not of a sweep; pass its sweep's folder")
    assert not (tmp_path / "sweep" / "0" / "results.md").exists()
    # a sweep killed before any job wrote its metrics is told by ssgan-train's config in Hydra's record
    killed = tmp_path / "killed"
    (killed / "0" / ".hydra").mkdir(parents=True)
    (killed / "0" / ".hydra" / "config.yaml").write_text(
        "data:\n  _target_: ssgan.data.DigitsDataModule\nmodel:\n  _target_: ssgan.module.SSGAN\n")
    assert report.main(["--report", str(killed)]) == 1 and (killed / "results.md").is_file()
    # with no run that names its method there is no line to draw (it drew an empty plot, and matplotlib warned)
    assert not (killed / "results.png").exists()
    assert "results.png skipped: no run of the report records its method" in capsys.readouterr().err


def test_a_job_refused_for_both_a_count_and_a_fraction_is_not_a_run_of_that_fraction(tmp_path) -> None:
    _job(tmp_path, 0, {**_ok("ssgan", 70, 0, 0.83), "label_fraction": 0.05},
         ["data.num_labeled=null", "data.label_fraction=0.05"])
    _job(tmp_path, 1, {"status": "failed", "error": "set only one of data.num_labeled and data.label_fraction",
                       "dataset": "digits", "method": "ssgan", "num_labeled": 20, "label_fraction": 0.05, "seed": 0,
                       "split_seed": 0}, ["data.num_labeled=20", "data.label_fraction=0.05"])
    rows = report.write_report(tmp_path)
    # it was shown as "superseded" by job 0, whose settings it did not have, and left out of the failures
    assert [row["status"] for row in rows] == ["ok", "failed"]


def test_a_killed_job_with_rounds_turned_on_by_count_is_a_self_training_row(tmp_path) -> None:
    # self_training.rounds=3 alone turns the rounds on (self_training=none inherits the default settings)
    _job(tmp_path, 0, None, ["data.num_labeled=50", "model=ssgan", "self_training.rounds=3"])
    record = tmp_path / "0" / ".hydra"
    (record / "config.yaml").write_text("seed: 0\ndata:\n  num_labeled: 50\n  split_seed: 0\nself_training:\n  rounds: 3\n")
    (record / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      data: digits\n      model: ssgan\n"
                                       "      self_training: none\n")
    [row] = report.collect(tmp_path)
    assert row["method"] == "ssgan+self-training"
    from summarize_runs import recorded_job

    assert recorded_job(record)["method"] == "ssgan+self-training"


def test_a_report_without_matplotlib_removes_the_earlier_plot(tmp_path, monkeypatch, capsys) -> None:
    make_fixture_multirun(tmp_path)
    (tmp_path / "results.png").write_bytes(b"an earlier report's plot, of other runs")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    report.write_report(tmp_path, title="fixture")
    assert not (tmp_path / "results.png").exists() and (tmp_path / "results.md").exists()
    assert "results.png skipped" in capsys.readouterr().err


def test_a_sweep_that_ssgan_train_refuses_prints_its_one_line_only(tmp_path: Path, monkeypatch, capsys) -> None:
    def refused(command: list[str]) -> int:
        print("error: unknown sweep option 'digts'; use sweep= one of: digits, fashion_mnist", file=sys.stderr)
        return 2

    monkeypatch.setattr(report, "run_child", refused)
    assert report.main(["digts", "--out", str(tmp_path / "sweep")]) == 2
    # it added "error: the sweep wrote nothing to ... (exit code 2)" below ssgan-train's own line
    assert capsys.readouterr().err == "error: unknown sweep option 'digts'; use sweep= one of: digits, fashion_mnist\n"
    # a folder of another sweep's records (one stopped before any job saved): refused before ssgan-train runs,
    # with the script's own fix, and no report of those records goes into it
    (tmp_path / "records" / "0" / ".hydra").mkdir(parents=True)
    monkeypatch.setattr(report, "run_child", lambda command: pytest.fail("the sweep ran"))
    assert report.main(["digits", "--out", str(tmp_path / "records")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'records'} holds Hydra's records of an earlier sweep (0/.hydra/); "
                                       "choose a new --out (or delete that folder to run the sweep there again)\n")
    assert sorted(path.name for path in (tmp_path / "records").iterdir()) == ["0"]

    def crashed(command: list[str]) -> int:
        return 1  # a crash: its traceback says what, and this line says that nothing was written

    monkeypatch.setattr(report, "run_child", crashed)
    assert report.main(["digts", "--out", str(tmp_path / "sweep")]) == 1
    assert capsys.readouterr().err == f"error: the sweep wrote nothing to {tmp_path / 'sweep'} (exit code 1)\n"


def test_a_job_that_never_started_does_not_replace_a_failed_run_of_the_same_settings(tmp_path) -> None:
    # part1's job failed; part2, run to redo it, was stopped before it reached that job
    failed = {"dataset": "digits", "method": "ssgan", "num_labeled": 50, "seed": 0, "split_seed": 1, "status": "failed",
              "error": "training diverged: discriminator_loss became nan at epoch 3, batch 7"}
    _job(tmp_path / "part1", 0, failed, ["data.num_labeled=50", "model=ssgan", "data.split_seed=1", "sweep=x"])
    _sweep_record(tmp_path / "part2", {"data.split_seed": "0,1"}, ["data.num_labeled=50", "model=ssgan", "sweep=x"],
                  {"data": "digits", "model": "ssgan", "self_training": "none"})
    _job(tmp_path / "part2", 0, _ok("ssgan", 50, 0, 0.9), ["data.num_labeled=50", "data.split_seed=0", "model=ssgan", "sweep=x"])
    rows = report.write_report([tmp_path / "part1", tmp_path / "part2"], title="parts", out_dir=tmp_path / "all")
    status = {row["job"]: row["status"] for row in rows}
    assert status == {"part1/0": "failed", "part2/0": "ok", "part2/1": "superseded"}, status
    assert "| 50 | **90.00 (n=1)**, 1 failed |" in (tmp_path / "all" / "results.md").read_text()


def test_a_folder_name_that_is_not_utf8_is_reported(tmp_path, capsys) -> None:
    import os

    root = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9"))  # a Latin-1 name on a UTF-8 system
    _job(root, 0, _ok("ssgan", 50, 0, 0.9), ["data.num_labeled=50", "model=ssgan"])
    assert report.main(["--report", str(root)]) == 0
    with open(root / "results.csv", newline="", errors="surrogateescape") as handle:
        (row,) = csv.DictReader(handle)
    assert row["run_dir"] == str(root / "0") and row["test_acc"] == "0.9"
    assert (root / "results.md").is_file() and (root / "results.png").is_file()


def test_the_plot_names_a_method_whose_every_run_failed(tmp_path, monkeypatch) -> None:
    import matplotlib.axes

    labels = []
    original = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, *args, label=None, **kwargs: labels.append(label) or original(self, *args, label=label, **kwargs))
    make_fixture_multirun(tmp_path)
    failed = {"dataset": "digits", "method": "ssgan+self-training", "num_labeled": 20, "seed": 0, "split_seed": 0,
              "status": "failed", "error": "boom"}
    _job(tmp_path, 7, failed, ["data.num_labeled=20", "model=ssgan", "self_training=default", "data.split_seed=0"])
    report.write_report(tmp_path, title="fixture")
    assert labels == ["supervised", "ssgan", "ssgan+self-training (no finished run)"]


def test_summarize_runs_lists_jobs_in_number_order_and_a_nan_accuracy_as_failed(tmp_path, capsys) -> None:
    import summarize_runs

    for number in range(12):
        _job(tmp_path, number, _ok("ssgan", 50, 0, float("nan") if number == 10 else 0.8 + number / 100),
             ["data.num_labeled=50", "model=ssgan", f"seed={number}"])
    assert summarize_runs.main([str(tmp_path)]) == 1  # the NaN run counts as failed
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("digits")]
    assert [line.split()[5] for line in lines[:12]] == [f"{80 + n:.2f}%" if n != 10 else "-" for n in range(12)]
    assert "failed: its test accuracy is nan, not a number" in lines[10]
    assert "digits             50  ssgan         85.09 ± 3.48 %  (n=11)" in out  # the NaN left out, not a crash


def test_other_settings_read_quoted_overrides_as_yaml_does(tmp_path) -> None:
    import summarize_runs

    record = tmp_path / "overrides.yaml"
    record.write_text("- model=ssgan\n- data.root='/data/a b'\n- 'trainer.max_epochs=30'\n")
    assert summarize_runs.other_settings(record) == "data.root='/data/a b' trainer.max_epochs=30"
    assert summarize_runs.other_settings(["model=ssgan", "data.root='/data/a b'", "trainer.max_epochs=30"]) == \
        summarize_runs.other_settings(record)


def test_cells_that_show_the_same_mean_are_both_bold(tmp_path) -> None:
    import statistics

    import numpy as np

    # 820 of 2 x 447 right in both methods, split differently over the seeds; metrics.json holds float32 values,
    # whose float sums differ in the last bit (only one cell was bold)
    accuracies = {"supervised": (380 / 447, 440 / 447), "ssgan": (390 / 447, 430 / 447)}
    number = 0
    for method, (first, second) in accuracies.items():
        for split_seed, acc in enumerate((first, second)):
            _job(tmp_path, number, _ok(method, 20, split_seed, float(np.float32(acc))),
                 ["data.num_labeled=20", f"model={method}", f"data.split_seed={split_seed}"])
            number += 1
    means = [statistics.mean(100 * float(np.float32(acc)) for acc in pair) for pair in accuracies.values()]
    assert means[0] != means[1] and round(means[0], 2) == round(means[1], 2)  # the case this test is about
    report.write_report(tmp_path, title="ties")
    [line] = [line for line in (tmp_path / "results.md").read_text().splitlines() if line.startswith("| 20 |")]
    assert line.count("**91.72 ±") == 2, line


def test_a_report_folder_that_cannot_be_made_is_one_line(tmp_path, capsys) -> None:
    make_fixture_multirun(tmp_path / "runs")
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exited:  # was a NotADirectoryError traceback
        report.main(["--report", str(tmp_path / "runs"), "--out", str(tmp_path / "file" / "report")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (f"error: cannot make --out {tmp_path / 'file' / 'report'} (Not a directory); "
                                               "give a folder that can be written")


def test_rounds_set_for_a_sweep_that_also_runs_without_them_are_refused(tmp_path, monkeypatch, capsys) -> None:
    started = []
    monkeypatch.setattr(report, "run_child", lambda command: started.append(command) or 0)
    out = tmp_path / "sweep"
    # the digits sweep runs self_training=none,default: rounds=1 would turn the rounds on in both, and the report
    # would merge supervised into supervised+self-training, leaving half its jobs as "the same settings ran again"
    assert report.main(["digits", "--out", str(out), "--", "self_training.rounds=1", "trainer.max_epochs=1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: self_training.rounds=1 turns the rounds on in every job, so the sweep's self_training=none jobs would "
        "self-train too and merge with the self-training methods; run those alone (digits -- self_training=default "
        "self_training.rounds=1 ...), the others apart (digits -- self_training=none ...), and report both folders "
        "with the benchmark's --report")
    assert report.main(["digits", "--out", str(out), "--", "self_training=none,default", "+self_training.rounds=2"]) == 2
    assert not started and not out.exists()
    assert report.main(["digits", "--out", str(out), "--", "self_training=choice(none,default)", "self_training.rounds=2"]) == 2
    assert not started and not out.exists()
    # no rounds at all: the self-training jobs would run as baselines, each twice in the table (n=2 of one run)
    capsys.readouterr()
    assert report.main(["digits", "--out", str(out), "--", "self_training.rounds=0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: self_training.rounds=0 turns the rounds off in every job, so the sweep's self-training jobs would run "
        "without them and merge with the methods without self-training; leave it out (or run only those: digits -- "
        "self_training=none ...)")
    assert not started and not out.exists()
    # the self-training methods alone, or the others alone without rounds: the sweep runs
    report.main(["digits", "--out", str(out), "--", "self_training=default", "self_training.rounds=1"])
    report.main(["digits", "--out", str(tmp_path / "other"), "--", "self_training=none", "self_training.rounds=0"])
    assert len(started) == 2
    # a sweep of the user's that picks self-training in its defaults list, or one ssgan does not ship: not refused
    import ssgan.config

    conf = tmp_path / "conf"
    shutil.copytree(ssgan.config.CONFIG_DIR, conf)
    (conf / "sweep" / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - override /self_training: default\n"
                                              "hydra:\n  sweeper:\n    params:\n      data.num_labeled: 20,50\n")
    monkeypatch.setattr(ssgan.config, "CONFIG_DIR", conf)
    assert report.rounds_merge_methods("mine", ["self_training.rounds=1"]) is None
    assert report.rounds_merge_methods("found_on_a_searchpath", ["self_training.rounds=1"]) is None
    assert report.rounds_merge_methods("digits", ["self_training.rounds=1"]) is not None


def test_sweeps_run_the_installed_ssgan_not_a_folder_of_that_name_where_they_start(tmp_path) -> None:
    import subprocess

    import _bench

    shadow = tmp_path / "ssgan"  # e.g. another checkout's root, where python -m ssgan.train imported its copy
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise SystemExit('the copy in the working folder ran')\n")
    started_as_module = subprocess.run([sys.executable, "-m", "ssgan.train"], cwd=tmp_path, capture_output=True,
                                       text=True, timeout=120)
    assert "the copy in the working folder ran" in started_as_module.stderr  # how the sweeps were started
    # a bare word: ssgan-train refuses it in its own words, before anything heavy is imported
    done = subprocess.run(_bench.train_command(["datanum_labeled"]), cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert "the copy in the working folder ran" not in done.stderr
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: "), done.stderr


def test_a_finished_run_whose_metrics_give_no_number_of_labels_is_a_failed_row(tmp_path, capsys) -> None:
    make_fixture_multirun(tmp_path)
    _job(tmp_path, 7, {**_ok("ssgan", 20, 2, 0.9), "num_labeled": "20"}, ["data.num_labeled=20", "model=ssgan"])
    assert report.main(["--report", str(tmp_path)]) == 1  # it was in no cell and no list, and the status was that of the rest
    [row] = [row for row in csv.DictReader(open(tmp_path / "results.csv", newline="")) if row["job"] == "7"]
    assert row["status"] == "failed" and row["error"] == (
        "its metrics.json gives no number of labels (num_labeled '20', label_fraction None)")
    assert "job 7" in (tmp_path / "results.md").read_text()


def test_a_self_training_run_that_trained_fewer_rounds_than_planned_is_not_a_result_of_its_method(tmp_path) -> None:
    # trainer.max_steps (or early stopping) ended it before its rounds: the cell showed the baseline's figure as its own
    cut = {**_ok("ssgan+self-training", 20, 0, 0.63), "rounds_planned": 3,
           "rounds": [{"round": 0, "epochs": [0, 1], "trained": True}, {"round": 1, "epochs": None, "trained": False}]}
    whole = {**_ok("ssgan+self-training", 20, 1, 0.70), "rounds_planned": 1,
             "rounds": [{"round": 0, "epochs": [0, 1], "trained": True}, {"round": 1, "epochs": [2, 2], "trained": True}]}
    _job(tmp_path, 0, cut, ["data.num_labeled=20", "self_training.rounds=3", "data.split_seed=0"])
    _job(tmp_path, 1, whole, ["data.num_labeled=20", "self_training.rounds=1", "data.split_seed=1"])
    rows = {row["job"]: row for row in report.collect(tmp_path)}
    assert rows["0"]["status"] == "failed" and rows["0"]["test_acc"] is None
    assert rows["0"]["error"] == ("it trained 0 of its 3 self-training rounds (early stopping or trainer.max_steps ended "
                                  "them), so it is not a run of its method")
    assert rows["1"]["status"] == "ok" and rows["1"]["test_acc"] == 0.70


def test_the_same_sweep_through_ssgan_train_refuses_rounds_that_merge_its_methods(tmp_path, train_in_process) -> None:
    # ssgan-train -m sweep=digits self_training.rounds=1 ran, and the report merged its methods
    code, stderr = train_in_process("-m", "sweep=digits", "self_training.rounds=1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                    cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert stderr.strip() == (
        "error: self_training.rounds=1 turns the rounds on in every job, so the sweep's self_training=none jobs would "
        "self-train too and merge with the self-training methods; run those alone (ssgan-train -m sweep=digits "
        "self_training=default self_training.rounds=1 ...), the others apart (ssgan-train -m sweep=digits "
        "self_training=none ...), and report both folders with the benchmark's --report")
    assert not (tmp_path / "sweep").exists()
