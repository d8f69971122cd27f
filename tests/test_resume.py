"""A run killed with SIGKILL (mid-epoch, or mid-way through a self-training round) resumes with
``ckpt_path=last`` and ends with the metrics of the uninterrupted run."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SMALLER_D, SMALLER_G, run_cli, train_in_fork
from ssgan.errors import UserError
from ssgan.train import refuse_fewer_epochs
from test_bad_input import (ANOTHER_MODULE, ANOTHER_OPTIMIZER, ANOTHER_SPLIT, CHANGED_SCHEDULE, CUT_SHORT_LAST, FEWER_EPOCHS,
                            assert_one_error_line)

TESTS = Path(__file__).resolve().parent
# 13 batches an epoch (1,300 unlabeled images); the last checkpoint every 6 optimizer steps = every 3 batches
COMMON = ["data=digits", "data.num_labeled=20", "trainer.enable_progress_bar=false", "data.num_val=50",
          "callbacks.mid_epoch_checkpoint.every_n_train_steps=6", "callbacks.sample_grid=null", SMALLER_D, SMALLER_G]
COMPARED = ("test/acc", "val/acc", "val/best_acc", "best_epoch", "epochs", "steps", "num_labeled")


def _train(run_dir: Path, *overrides: str, env: dict[str, str] | None = None,
           new_interpreter: bool = False) -> subprocess.CompletedProcess:
    """Trains in a process of its own that a test can kill, with one thread (the same sums every time):
    forked from this one, or ``new_interpreter``, which also shows what happens at interpreter exit."""
    args = [*COMMON, *overrides, f"hydra.run.dir={run_dir}"]
    if new_interpreter:
        return run_cli(*args, cwd=run_dir.parent, env={"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1", **(env or {})})
    return train_in_fork(*args, cwd=run_dir.parent, env=env)


def _curves(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _kill_and_resume(tmp_path: Path, overrides: list[str], epoch: int, batch: int) -> tuple[dict, dict, dict]:
    whole = _train(tmp_path / "whole", *overrides)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = _train(tmp_path / "killed", *overrides, "+callbacks.kill._target_=kill_switch.KillAt",
                    f"+callbacks.kill.epoch={epoch}", f"+callbacks.kill.batch={batch}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "killed" / "metrics.json").exists()
    checkpoint = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    resumed = _train(tmp_path / "killed", *overrides, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return (json.loads((tmp_path / "whole" / "metrics.json").read_text()),
            json.loads((tmp_path / "killed" / "metrics.json").read_text()), checkpoint)


def test_killed_mid_epoch_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    whole, resumed, checkpoint = _kill_and_resume(tmp_path, ["trainer.max_epochs=3"], epoch=1, batch=8)
    # the kill came mid-epoch: the checkpoint it resumed from is mid-epoch too (epoch 1, 8 of 13 batches)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 2 * (13 + 8)
    # its 8 batches of epoch 1 count: a resume asking for 1 epoch would report them as a 1-epoch run
    with pytest.raises(UserError, match=r"^last.ckpt has trained 1 epoch and 8 batches of the next, more than "
                                        r"trainer.max_epochs=1; resume with trainer.max_epochs=2 or more$"):
        refuse_fewer_epochs("last.ckpt", checkpoint, 1, 0, setting="trainer.max_epochs")
    refuse_fewer_epochs("last.ckpt", checkpoint, 2, 0, setting="trainer.max_epochs")
    assert {key: resumed[key] for key in COMPARED} == {key: whole[key] for key in COMPARED}
    # the same schedule as the checkpoint's: the learning rate goes on as it was, without a word
    assert "resuming at epoch" not in (tmp_path / "killed" / "train.log").read_text()
    assert "not the checkpoint's" not in (tmp_path / "killed" / "train.log").read_text()  # nor its optimizer settings
    # the resumed process timed one whole epoch (epoch 2), not the rest of epoch 1 as if it were one;
    # the checkpoint carried epoch 0's time, and the seconds the killed process had trained
    carried = checkpoint["callbacks"]["SpeedMonitor"]
    assert len(carried["epoch_seconds"]) == 1 and carried["train_seconds"] > 0
    final = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    epochs_timed = final["callbacks"]["SpeedMonitor"]["epoch_seconds"]
    assert len(epochs_timed) == 2 and epochs_timed[0] == carried["epoch_seconds"][0]  # epochs 0 and 2
    # train_seconds: the killed process's, up to its checkpoint, plus the resumed process's (epoch 2 and more)
    assert resumed["train_seconds"] > carried["train_seconds"] + epochs_timed[1]
    assert 0 < resumed["epoch_seconds"] <= resumed["train_seconds"]
    # the per-epoch curves of the whole run, not only of the epochs the resumed process ran (Lightning's CSV
    # logger deletes its file when it starts)
    whole_curves, resumed_curves = (_curves(tmp_path / run / "csv" / "metrics.csv") for run in ("whole", "killed"))
    assert [row["epoch"] for row in resumed_curves if row.get("val/acc")] == ["0", "1", "2"]
    assert [(row["epoch"], row["val/acc"]) for row in resumed_curves if row.get("val/acc")] == \
        [(row["epoch"], row["val/acc"]) for row in whole_curves if row.get("val/acc")]
    assert any(row.get("test/acc") for row in resumed_curves)  # the test's row, appended after the merge
    # the train/ means of epoch 1, which the kill cut in two, cover all its batches, not only those after the checkpoint
    train_keys = [key for key in whole_curves[0] if key.startswith("train/")]
    assert train_keys and [[row[key] for key in train_keys] for row in resumed_curves if row.get(train_keys[0])] == \
        [[row[key] for key in train_keys] for row in whole_curves if row.get(train_keys[0])]


def test_resuming_a_finished_run_keeps_its_metrics_or_writes_the_missing_ones(tmp_path: Path, train_in_process) -> None:
    run = tmp_path / "run"
    # mid-epoch saves at steps 10 and 20 of 26: last.ckpt must still be written at the end of the epoch
    once = [*COMMON, "trainer.max_epochs=1", "callbacks.mid_epoch_checkpoint.every_n_train_steps=10",
            f"hydra.run.dir={run}"]
    code, stderr = train_in_process(*once, cwd=tmp_path)  # no kill here: in this process, without a new interpreter
    assert code == 0, stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 26
    written, curves = (run / "metrics.json").read_text(), _curves(run / "csv" / "metrics.csv")
    assert any(row.get("test/acc") for row in curves)
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    assert "already finished" in (run / "train.log").read_text()  # Hydra's job log
    assert (run / "metrics.json").read_text() == written  # not replaced by a run that trained nothing
    assert _curves(run / "csv" / "metrics.csv") == curves  # nor its curves, the test's row included
    # test_ckpt=best on the finished run: it tests best.ckpt, as that setting says (it was ignored, yet recorded)
    code, stderr = train_in_process(*once, "ckpt_path=last", "test_ckpt=best", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    retested = json.loads((run / "metrics.json").read_text())
    assert retested["tested"] == "best" and json.loads(written)["tested"] == "last"
    assert {key: value for key, value in retested.items() if not key.startswith("test/") and key != "tested"} == \
        {key: value for key, value in json.loads(written).items() if not key.startswith("test/") and key != "tested"}
    # the same figures as a run that asked for test_ckpt=best from its start
    code, stderr = train_in_process(*once[:-1], f"hydra.run.dir={tmp_path / 'best_from_start'}", "test_ckpt=best",
                                    cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    from_start = json.loads((tmp_path / "best_from_start" / "metrics.json").read_text())
    assert {key: value for key, value in retested.items() if key.startswith("test/")} == \
        {key: value for key, value in from_start.items() if key.startswith("test/")}
    # a resume that does not name test_ckpt keeps what the run tested
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text()) == retested
    (run / "metrics.json").write_text(written)
    # killed after its last checkpoint but before metrics.json: resuming writes the same figures
    (run / "metrics.json").unlink()
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    original, rewritten = json.loads(written), json.loads((run / "metrics.json").read_text())
    assert {key: rewritten[key] for key in COMPARED} == {key: original[key] for key in COMPARED}
    # a last.ckpt cut short (a disk that filled up as it was written, a killed copy): one line naming the
    # checkpoint that still reads, with its epoch, or, with none, the way to start again
    last, best = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt"
    whole_last = last.read_bytes()
    last.write_bytes(whole_last[:5000])
    best_epoch = torch.load(best, map_location="cpu", weights_only=True)["epoch"]
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 2 and re.fullmatch(
        rf"error: ckpt_path={re.escape(str(last))} is damaged or cut short \(\w+\); resume from the run's other "
        rf"checkpoint, saved in epoch {best_epoch}: ckpt_path={re.escape(str(best))}", stderr.strip().splitlines()[-1])
    assert_one_error_line(stderr, CUT_SHORT_LAST)
    last.write_bytes(b"")  # a copy killed at its start
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 2 and "is damaged or cut short (" in stderr.strip().splitlines()[-1], stderr[-1500:]
    whole_best = best.read_bytes()
    best.write_bytes(whole_best[:5000])
    code, stderr = train_in_process(*once, "ckpt_path=last", cwd=tmp_path)
    assert code == 2 and re.fullmatch(
        rf"error: ckpt_path={re.escape(str(last))} is damaged or cut short \(\w+\); the run has no other readable "
        r"checkpoint; start it again without ckpt_path \(with overwrite=true in its own folder\)",
        stderr.strip().splitlines()[-1])
    last.write_bytes(whole_last)
    best.write_bytes(whole_best)
    # a best.ckpt cut short (a disk that filled up as something else copied it): one line, not Lightning's traceback
    best.write_bytes(best.read_bytes()[:5000])
    kept = (run / "metrics.json").read_text()
    code, stderr = train_in_process(*once, "ckpt_path=last", "test_ckpt=best", cwd=tmp_path)
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"error: test_ckpt=best: {best} cannot be read (damaged, or cut short by a full disk); the run's metrics.json "
        "(of its last weights) is kept as it is")
    assert (run / "metrics.json").read_text() == kept


def test_a_finished_run_resumed_with_more_epochs_trains_them_on_its_new_schedule(tmp_path: Path, train_in_process) -> None:
    run = tmp_path / "run"
    settings = [*COMMON, "callbacks.mid_epoch_checkpoint=null", f"hydra.run.dir={run}"]
    code, stderr = train_in_process(*settings, "trainer.max_epochs=2", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    weights = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    code, stderr = train_in_process(*settings, "trainer.max_epochs=3", "ckpt_path=last", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    resumed = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # the 2-epoch schedule ends at 0; the 3-epoch one gives epoch 2 its full rate: the added epoch trains
    assert resumed["epoch"] == 2
    key = "discriminator.classifier.direction"
    assert not torch.equal(resumed["state_dict"][key], weights[key])
    assert ("resuming at epoch 2: the learning rate follows this run's schedule, 1 times its base rate this epoch, "
            "where the checkpoint's schedule gave 0") in (run / "train.log").read_text()


def test_resuming_with_fewer_epochs_than_trained_is_one_line_and_changes_nothing(tmp_path: Path, train_in_process) -> None:
    # in this process (the console entry point's main()): no kill here, and each refusal would cost a new
    # interpreter's imports
    def train_here(run_dir: Path, *overrides: str) -> tuple[int, str]:
        return train_in_process(*COMMON, *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)

    run = tmp_path / "run"
    code, stderr = train_here(run, "trainer.max_epochs=2", "callbacks.mid_epoch_checkpoint=null")
    assert code == 0, stderr[-2000:]
    record = {path.name: path.read_bytes() for path in [*(run / ".hydra").iterdir(), run / "metrics.json"]}
    code, stderr = train_here(run, "trainer.max_epochs=1", "callbacks.mid_epoch_checkpoint=null", "ckpt_path=last")
    assert code == 2 and "Traceback" not in stderr, stderr[-2000:]
    assert_one_error_line(stderr, FEWER_EPOCHS, run / "checkpoints" / "last.ckpt")
    assert "has trained 2 epochs, more than trainer.max_epochs=1; resume with trainer.max_epochs=2 or more" in stderr
    assert {path.name: path.read_bytes() for path in [*(run / ".hydra").iterdir(), run / "metrics.json"]} == record
    # from another folder (a copy goes on from the checkpoint): the same check, and no run folder is left
    code, stderr = train_here(tmp_path / "copy", "trainer.max_epochs=1", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert code == 2 and "more than trainer.max_epochs=1" in stderr
    assert not (tmp_path / "copy").exists()
    # with other split settings: it would train on the checkpoint's split and report the new one
    code, stderr = train_here(tmp_path / "copy", "trainer.max_epochs=3", "data.num_labeled=30",
                              f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert code == 2, stderr[-2000:]
    assert_one_error_line(stderr, ANOTHER_SPLIT, run / "checkpoints" / "last.ckpt")
    assert not (tmp_path / "copy").exists()
    # with another optimizer class: Adam's moments fit no SGD (and SGD's state failed inside Adam's step)
    code, stderr = train_here(tmp_path / "copy", "trainer.max_epochs=3", "model.optimizer_d._target_=torch.optim.SGD",
                              "~model.optimizer_d.betas", "~model.optimizer_d.fused",
                              f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert code == 2, stderr[-2000:]
    assert_one_error_line(stderr, ANOTHER_OPTIMIZER, run / "checkpoints" / "last.ckpt")
    assert not (tmp_path / "copy").exists()
    # into another model's nets: named as the model to resume with, not as the weights Lightning finds unexpected
    code, stderr = train_in_process(*(item for item in COMMON if item != SMALLER_G), "trainer.max_epochs=3", "model=supervised",
                                    f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={tmp_path / 'copy'}",
                                    cwd=tmp_path)  # (the baseline has no generator to set)
    assert code == 2, stderr[-2000:]
    assert_one_error_line(stderr, ANOTHER_MODULE, run / "checkpoints" / "last.ckpt")
    assert not (tmp_path / "copy").exists()
    # a checkpoint naming a class that is no model: refused as damaged, not with a fix that builds that class
    forged = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    forged["ssgan_module"] = "collections.OrderedDict"
    torch.save(forged, tmp_path / "forged.ckpt")
    code, stderr = train_here(tmp_path / "copy", "trainer.max_epochs=3", f"ckpt_path={tmp_path / 'forged.ckpt'}")
    assert code == 2, stderr[-2000:]
    assert_one_error_line(stderr, "PATH records its model class as collections.OrderedDict, which is not an ssgan model; "
                                  "the checkpoint is damaged or not ssgan's", tmp_path / "forged.ckpt")
    assert not (tmp_path / "copy").exists()


def test_a_resume_into_a_new_folder_killed_again_keeps_the_earlier_runs_curves(tmp_path: Path) -> None:
    overrides = ["trainer.max_epochs=3"]
    whole = _train(tmp_path / "whole", *overrides)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = _train(tmp_path / "killed", *overrides, "+callbacks.kill._target_=kill_switch.KillAt",
                    "+callbacks.kill.epoch=1", "+callbacks.kill.batch=2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # resumed into a new folder, and killed again there before the end: the earlier run's rows were written only
    # when the fit ended, so the kill lost them, and the new folder's resume found only its own
    again = _train(tmp_path / "new", *overrides, f"ckpt_path={tmp_path / 'killed' / 'checkpoints' / 'last.ckpt'}",
                   "+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=2", "+callbacks.kill.batch=2")
    assert again.returncode == -signal.SIGKILL, again.stderr[-2000:]
    resumed = _train(tmp_path / "new", *overrides, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole_curves, new_curves = (_curves(tmp_path / run / "csv" / "metrics.csv") for run in ("whole", "new"))
    assert [(row["epoch"], row["val/acc"]) for row in new_curves if row.get("val/acc")] == \
        [(row["epoch"], row["val/acc"]) for row in whole_curves if row.get("val/acc")]


def test_killed_mid_round_resumes_to_the_same_rounds_and_metrics(tmp_path: Path) -> None:
    rounds = ["trainer.max_epochs=2", "self_training=default", "self_training.rounds=2", "self_training.epochs_per_round=2",
              "self_training.threshold=0.5", "self_training.max_per_class=5"]
    # epochs 0-1 train, round 1 is epochs 2-3, round 2 epochs 4-5: the kill lands in round 1's second epoch
    whole, resumed, checkpoint = _kill_and_resume(tmp_path, rounds, epoch=3, batch=8)
    assert checkpoint["epoch"] == 3 and checkpoint["global_step"] % 26 != 0  # mid-epoch, in round 1
    assert {key: resumed[key] for key in COMPARED} == {key: whole[key] for key in COMPARED}
    assert resumed["rounds"] == whole["rounds"] and len(whole["rounds"]) == 3  # the first training + 2 rounds
    # a higher trainer.max_epochs would move the rounds' epochs: refused, and the run's record kept
    record = {path.name: path.read_bytes() for path in [*(tmp_path / "killed" / ".hydra").iterdir()]}
    moved = _train(tmp_path / "killed", *rounds, "trainer.max_epochs=3", "ckpt_path=last")
    assert moved.returncode == 2 and "Traceback" not in moved.stderr, moved.stderr[-2000:]
    assert_one_error_line(moved.stderr, CHANGED_SCHEDULE, tmp_path / "killed" / "checkpoints" / "last.ckpt")
    assert moved.stderr.strip().endswith("resume it with trainer.max_epochs=2; to train on, give more rounds from its "
                                         "checkpoint in a new folder (self_training.rounds=3 hydra.run.dir=<a new folder>)")
    assert {path.name: path.read_bytes() for path in [*(tmp_path / "killed" / ".hydra").iterdir()]} == record


def _stop_by_signal(run: Path, signal_name: str, status: int, how: str, new_interpreter: bool = False) -> str:
    """Stops a 2-epoch run in epoch 1 with ``signal_name``; checks its exit status and its last line, which
    gives the whole resume command with the run's own overrides, as the user can paste it. Returns those."""
    kill = ["+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=1", "+callbacks.kill.batch=3",
            f"+callbacks.kill.signal_name={signal_name}"]
    stopped = _train(run, "trainer.max_epochs=2", *kill, new_interpreter=new_interpreter)
    assert stopped.returncode == status, stopped.stderr[-2000:]
    overrides = shlex.join([*COMMON, "trainer.max_epochs=2", *kill])  # quoted for the shell
    assert stopped.stderr.strip().splitlines()[-1] == (f"error: stopped by {how} before the run finished; resume it "
                                                       f"with: ssgan-train {overrides} hydra.run.dir={run} ckpt_path=last")
    assert not (run / "metrics.json").exists() and (run / "checkpoints" / "last.ckpt").is_file()
    # nor Lightning's own lines before it ("[rank: 0] Received SIGTERM: 15", "Detected KeyboardInterrupt, ...")
    output = stopped.stdout + stopped.stderr
    assert "Received SIGTERM" not in output and "Detected KeyboardInterrupt" not in output, output[-2000:]
    return overrides


def test_a_run_stopped_by_sigterm_exits_non_zero_and_resumes(tmp_path: Path, train_in_process) -> None:
    run = tmp_path / "run"
    # Lightning ends the loop with a SystemExit of status 0: a scheduler would have taken it for a finished run
    overrides = _stop_by_signal(run, "SIGTERM", 143, "SIGTERM")
    # a resume that forgot an override of the model, the data or self-training is refused, and the
    # run's record (.hydra/) and checkpoint are left as they were (refused in this process: no new interpreter)
    record = (run / ".hydra" / "overrides.yaml").read_text()
    for changed, shown in [("model.unlabeled_weight=2", "model.unlabeled_weight: 1.0 -> 2"),
                           ("self_training=default", "self_training.rounds: 0 -> 3")]:
        code, stderr = train_in_process(*COMMON, "trainer.max_epochs=2", changed, "ckpt_path=last", f"hydra.run.dir={run}",
                                        cwd=tmp_path)
        assert code == 2, stderr[-2000:]
        line = stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: this run's checkpoint was trained with other settings ({shown}"), line
        assert line.endswith(f"resume it with its own: ssgan-train {overrides} hydra.run.dir={run} ckpt_path=last"), line
        assert (run / ".hydra" / "overrides.yaml").read_text() == record
    # the command it gives keeps what a resume may change (here a higher trainer.max_epochs), as given now
    code, stderr = train_in_process(*COMMON, "trainer.max_epochs=3", "model.unlabeled_weight=2", "ckpt_path=last",
                                    f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2, stderr[-2000:]
    own = overrides.replace("trainer.max_epochs=2", "trainer.max_epochs=3")
    assert stderr.strip().splitlines()[-1].endswith(f"resume it with its own: ssgan-train {own} hydra.run.dir={run} "
                                                    "ckpt_path=last")
    # callbacks chosen anew: the run's settings inside its old callbacks group would not compose with them
    without_callbacks = [item for item in COMMON if not item.startswith("callbacks.")]
    code, stderr = train_in_process(*without_callbacks, "trainer.max_epochs=2", "callbacks=none", "model.unlabeled_weight=2",
                                    "ckpt_path=last", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2, stderr[-2000:]
    own = " ".join(item for item in overrides.split() if not item.lstrip("+").startswith("callbacks."))
    assert stderr.strip().splitlines()[-1].endswith(f"resume it with its own: ssgan-train {own} callbacks=none "
                                                    f"hydra.run.dir={run} ckpt_path=last")
    resumed = _train(run, "trainer.max_epochs=2", "ckpt_path=last")  # trainer.* and callbacks may change
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_run_stopped_by_ctrl_c_exits_130_with_the_resume_command(tmp_path: Path) -> None:
    # Lightning alone turns Ctrl-C into a bare exit(1), as if the run had crashed; here in a new interpreter,
    # whose exit status is also what it does at exit
    _stop_by_signal(tmp_path / "run", "SIGINT", 130, "Ctrl-C", new_interpreter=True)


def test_on_slurm_the_requeue_signal_leaves_no_mid_step_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    # A SLURM job's variables, and an scontrol that only records what it was asked.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol_log = tmp_path / "scontrol.log"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {scontrol_log}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "ssgan",
             "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    run = tmp_path / "run"
    stopped = _train(run, "trainer.max_epochs=2", "+callbacks.kill._target_=kill_switch.KillAt",
                     "+callbacks.kill.epoch=1", "+callbacks.kill.batch=3", "+callbacks.kill.signal_name=SIGUSR1", env=slurm)
    # Lightning's auto-requeue would have saved hpc_ckpt_1.ckpt from inside the handler, mid-step, called
    # `scontrol requeue 4242`, trained on, and then tested the weights of that checkpoint, not the trained ones
    assert stopped.returncode == -signal.SIGUSR1, stopped.stderr[-2000:]
    assert not list(run.glob("hpc_ckpt_*")) and not scontrol_log.exists()
    resumed = _train(run, "trainer.max_epochs=2", "ckpt_path=last", env=slurm)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert not list(run.glob("hpc_ckpt_*"))


def test_the_mid_epoch_checkpoint_leaves_an_epochs_last_batch_to_the_end_of_epoch_save(tmp_path: Path) -> None:
    # Lightning counts a save on an epoch's last batch as the epoch's end: a run killed while it then
    # validates would resume in the next epoch, that epoch's validation and round boundary skipped
    import pytorch_lightning as pl

    from ssgan.callbacks import MidEpochCheckpoint
    from ssgan.data import DigitsDataModule
    from ssgan.module import SupervisedBaseline

    saves = MidEpochCheckpoint(dirpath=tmp_path, filename="{step}", monitor=None, save_top_k=-1, every_n_train_steps=2,
                               every_n_epochs=0, enable_version_counter=False)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=4, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[saves])
    trainer.fit(SupervisedBaseline((1, 8, 8), 10),  # one optimizer step a batch: the epochs end at steps 4 and 8
                datamodule=DigitsDataModule(num_labeled=20, num_val=20, split_cache_dir=None))
    assert sorted(path.name for path in tmp_path.glob("*.ckpt")) == ["step=2.ckpt", "step=6.ckpt"]
    # each save holds the callback's state under the key a resume with the same settings looks for (it was
    # saved under every_n_train_steps=1, and every resume printed Lightning's "callbacks ... need to be provided")
    saved = torch.load(tmp_path / "step=2.ckpt", map_location="cpu", weights_only=False)["callbacks"]
    assert saves.state_key in saved and "'every_n_train_steps': 2" in saves.state_key


def test_a_resume_into_a_new_folder_trains_with_its_own_optimizer_settings(tmp_path: Path, train_in_process) -> None:
    # the checkpoint's optimizer state brought its run's learning rate back: a lower rate given after a
    # divergence was ignored without a word
    settings = [*COMMON, "callbacks.mid_epoch_checkpoint=null"]
    run, copy = tmp_path / "run", tmp_path / "copy"
    code, stderr = train_in_process(*settings, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    code, stderr = train_in_process(*settings, "trainer.max_epochs=2", "model.optimizer_d.lr=0.001",
                                    "model.optimizer_d.betas=[0.9,0.999]", "seed=5", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                                    f"hydra.run.dir={copy}", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    resumed = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    discriminator, generator = (state["param_groups"][0] for state in resumed["optimizer_states"])
    assert discriminator["initial_lr"] == 0.001 and list(discriminator["betas"]) == [0.9, 0.999]
    assert generator["initial_lr"] == 0.003 and list(generator["betas"]) == [0.5, 0.999]  # as configured, unchanged
    assert resumed["lr_schedulers"][0]["base_lrs"] == [0.001]
    assert ("resuming with this run's optimizer settings, not the checkpoint's: model.optimizer_d.betas: [0.5, 0.999] "
            "-> [0.9, 0.999], model.optimizer_d.lr: 0.003 -> 0.001") in (copy / "train.log").read_text()
    # the other changed settings are named too (they went on without a word), the optimizer's only once
    assert (f"resuming {run / 'checkpoints' / 'last.ckpt'} with settings other than its run's: seed: 0 -> 5\n"
            in (copy / "train.log").read_text())
    # a checkpoint without its run's record (ssgan-cli's, or one copied elsewhere): held to the model settings it stores
    (tmp_path / "elsewhere").mkdir()
    copied = tmp_path / "elsewhere" / "last.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", copied)
    code, stderr = train_in_process(*settings, "trainer.max_epochs=2", "model.unlabeled_weight=2", f"ckpt_path={copied}",
                                    f"hydra.run.dir={tmp_path / 'from_copy'}", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    assert (f"resuming {copied} with settings other than its run's: model.unlabeled_weight: 1.0 -> 2\n"
            in (tmp_path / "from_copy" / "train.log").read_text())


TINY = ["trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "callbacks.sample_grid=null"]


def _val_epochs(run: Path) -> list[str]:
    return [row["epoch"] for row in _curves(run / "csv" / "metrics.csv") if row.get("val/acc")]


def test_ckpt_path_last_resumes_without_checkpoint_callbacks(tmp_path: Path, train_in_process) -> None:
    # Lightning finds "last" only in its checkpoint callbacks' folders: with callbacks=none it trained from scratch
    run = tmp_path / "run"
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    without_callbacks = [item for item in TINY if not item.startswith("callbacks.")]
    code, stderr = train_in_process(*without_callbacks, "trainer.max_epochs=2", "callbacks=none", "ckpt_path=last",
                                    f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert _val_epochs(run) == ["0", "1"]  # epoch 0 once: it was not trained again


def test_a_home_relative_ckpt_path_resumes(tmp_path: Path, train_in_process, monkeypatch: pytest.MonkeyPatch) -> None:
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    monkeypatch.setenv("HOME", str(tmp_path))
    # quoted, as the override grammar asks of a ~ (check_override_syntax)
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=2", 'ckpt_path="~/run/checkpoints/last.ckpt"',
                                    f"hydra.run.dir={tmp_path / 'new'}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    assert json.loads((tmp_path / "new" / "metrics.json").read_text())["epochs"] == 2


def test_a_resume_that_trained_keeps_its_record_and_log_when_it_fails_after(tmp_path: Path, train_in_process,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    (run / "metrics.json").unlink()  # killed after its last checkpoint

    def full_disk(path: Path, payload: dict) -> None:
        raise UserError(f"cannot write {path}: No space left on device; free some space, or run in another folder")

    monkeypatch.setattr("ssgan.train.write_json_atomic", full_disk)
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=2", "ckpt_path=last", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2 and "No space left on device" in stderr, stderr[-1500:]
    # the resumed epoch happened: its lines stay in the log, and the record says how it ran
    log = (run / "train.log").read_text()
    assert log.count("training ssgan on digits") == 2 and "No space left on device" in log
    assert "trainer.max_epochs=2" in (run / ".hydra" / "overrides.yaml").read_text()


def test_a_run_resumed_in_its_last_epoch_still_validates_its_final_weights(tmp_path: Path) -> None:
    # validation every 2nd epoch, and the final (3rd) epoch always: also when the run resumes mid-way through it
    overrides = ["trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"]
    killed = _train(tmp_path / "run", *overrides, "+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=2",
                    "+callbacks.kill.batch=8")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _train(tmp_path / "run", *overrides, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _val_epochs(tmp_path / "run") == ["1", "2"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["val/acc"] is not None


def test_a_sweep_job_stopped_by_sigterm_prints_the_command_that_resumes_it(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    kill = ["+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=1", "+callbacks.kill.batch=3",
            "+callbacks.kill.signal_name=SIGTERM"]
    stopped = train_in_fork("-m", *COMMON, "trainer.max_epochs=2", *kill, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    overrides = shlex.join([*COMMON, "trainer.max_epochs=2", *kill]).replace("=false", "=False")  # as the sweep wrote them
    # it once said only "ckpt_path=last in its folder", and a sweep into that folder again is refused
    assert stopped.stderr.strip().splitlines()[-1] == (f"error: stopped by SIGTERM before the run finished; resume this job "
                                                       f"with: ssgan-train {overrides} hydra.run.dir={sweep / '0'} ckpt_path=last")
    resumed = _train(sweep / "0", "trainer.max_epochs=2", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((sweep / "0" / "metrics.json").read_text())["epochs"] == 2


def test_ctrl_c_in_an_overwrite_start_keeps_the_earlier_run_and_its_record(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _train(run, "trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    record = (run / ".hydra" / "overrides.yaml").read_text()
    stopped = _train(run, "trainer.max_epochs=1", "overwrite=true", "model.optimizer_d.lr=0.01",
                     "+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=0", "+callbacks.kill.batch=1",
                     "+callbacks.kill.signal_name=SIGINT")
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    # it once printed a command that resumed the earlier run's checkpoint with the stopped start's settings
    assert stopped.stderr.strip().splitlines()[-1] == ("error: stopped by Ctrl-C before the run finished; it saved nothing, "
                                                       "and the earlier run in its folder is kept as it was (start again "
                                                       "with overwrite=true)")
    assert (run / ".hydra" / "overrides.yaml").read_text() == record
    assert (run / "metrics.json").is_file() and not (run / ".ssgan-overwritten").exists()



def test_a_second_ctrl_c_during_the_clean_up_of_a_stopped_run_does_not_cut_it_short(tmp_path: Path, monkeypatch) -> None:
    import ssgan.train

    put_away = ssgan.train._put_away_stopped_run

    def interrupted_again(*args, **kwargs):  # the user presses Ctrl-C again while the run's folder is put in order
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # a handler would raise in here: a traceback, and the folder left as the first stop left it
        return put_away(*args, **kwargs)

    monkeypatch.setattr(ssgan.train, "_put_away_stopped_run", interrupted_again)  # the forked child inherits it
    _stop_by_signal(tmp_path / "run", "SIGINT", 130, "Ctrl-C")


@pytest.mark.parametrize("stop", ["ctrl_c", "sigterm", "crash"])
def test_a_start_that_stops_before_it_trains_leaves_every_folder_as_it_was(tmp_path: Path, monkeypatch, stop: str) -> None:
    import ssgan.train

    run = tmp_path / "run"
    first = _train(run, "trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    record = {path.name: path.read_text() for path in (run / ".hydra").iterdir()}
    log = (run / "train.log").read_text()

    def stopped_early() -> None:  # the first thing train() does once Hydra has rewritten the folder's record
        if stop == "sigterm":  # outside Lightning's handler, where Python's default one killed the process
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises in here
        raise KeyboardInterrupt if stop == "ctrl_c" else RuntimeError("a crash while the data were read")

    monkeypatch.setattr(ssgan.train, "keep_freed_memory", stopped_early)  # the forked child inherits it
    again = _train(run, "trainer.max_epochs=1", "overwrite=true", "seed=7")
    fresh = _train(tmp_path / "fresh", "trainer.max_epochs=1")
    if stop in ("ctrl_c", "sigterm"):
        # it was a KeyboardInterrupt traceback, or with checkpoints there, a command that resumed the earlier run's
        # checkpoint under this start's settings; a SIGTERM killed the process with the start's record in place
        how, status = ("Ctrl-C", 130) if stop == "ctrl_c" else ("SIGTERM", 143)
        assert again.returncode == fresh.returncode == status, again.stderr[-2000:]
        assert again.stderr.strip().splitlines()[-1] == (
            f"error: stopped by {how} before the run finished; it had not begun to train, and the run in its folder "
            "is kept as it was; run the same command again")
        assert fresh.stderr.strip().splitlines()[-1] == (
            f"error: stopped by {how} before the run finished; it stopped before its first checkpoint, so start it again")
    else:
        assert again.returncode == fresh.returncode == 1 and "RuntimeError: a crash while the data were read" in again.stderr
    # the earlier run is described by its own settings (the record said seed=7), and its log has no line of the start
    assert {path.name: path.read_text() for path in (run / ".hydra").iterdir()} == record
    assert (run / "train.log").read_text() == log and (run / "metrics.json").is_file()
    assert not (tmp_path / "fresh").exists()  # it held only Hydra's record and log

def test_an_earlier_run_left_aside_by_a_killed_overwrite_start_is_not_lost(tmp_path: Path, train_in_process) -> None:
    sys.path.insert(0, str(TESTS.parent / "scripts"))
    import summarize_runs

    run = tmp_path / "run"
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    aside = run / ".ssgan-overwritten"  # as a start killed with SIGKILL before its first save leaves it
    aside.mkdir()
    for name in ("metrics.json", "checkpoints"):
        (run / name).rename(aside / name)
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2 and "already holds a run (.ssgan-overwritten/: a killed overwrite=true start set it aside" in stderr
    assert summarize_runs.load_runs(tmp_path) == []  # not listed as a finished run of its own
    # nor resumed as this folder's run: ckpt_path=last once took its set-aside last.ckpt
    code, stderr = train_in_process(*TINY, "trainer.max_epochs=2", "ckpt_path=last", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2 and "ckpt_path=last found no last.ckpt in this run's folder" in stderr, stderr[-1500:]
    assert (aside / "checkpoints" / "last.ckpt").is_file() and not (run / "checkpoints").exists()


def test_a_resume_into_a_new_folder_keeps_the_runs_best_checkpoint(tmp_path: Path) -> None:
    overrides = ["trainer.max_epochs=4", "test_ckpt=best"]
    whole = _train(tmp_path / "whole", *overrides)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = _train(tmp_path / "killed", *overrides, "+callbacks.kill._target_=kill_switch.KillAt",
                    "+callbacks.kill.epoch=3", "+callbacks.kill.batch=2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "last.ckpt"
    shutil.copyfile(tmp_path / "killed" / "checkpoints" / "last.ckpt", last)
    # into a new folder: its first validation once became best.ckpt, so best_epoch, val/best_acc and the
    # tested weights were not the uninterrupted run's
    resumed = _train(tmp_path / "new", *overrides, f"ckpt_path={last}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    got = json.loads((tmp_path / "new" / "metrics.json").read_text())
    assert {key: got[key] for key in COMPARED} == {key: expected[key] for key in COMPARED}
    assert expected["best_epoch"] < 3  # the best epoch came before the kill: the case in question
    assert (tmp_path / "killed" / "checkpoints" / "best.ckpt").is_file()  # the old folder is only read
    # the new folder's curves begin with the killed run's (they once began at the resumed epoch)
    whole_curves, new_curves = (_curves(tmp_path / run / "csv" / "metrics.csv") for run in ("whole", "new"))
    assert [(row["epoch"], row["val/acc"]) for row in new_curves if row.get("val/acc")] == \
        [(row["epoch"], row["val/acc"]) for row in whole_curves if row.get("val/acc")]
    assert [row["epoch"] for row in new_curves if row.get("val/acc")] == ["0", "1", "2", "3"]
    # a copy of last.ckpt in another checkpoints/ folder: the best checkpoint is still found where its state says
    (tmp_path / "elsewhere" / "checkpoints").mkdir(parents=True)
    shutil.copyfile(last, tmp_path / "elsewhere" / "checkpoints" / "last.ckpt")
    elsewhere = _train(tmp_path / "from_elsewhere", *overrides,
                       f"ckpt_path={tmp_path / 'elsewhere' / 'checkpoints' / 'last.ckpt'}")
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    got = json.loads((tmp_path / "from_elsewhere" / "metrics.json").read_text())
    assert {key: got[key] for key in COMPARED} == {key: expected[key] for key in COMPARED}
    # a finished run resumed into a new folder tests again: its curves, then that test once (not the earlier run's too)
    again = _train(tmp_path / "again", *overrides, f"ckpt_path={tmp_path / 'whole' / 'checkpoints' / 'last.ckpt'}")
    assert again.returncode == 0, again.stderr[-2000:]
    again_curves = _curves(tmp_path / "again" / "csv" / "metrics.csv")
    assert len([row for row in again_curves if row.get("test/acc")]) == 1
    assert [row["val/acc"] for row in again_curves if row.get("val/acc")][:4] == \
        [row["val/acc"] for row in whole_curves if row.get("val/acc")]
    # a resume into a new folder that fails before its first batch leaves no folder (nor a copy of best.ckpt)
    failed = _train(tmp_path / "failed", *overrides, f"ckpt_path={last}",
                    "+callbacks.mismatch._target_=conftest.OptimizerStateMismatch")
    assert failed.returncode == 2 and "does not fit the nets this run builds" in failed.stderr, failed.stderr[-2000:]
    assert not (tmp_path / "failed").exists()
    # the run's folder moved, and its old place taken by another run: its checkpoint records the old place, where
    # the best checkpoint and the curves were then the other run's
    (tmp_path / "killed").rename(tmp_path / "moved")
    other = _train(tmp_path / "killed", *overrides, "data.num_val=0", "seed=5")  # no val/acc a curve could share
    assert other.returncode == 0, other.stderr[-2000:]
    from_moved = _train(tmp_path / "from_moved", *overrides, f"ckpt_path={tmp_path / 'moved' / 'checkpoints' / 'last.ckpt'}")
    assert from_moved.returncode == 0, from_moved.stderr[-2000:]
    got = json.loads((tmp_path / "from_moved" / "metrics.json").read_text())
    assert {key: got[key] for key in COMPARED} == {key: expected[key] for key in COMPARED}
    moved_curves = _curves(tmp_path / "from_moved" / "csv" / "metrics.csv")
    assert [(row["epoch"], row["val/acc"]) for row in moved_curves if row.get("val/acc")] == \
        [(row["epoch"], row["val/acc"]) for row in whole_curves if row.get("val/acc")]
    # a copy of the checkpoint elsewhere, whose recorded place holds the other run: none of its curves are taken
    copied = _train(tmp_path / "copied", *overrides, f"ckpt_path={last}")
    assert copied.returncode == 0, copied.stderr[-2000:]
    assert [row["epoch"] for row in _curves(tmp_path / "copied" / "csv" / "metrics.csv") if row.get("val/acc")] == ["3"]
    # the old folder gone: the run once ended in a FileNotFoundError traceback with no metrics.json
    shutil.rmtree(tmp_path / "killed")
    gone = _train(tmp_path / "gone", *overrides, f"ckpt_path={last}")
    assert gone.returncode == 0, gone.stderr[-2000:]
    assert "is gone: best.ckpt counts from the resumed epoch on" in (tmp_path / "gone" / "train.log").read_text()
    assert json.loads((tmp_path / "gone" / "metrics.json").read_text())["best_epoch"] == 3


def test_a_disk_that_fills_up_mid_run_is_one_line_with_the_resume_command(tmp_path: Path) -> None:
    # a failed checkpoint or log write was a 60-300-line traceback (torch's writer: "[enforce fail ...] unexpected
    # pos"), and each log line then printed a "--- Logging error ---" traceback too
    run = tmp_path / "run"
    stopped = _train(run, "trainer.max_epochs=2", "+callbacks.full._target_=kill_switch.DiskFullAfter",
                     "+callbacks.full.epoch=0")
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr and "Logging error" not in stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot write ") and "File too large; raise the file size limit (ulimit -f)" in line
    assert line.endswith(f"the run stopped, resume it with: {shlex.join(['ssgan-train', *COMMON, 'trainer.max_epochs=2', '+callbacks.full._target_=kill_switch.DiskFullAfter', '+callbacks.full.epoch=0', f'hydra.run.dir={run}', 'ckpt_path=last'])}")
    assert not (run / "metrics.json").exists() and not list(run.rglob(".*.tmp*"))  # no half-written file
    resumed = _train(run, "trainer.max_epochs=2", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_run_with_no_last_checkpoint_resumes_from_the_newest_one_it_saved(tmp_path: Path) -> None:
    # the disk filled up as the first last.ckpt was written, after best.ckpt: "resume it with ckpt_path=last"
    # was then answered by "found no last.ckpt"
    from ssgan.train import resume_path

    assert resume_path(tmp_path) == "last"  # nothing saved: the message's usual advice
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"")
    assert resume_path(tmp_path) == str(tmp_path / "checkpoints" / "best.ckpt")
    (tmp_path / "checkpoints" / ".last.ab12cd.tmp.ckpt").write_bytes(b"half")  # a killed save's temporary, newer
    assert resume_path(tmp_path) == str(tmp_path / "checkpoints" / "best.ckpt")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resume_path(tmp_path) == "last"


def test_the_checkpoint_named_for_a_damaged_one_is_its_runs_and_written_as_the_command_line_takes_it(tmp_path: Path) -> None:
    from ssgan.config import hydra_value
    from ssgan.tools import other_checkpoint_advice

    folder = tmp_path / "run 1,b" / "checkpoints"  # a folder name Hydra would read as a sweep, unquoted
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")

    def saved(path: Path, epoch: int, into: Path) -> None:
        torch.save({"epoch": epoch, "callbacks": {"ModelCheckpoint{'monitor': 'val/acc'}": {"dirpath": str(into)}}}, path)

    saved(folder / "other_run.ckpt", 7, tmp_path / "elsewhere")  # another run's, copied in: not named
    (folder / ".best.ab12.tmp.ckpt").write_bytes(b"half")  # a killed save's temporary
    (folder / "gone.ckpt").symlink_to(tmp_path / "nowhere.ckpt")
    assert other_checkpoint_advice(folder / "last.ckpt", "ckpt_path", "start again", quote=hydra_value) == (
        "the run has no other readable checkpoint; start again")
    saved(folder / "best.ckpt", 3, folder)
    assert other_checkpoint_advice(folder / "last.ckpt", "ckpt_path", "start again", quote=hydra_value) == (
        f"resume from the run's other checkpoint, saved in epoch 3: ckpt_path={hydra_value(str(folder / 'best.ckpt'))}")
    assert hydra_value(str(folder / "best.ckpt")) != str(folder / "best.ckpt")  # quoted


def test_a_stopped_run_told_to_resume_from_an_older_checkpoint_is_told_its_epoch(tmp_path: Path, monkeypatch) -> None:
    # with no last.ckpt, the checkpoint the stop line names (best.ckpt) may be epochs older than where the run stopped
    from types import SimpleNamespace

    from hydra.core.hydra_config import HydraConfig

    from ssgan.train import _put_away_stopped_run

    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: SimpleNamespace(overrides=SimpleNamespace(
        task=["trainer.max_epochs=9"]), mode=None)))
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"epoch": 3}, tmp_path / "checkpoints" / "best.ckpt")
    assert _put_away_stopped_run(tmp_path, checkpoints=True) == (
        f"resume it with: ssgan-train trainer.max_epochs=9 hydra.run.dir={tmp_path} "
        f"ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'} (its newest checkpoint, saved in epoch 3)")
    torch.save({"epoch": 5}, tmp_path / "checkpoints" / "last.ckpt")  # the usual case: no epoch to name
    assert _put_away_stopped_run(tmp_path, checkpoints=True) == (
        f"resume it with: ssgan-train trainer.max_epochs=9 hydra.run.dir={tmp_path} ckpt_path=last")


def test_an_oserror_that_is_no_failed_write_keeps_its_traceback_and_the_start_is_taken_back(tmp_path: Path) -> None:
    # the failed-write handling once let any other OSError (EIO, ENOMEM) skip the crash handling: the folder stayed
    from ssgan.train import failed_write_message

    run = tmp_path / "run"
    crashed = _train(run, "trainer.max_epochs=1", "+callbacks.fail._target_=kill_switch.RaiseOSErrorAt",
                     "+callbacks.fail.batch=0")
    assert crashed.returncode == 1 and "OSError: [Errno 5] Input/output error" in crashed.stderr
    assert not run.exists()
    assert failed_write_message(OSError(5, "Input/output error"), tmp_path) is None
    # torch's writer cut short on a disk with room (a quota, a failing disk): atomic_write's EIO is a failed write
    assert failed_write_message(OSError(5, "Input/output error (torch's writer stopped short)", "x.ckpt"), tmp_path) == (
        "cannot write x.ckpt: Input/output error (torch's writer stopped short); check your disk quota and that the "
        "disk is healthy and writable")
    assert failed_write_message(OSError(1, "Operation not permitted", 3), tmp_path) is None  # an fd, not a path
    assert failed_write_message(OSError(28, "No space left on device", "x.ckpt"), tmp_path) == (
        "cannot write x.ckpt: No space left on device; free some space")
