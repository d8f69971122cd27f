"""The small benchmark scripts: arguments, failed jobs and the files they write (no training here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import _bench  # noqa: E402
import bench_digits  # noqa: E402
import bench_fashion_mnist  # noqa: E402
import summarize_runs  # noqa: E402


def _run(root: Path, name: str, metrics: dict | None, overrides: list[str]) -> None:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


def _metrics(method: str, split_seed: int, acc: float, **extra) -> dict:
    return {"dataset": "digits", "method": method, "num_labeled": 50, "seed": 0, "split_seed": split_seed,
            "status": "ok", "test/acc": acc, "train_seconds": 10.0, **extra}


def test_summary_means_runs_of_one_setting_only_and_lists_killed_jobs(tmp_path, capsys) -> None:
    for number, (weight, seed, acc) in enumerate([(1, 0, 0.80), (1, 1, 0.84), (3, 0, 0.90), (3, 1, 0.96)]):
        _run(tmp_path, str(number), _metrics("ssgan", seed, acc),
             ["model=ssgan", f"model.unlabeled_weight={weight}", f"data.split_seed={seed}"])
    _run(tmp_path, "4", _metrics("supervised", 0, 0.70), ["model=supervised", "data.split_seed=0"])
    _run(tmp_path, "5", None, ["model=supervised", "data.split_seed=1"])  # killed before its metrics.json
    assert summarize_runs.main([str(tmp_path)]) == 1  # a shell can tell a sweep with a failed job from a finished one
    printed, error = capsys.readouterr()
    assert error == f"error: 1 of 6 runs did not finish (e.g. {tmp_path / '5'}); the means leave them out\n"
    means = printed.split("mean ± std over runs")[1]
    assert "82.00 ± 2.83 %  (n=2)  (model.unlabeled_weight=1)" in means  # never one mean over both weights
    assert "93.00 ± 4.24 %  (n=2)  (model.unlabeled_weight=3)" in means
    assert "70.00 %  (n=1)" in means and "70.00 ± 0.00" not in means  # one run has no spread
    assert "failed: no metrics.json: the job stopped before it finished" in printed


def test_summary_means_are_in_the_order_of_their_label_counts(tmp_path, capsys) -> None:
    # sorted as text, 100 came before 50
    for number, (labels, seed) in enumerate([(100, 0), (100, 1), (50, 0), (50, 1)]):
        _run(tmp_path, str(number), {**_metrics("ssgan", seed, 0.9), "num_labeled": labels},
             ["model=ssgan", f"data.num_labeled={labels}", f"data.split_seed={seed}"])
    assert summarize_runs.main([str(tmp_path)]) == 0
    means = capsys.readouterr().out.split("mean ± std over runs")[1].strip().splitlines()
    assert [line.split()[1] for line in means] == ["50", "100"]


def test_summary_names_what_a_killed_job_ran_from_hydras_record(tmp_path, capsys) -> None:
    # a job stopped by SIGTERM writes no metrics.json: its row comes from .hydra/, not "?"
    _run(tmp_path, "0", None, ["data.split_seed=2"])
    record = tmp_path / "0" / ".hydra"
    (record / "config.yaml").write_text("seed: 1\ndata:\n  _target_: ssgan.data.DigitsDataModule\n  num_labeled: 50\n"
                                        "  split_seed: 2\nmodel:\n  _target_: ssgan.module.SSGAN\nself_training:\n  rounds: 0\n")
    (record / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      data: digits\n      model: ssgan\n")
    assert summarize_runs.main([str(tmp_path)]) == 1
    [row] = [line for line in capsys.readouterr().out.splitlines() if "failed" in line]
    assert row.split()[:5] == ["digits", "50", "ssgan", "1", "2"]


def test_summary_help_prints_usage_not_a_missing_folder(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        summarize_runs.main(["--help"])
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: python scripts/summarize_runs.py [-h] RUN_FOLDER") and "not a folder" not in printed


def test_bench_scripts_report_failed_jobs_in_a_line_each_and_exit_1(tmp_path, monkeypatch, capsys) -> None:
    ok = {"net": "mlp", "epochs": 20, "val/best_acc": 0.7, "best_epoch": 3, "epoch_seconds": 1.0, "iteration_ms": 2.0,
          "precision": "32-true"}
    runs = [_metrics("ssgan", 0, 0.9, run_dir="a", **ok), _metrics("ssgan", 1, 0.9, run_dir="b", **ok),
            {"status": "diverged", "method": "ssgan", "split_seed": 2, "run_dir": "c",
             "error": "training diverged: discriminator_loss became nan"},
            {"status": "failed", "run_dir": "d", "error": "no metrics.json: the job stopped before it finished"}]
    runs += [_metrics("supervised", seed, 0.8, run_dir=f"s{seed}", **ok) for seed in (0, 1, 2)]
    monkeypatch.setattr(bench_digits, "run_sweep", lambda out_dir, overrides: [
        run for run in runs if (run.get("method") == "supervised") == (out_dir.name == "supervised")])
    assert bench_digits.main(["out"]) == 1
    captured = capsys.readouterr()
    assert "| 2 | - | 80.00 % | - | - | 10 s |" in captured.out and "**mean**" not in captured.out
    # runs are filed by their sweep, not by a method name that an override changes
    renamed = [dict(run, method=f"{run['method']}+self-training") if "method" in run else run for run in runs]
    monkeypatch.setattr(bench_digits, "run_sweep", lambda out_dir, overrides: [
        run for run in renamed if run.get("method", "").startswith("supervised") == (out_dir.name == "supervised")])
    assert bench_digits.main(["out", "self_training=default"]) == 1
    assert "| 1 | 90.00 % | 80.00 % | +10.00 points | 10 s | 10 s |" in capsys.readouterr().out
    # a sweep among the extra overrides would put several runs in a row of the table
    assert bench_digits.main(["out", "seed=0,1"]) == 2
    assert capsys.readouterr().err.strip() == ("error: seed=0,1 is a sweep; this benchmark sweeps data.split_seed itself "
                                              "and takes one value per other setting (run it once per value)")
    # one value of the benchmark's own settings replaced the sweep's: the table showed none of the runs, exit 0
    # and model=supervised filled the SSGAN column with the baseline's runs
    for override in ("data.split_seed=5", "data.num_labeled=100", "+data.label_fraction=0.1", "model=supervised",
                     "data=mnist", "experiment=mnist_100"):
        assert bench_digits.main(["out", override]) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: {override} is set by this benchmark (experiment=digits_50 against model=supervised on digits, 50 "
            "labels, split seeds 0, 1, 2); leave it out, or run ssgan-train -m with the settings you want")
    assert "error: run c (ssgan, split seed 2): diverged: training diverged" in captured.err
    # an output folder whose second sweep's folder holds runs: refused before the first sweep trains
    taken = tmp_path / "taken"
    _run(taken / "supervised", "0", _metrics("supervised", 0, 0.8), ["data.split_seed=0"])
    monkeypatch.setattr(bench_digits, "run_sweep", lambda out_dir, overrides: pytest.fail("a sweep ran"))
    assert bench_digits.main([str(taken)]) == 2
    assert capsys.readouterr().err == f"error: {taken / 'supervised'} already holds a sweep's runs; choose a new output folder\n"
    assert "error: run d (?, split seed ?): failed: no metrics.json" in captured.err

    monkeypatch.setattr(bench_fashion_mnist, "run_sweep", lambda out_dir, overrides: runs)
    monkeypatch.setattr(bench_fashion_mnist, "val_curve", lambda run_dir: [(0, 0.5)])
    assert bench_fashion_mnist.main(["out"]) == 1
    captured = capsys.readouterr()
    assert "| ssgan | mlp | 0 | 32-true | 20 | 90.00 % |" in captured.out
    assert captured.err.count("error: run") == 2
    # and a row each in the table (they were on stderr alone, so a copy of the table lost them)
    assert "| ssgan | - | ? | - | - | diverged | - | - | - | - |" in captured.out
    assert "| ? | - | ? | - | - | failed | - | - | - | - |" in captured.out
    # callbacks=none times nothing, and logger=none writes no CSV log: the table says so instead of crashing
    untimed = [{key: value for key, value in run.items() if key not in ("epoch_seconds", "iteration_ms")} for run in runs]
    monkeypatch.undo()  # the real val_curve, which finds no csv/metrics.csv in these runs' folders
    monkeypatch.setattr(bench_fashion_mnist, "run_sweep", lambda out_dir, overrides: untimed)
    assert bench_fashion_mnist.main(["out", "callbacks=none", "logger=none"]) == 1
    captured = capsys.readouterr()
    assert "| ssgan | mlp | 0 | 32-true | 20 | 90.00 % | 70.00 % (3) | 10 s | - | - |" in captured.out
    assert "val/acc by epoch: no CSV log (logger=none)" in captured.out


def test_bench_arguments_tell_the_folder_from_the_overrides(capsys) -> None:
    default = Path("multirun/x")
    assert _bench.bench_arguments(["trainer.precision=bf16-mixed"], "doc", default) == (default, ["trainer.precision=bf16-mixed"])
    assert _bench.bench_arguments(["runs", "seed=1"], "doc", default) == (Path("runs"), ["seed=1"])
    assert _bench.bench_arguments([], "doc", default) == (default, [])
    with pytest.raises(SystemExit) as stopped:
        _bench.bench_arguments(["--help"], "the script's doc", default)
    assert stopped.value.code == 0 and "the script's doc" in capsys.readouterr().out


@pytest.mark.parametrize("folder", ["multirun/a,b", "multirun/résumé", "multirun/it's here", "multirun/plain_1.0",
                                    # backslashes (once read back doubled, or the value left as a sweep)
                                    "runs\\a,b", "runs\\,b", "runs\\a\\", 'runs\\"a,b', "x\\ y\\\\"])
def test_an_output_folder_is_one_hydra_value(folder) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (override,) = OverridesParser.create().parse_overrides([f"hydra.sweep.dir={_bench.hydra_value(folder)}"])
    assert override.value() == folder


def test_a_bad_count_or_out_file_stops_bench_speed_before_it_measures(tmp_path, monkeypatch, capsys) -> None:
    import bench_speed

    monkeypatch.setattr(bench_speed, "measure", lambda *args: pytest.fail("measured despite a bad argument"))
    for arguments in (["--iterations", "0"], ["--warmup", "-1"], ["--rounds", "0"], ["--out", str(tmp_path)],
                      ["--out", str(tmp_path / "a_file" / "speed.json")]):
        (tmp_path / "a_file").write_text("")
        with pytest.raises(SystemExit) as stopped:
            bench_speed.main([*arguments, "--nets", "mlp"])
        assert stopped.value.code == 2
    errors = capsys.readouterr().err
    assert "0 is below 1; give at least 1" in errors and "is a folder; choose another file" in errors
    assert "a_file is a file, not a folder; choose another file" in errors


def test_make_image_folders_loose_images_are_never_a_training_or_test_image_of_its_folders(tmp_path) -> None:
    # the docstring's "new_images" (--loose 40 alone) were 40 of demo_images' labeled and unlabeled images
    import make_image_folder

    make_image_folder.main([str(tmp_path / "demo"), "--test-per-class", "10", "--size", "8"])
    make_image_folder.main([str(tmp_path / "new"), "--unlabeled", "0", "--labeled-per-class", "0", "--loose", "40",
                            "--size", "8"])
    make_image_folder.main([str(tmp_path / "both"), "--test-per-class", "10", "--loose", "40", "--size", "8"])

    def pictures(folder: Path, *parts: str) -> set[bytes]:
        return {path.read_bytes() for part in parts for path in (folder / part).rglob("*.png")}

    new = {path.read_bytes() for path in (tmp_path / "new").glob("*.png")}
    assert len(new) == 40 and not new & pictures(tmp_path / "demo", "labeled", "unlabeled")  # may be a test image
    loose = {path.read_bytes() for path in (tmp_path / "both").glob("*.png")}
    assert len(loose) == 40 and not loose & pictures(tmp_path / "both", "labeled", "unlabeled", "test")


def test_make_image_folder_checks_its_counts_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys) -> None:
    import make_image_folder

    out = tmp_path / "images"
    with pytest.raises(SystemExit):
        make_image_folder.main([str(out), "--size", "0"])
    capsys.readouterr()
    with pytest.raises(SystemExit):  # it was a MemoryError traceback, after the staging folder was made
        make_image_folder.main([str(out), "--size", "100000"])
    assert "argument --size: 100000 is above 1024; give at most 1024" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_image_folder.main([str(out), "--labeled-per-class", "-1"])
    # more than the digits hold, or nothing at all: once cut short (or an empty folder) with exit 0
    for counts, message in ((["--labeled-per-class", "500"], "--labeled-per-class 500 is more than the 131 that every digit has"),
                            (["--unlabeled", "5000"], "--unlabeled 5000 asks for more images than the 1300 left beside "
                                                      "the labeled ones; ask for at most 1300"),
                            (["--loose", "1000", "--test-per-class", "10"], "--loose 1000 asks for more images than the 347 "
                                                                            "of the digits test split left beside test/; ask for at most 347"),
                            (["--test-per-class", "100"], "--test-per-class 100 is more than the 43 that every digit has"),
                            (["--labeled-per-class", "0", "--unlabeled", "0"], "nothing to write: every count is 0")):
        with pytest.raises(SystemExit) as exited:
            make_image_folder.main([str(out), *counts])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()
    written = []

    def write_png(image, path: str) -> None:
        if len(written) == 3:
            raise OSError("No space left on device")
        written.append(path)
        Path(path).write_bytes(b"")

    monkeypatch.setattr(make_image_folder, "write_png", write_png)
    with pytest.raises(OSError):
        make_image_folder.main([str(out), "--unlabeled", "2"])
    assert list(tmp_path.iterdir()) == []  # neither OUT nor its staging folder: the same command can run again
    written.clear()
    monkeypatch.setattr(make_image_folder, "write_png", lambda image, path: Path(path).write_bytes(b""))
    make_image_folder.main([str(out), "--labeled-per-class", "1", "--unlabeled", "2"])
    assert len(list(out.rglob("*.png"))) == 12 and [p.name for p in tmp_path.iterdir()] == ["images"]


def test_bench_scripts_stopped_by_sigterm_report_the_finished_runs_and_exit_143(tmp_path, monkeypatch, capsys) -> None:
    # the sweep's SIGTERM ended the script with exit code 1 and no table, though runs had finished
    monkeypatch.setattr(_bench, "run_child", lambda command: 143)
    with pytest.raises(_bench.SweepStopped) as stopped:
        _bench.run_sweep(tmp_path / "sweep", ["seed=0"])
    assert stopped.value.code == 143 and stopped.value.runs == []

    ok = {"net": "mlp", "epochs": 20, "val/best_acc": 0.7, "best_epoch": 3, "epoch_seconds": 1.0, "iteration_ms": 2.0,
          "precision": "32-true"}
    ssgan_runs = [_metrics("ssgan", seed, 0.9, run_dir=f"g{seed}", **ok) for seed in (0, 1, 2)]
    supervised_runs = [_metrics("supervised", 0, 0.8, run_dir="s0", **ok),
                       {"status": "failed", "method": "supervised", "split_seed": 1, "run_dir": "s1", "crashed": True,
                        "error": "RuntimeError: boom"}]

    def sweep(out_dir, overrides):
        if out_dir.name == "ssgan":
            return ssgan_runs
        raise _bench.SweepStopped(143, supervised_runs)

    monkeypatch.setattr(bench_digits, "run_sweep", sweep)
    assert bench_digits.main(["out"]) == 143
    captured = capsys.readouterr()
    assert "| 0 | 90.00 % | 80.00 % | +10.00 points |" in captured.out and "| 1 | 90.00 % | - |" in captured.out
    # the job that crashed before the stop says why (the stop's line came alone)
    assert captured.err == ("error: run s1 (supervised, split seed 1): failed: RuntimeError: boom\n"
                            "error: stopped by SIGTERM: the sweep stopped before it finished, and the table holds the "
                            "runs that finished\n")

    def no_ssgan_runs(out_dir, overrides):  # the SSGAN sweep returned no run, then the supervised one stopped
        if out_dir.name == "ssgan":
            return []
        raise _bench.SweepStopped(143, supervised_runs)

    monkeypatch.setattr(bench_digits, "run_sweep", no_ssgan_runs)
    assert bench_digits.main(["out"]) == 143
    # its runs were once filed as SSGAN's
    assert "| 0 | - | 80.00 % | - |" in capsys.readouterr().out

    def stopped_sweep(out_dir, overrides):
        raise _bench.SweepStopped(130, ssgan_runs[:1])

    monkeypatch.setattr(bench_fashion_mnist, "run_sweep", stopped_sweep)
    monkeypatch.setattr(bench_fashion_mnist, "val_curve", lambda run_dir: [(0, 0.5)])
    assert bench_fashion_mnist.main(["out"]) == 130
    captured = capsys.readouterr()
    assert "| ssgan | mlp | 0 | 32-true | 20 | 90.00 % |" in captured.out and "stopped by Ctrl-C" in captured.err


def test_a_sweep_whose_every_job_refused_the_same_setting_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch,
                                                                                            capsys) -> None:
    def sweep_of(errors: list[tuple[str | None, bool]]):
        def run_child(command: list[str]) -> int:  # ssgan-train -m: each job records its refusal and the sweep goes on
            out_dir = Path(next(a for a in command if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])
            for number, (error, crashed) in enumerate(errors):  # None: killed before it wrote metrics.json
                metrics = None if error is None else {"status": "failed", "error": error, **({"crashed": True} if crashed else {})}
                _run(out_dir, str(number), metrics, [f"data.split_seed={number}"])
            (out_dir / "multirun.yaml").write_text("{}\n")
            return 3  # ssgan-train's status after a sweep with failed jobs
        return run_child

    refused = "trainer.max_epochs=abc is not a number of epochs; use 1 or more"
    monkeypatch.setattr(_bench, "run_child", sweep_of([(refused, False)] * 3))
    with pytest.raises(_bench.SweepRefused) as stopped:
        _bench.run_sweep(tmp_path / "out" / "ssgan", ["trainer.max_epochs=abc"])
    assert stopped.value.refusal == refused
    assert list(tmp_path.iterdir()) == []  # it was left, and the same command with the setting fixed refused it
    # an output folder that was there, empty, stays
    (tmp_path / "given").mkdir()
    with pytest.raises(_bench.SweepRefused):
        _bench.run_sweep(tmp_path / "given", ["trainer.max_epochs=abc"])
    assert list(tmp_path.iterdir()) == [tmp_path / "given"] and list((tmp_path / "given").iterdir()) == []
    # crashes (their tracebacks are in the jobs' logs), kills and different errors are each a job's own: kept
    for number, errors in enumerate(([("RuntimeError: boom", True)] * 2, [(refused, False), ("RuntimeError: boom", True)],
                                     [(refused, False), ("data.root=/x: not found", False)], [(None, False)] * 2)):
        monkeypatch.setattr(_bench, "run_child", sweep_of(errors))
        runs = _bench.run_sweep(tmp_path / f"kept{number}", ["x=1"])
        assert len(runs) == len(errors) and (tmp_path / f"kept{number}" / "multirun.yaml").is_file()
    # the scripts: one line; bench_digits names the first sweep's runs that a refusal in the second leaves
    monkeypatch.setattr(bench_fashion_mnist, "run_sweep", lambda out_dir, overrides: (_ for _ in ()).throw(
        _bench.SweepRefused(refused)))
    assert bench_fashion_mnist.main([str(tmp_path / "fm")]) == 2
    assert capsys.readouterr().err == f"error: {refused} (every job of the sweep refused it; nothing was trained or kept)\n"

    def baseline_refuses(out_dir, overrides):
        if out_dir.name == "ssgan":
            return [_metrics("ssgan", seed, 0.9, run_dir=f"g{seed}") for seed in (0, 1, 2)]
        raise _bench.SweepRefused("model.latent_dim is not a setting of SupervisedBaseline; remove it")

    monkeypatch.setattr(bench_digits, "run_sweep", baseline_refuses)
    assert bench_digits.main([str(tmp_path / "bd")]) == 2
    assert capsys.readouterr().err == (
        "error: model.latent_dim is not a setting of SupervisedBaseline; remove it (every job of the supervised sweep "
        f"refused it; the ssgan sweep's runs before it are kept in {tmp_path / 'bd'}, so run the benchmark again into a "
        "new folder)\n")


def test_a_non_finite_test_accuracy_is_a_failed_run_in_the_bench_scripts() -> None:
    # as summarize_runs and the label-fraction report count it; it was a row of "nan %" and exit 0
    runs = [{"status": "ok", "test/acc": value, "run_dir": name, "method": "ssgan", "split_seed": 0}
            for name, value in (("a", float("nan")), ("b", float("inf")), ("c", 0.9))]
    finished, failed = _bench.split_failed(runs)
    assert [run["run_dir"] for run in finished] == ["c"]
    assert [line.split(" ")[0] for line in failed] == ["a", "b"]
