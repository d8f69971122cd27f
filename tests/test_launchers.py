"""Hydra launchers: joblib runs a sweep's jobs in parallel here, and the SLURM config composes for submitit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import train_in_fork
from ssgan.config import CONFIG_DIR


def test_slurm_launcher_config_composes_for_submitit() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1


@pytest.mark.parametrize(("overrides", "nodes", "tasks", "gpus"), [
    ([], 1, 1, 1),  # accelerator auto, one device: a GPU where there is one
    (["trainer=cpu"], 1, 1, None),  # no GPU asked for
    (["trainer=ddp_cpu"], 1, 2, None),  # one task per process
    (["trainer=gpu"], 1, 1, 1),
    (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], 2, 4, 4),
    (["trainer=gpu", "trainer.devices=[0,1]"], 1, 2, 2),
    (["trainer=ddp", "trainer.devices=4", "hydra.launcher.gpus_per_node=8"], 1, 4, 8),  # by hand: as given
])
def test_the_slurm_launcher_asks_for_the_trainers_tasks_gpus_and_nodes(overrides, nodes, tasks, gpus) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)  # as the submitit launcher reads it
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (nodes, tasks, gpus)


def test_a_slurm_sweep_whose_jobs_would_ask_for_other_resources_than_they_take_is_refused(monkeypatch) -> None:
    import ssgan.command_line as command_line
    from ssgan.errors import UserError
    from test_bad_input import SLURM_RESOURCES

    monkeypatch.setattr(command_line.shutil, "which", lambda name: "/usr/bin/srun")  # a login node
    for overrides, message in SLURM_RESOURCES.values():
        for args in (["-m", "hydra/launcher=slurm", *overrides, "seed=0,1"], ["-m", "hydra/launcher=slurm", *overrides]):
            with pytest.raises(UserError) as error:
                command_line.check_slurm_resources(args)
            assert str(error.value) == message
    mixed = "the jobs of this sweep need different SLURM resources ({}), but the launcher asks once for the whole " \
            "sweep; sweep one device count and accelerator per command"
    for args, message in (
            (["trainer=cpu,ddp_cpu"],  # one task, then two
             mixed.format("trainer.devices=1 trainer.num_nodes=1 on the CPU and trainer.devices=2 trainer.num_nodes=1 "
                          "on the CPU")),
            (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=1,2"],
             mixed.format("trainer.devices=4 trainer.num_nodes=1 and trainer.devices=4 trainer.num_nodes=2")),
            (["trainer=gpu", "trainer.accelerator=cpu,gpu"],  # no GPU, then one
             mixed.format("trainer.devices=1 trainer.num_nodes=1 on the CPU and trainer.devices=1 trainer.num_nodes=1")),
            (["trainer=ddp", "trainer.devices=4", "hydra.launcher.nodes=2"],
             "hydra.launcher.nodes=2 but the trainer needs 1 (the nodes of trainer.num_nodes); leave hydra.launcher.nodes "
             "out, as it follows the trainer"),
            # every job needs the same, but not what the launcher asks for: it is built from the settings outside
            # the sweep (here the default trainer, with a GPU)
            (["trainer=cpu,ddp_cpu", "trainer.devices=1"],
             "the launcher asks SLURM once for the whole sweep, from the trainer settings outside it, but its jobs need "
             "other resources (trainer.devices=1 trainer.num_nodes=1 on the CPU); give the trainer outside the sweep "
             "(e.g. trainer=cpu, not trainer=cpu,ddp_cpu), one command per trainer"),
            # Hydra reads 0,1 as a sweep of two device counts, not as the GPUs 0 and 1
            (["trainer=gpu", "trainer.devices=0,1"],
             "trainer.devices=0 is no number of devices; for the GPUs 0 and 1 write trainer.devices=[0,1] "
             "(trainer.devices=0,1 is a sweep of 0 and 1)")):
        with pytest.raises(UserError) as error:
            command_line.check_slurm_resources(["-m", "hydra/launcher=slurm", *args])
        assert str(error.value) == message
    # the same resources for every job, given by the trainer or by hand in agreement; or no SLURM sweep at all
    for args in (["-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "seed=0,1"],
                 ["-m", "hydra/launcher=slurm", "trainer=cpu", "data.num_labeled=50,100"],
                 ["-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "hydra.launcher.tasks_per_node=4"],
                 ["-m", "hydra/launcher=slurm", "model=ssgan,supervised"],
                 # by hand: an interpolation that agrees, and more GPUs than the trainer takes
                 ["-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "hydra.launcher.nodes=${trainer.num_nodes}"],
                 ["-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "hydra.launcher.gpus_per_node=8",
                  "seed=0,1"],
                 # interpolations that only the job resolves: a launcher setting, a trainer value
                 ["-m", "hydra/launcher=slurm", "+hydra.launcher.comment=${hydra:runtime.choices.data}", "seed=0,1"],
                 ["-m", "hydra/launcher=slurm", "trainer=gpu", "trainer.devices=${oc.env:SSGAN_TEST_GPUS,4}", "seed=0,1"],
                 ["hydra/launcher=slurm", "trainer=ddp"], ["-m", "trainer=ddp", "seed=0,1"]):
        command_line.check_slurm_resources(args)


def test_local_joblib_launcher_isolates_a_bad_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # the sweep's own process forked from this one; joblib's workers are new interpreters all the same
    result = train_in_fork("-m", "hydra/launcher=local", "data.num_labeled=20,55", "trainer.max_epochs=1",
                           "trainer.enable_progress_bar=false", "callbacks=none", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                           env={"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    # the jobs ran in joblib's processes; the sweep's own reads their records, and its status tells of the failure
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: 1 of 2 jobs of the sweep did not finish (the first, in {sweep / '1'}: data.num_labeled=55 is not divisible")
    statuses = {json.loads((sweep / job / "metrics.json").read_text())["status"] for job in ("0", "1")}
    assert statuses == {"ok", "failed"}
    failed = json.loads((sweep / "1" / "metrics.json").read_text())
    assert "not divisible by the 10 classes" in failed["error"]
    assert "Tip:" not in result.stdout + result.stderr  # Lightning's advert is hidden in the worker processes too


def test_a_stopped_sweep_job_without_checkpoints_is_given_the_command_that_starts_it_again(tmp_path: Path) -> None:
    # it said "start it again", and the sweep's command, run again, is refused in the sweep's folder
    import shlex

    sweep = tmp_path / "sweep"
    stopped = train_in_fork("-m", "seed=0", "callbacks=none", "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
                            "+callbacks.kill._target_=kill_switch.KillAt", "+callbacks.kill.epoch=1",
                            "+callbacks.kill.batch=2", "+callbacks.kill.signal_name=SIGTERM", f"hydra.sweep.dir={sweep}",
                            cwd=tmp_path)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    line = stopped.stderr.strip().splitlines()[-1]
    prefix = ("error: stopped by SIGTERM before the run finished; it saves no checkpoints (callbacks=none), so start "
              "this job again with: ssgan-train ")
    assert line.startswith(prefix) and line.endswith(f"hydra.run.dir={sweep / '0'}"), line
    command = [item for item in shlex.split(line[len(prefix):]) if not item.startswith("+callbacks.kill")]
    again = train_in_fork(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((sweep / "0" / "metrics.json").read_text())["status"] == "ok"


def with_sweep_config(tmp_path: Path, monkeypatch, name: str, text: str) -> None:
    """The command-line checks read a copy of the configs with ``sweep/<name>.yaml`` added."""
    import shutil

    import ssgan.command_line as command_line

    config_dir = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, config_dir, dirs_exist_ok=True)
    (config_dir / "sweep" / f"{name}.yaml").write_text(text)
    monkeypatch.setattr(command_line, "CONFIG_DIR", config_dir)


def test_the_slurm_launcher_without_slurm_is_refused_wherever_it_is_chosen(tmp_path: Path, monkeypatch) -> None:
    import ssgan.command_line as command_line
    from ssgan.errors import UserError

    with_sweep_config(tmp_path, monkeypatch, "on_slurm", "# @package _global_\ndefaults:\n  - override /hydra/launcher: slurm\n")
    monkeypatch.setattr(command_line.shutil, "which", lambda name: None)  # a machine without SLURM
    for args in (["-m", "hydra/launcher=slurm", "seed=0,1"], ["-m", "sweep=on_slurm"], ["hydra.mode=MULTIRUN", "sweep=on_slurm"]):
        with pytest.raises(UserError, match="^hydra/launcher=slurm submits each job to SLURM"):
            command_line.check_launcher(args)
    # a single run does not use the launcher; nor does a sweep through the default or the local one
    for args in (["hydra/launcher=slurm"], ["-m", "seed=0,1"], ["-m", "hydra/launcher=local", "seed=0,1"]):
        command_line.check_launcher(args)


def test_a_sweep_configs_own_params_are_checked_as_the_command_lines(tmp_path: Path, monkeypatch) -> None:
    import ssgan.command_line as command_line
    from ssgan.errors import UserError

    with_sweep_config(tmp_path, monkeypatch, "devices",
                      "# @package _global_\nhydra:\n  sweeper:\n    params:\n      trainer.devices: 1,2\n")
    monkeypatch.setattr(command_line.shutil, "which", lambda name: "/usr/bin/srun")
    # the sweep's second job is a DDP job of two processes: both checks saw the command line only
    with pytest.raises(UserError, match="^a multirun cannot start DDP jobs"):
        command_line.check_multirun_processes(["-m", "trainer=cpu", "sweep=devices"])
    with pytest.raises(UserError, match="^the jobs of this sweep need different SLURM resources"):
        command_line.check_slurm_resources(["-m", "hydra/launcher=slurm", "trainer=gpu", "sweep=devices"])
    # a sweep config that gives every job 4 devices, with the launcher's tasks and GPUs set by hand to match
    with_sweep_config(tmp_path, monkeypatch, "four",
                      "# @package _global_\nhydra:\n  sweeper:\n    params:\n      trainer.devices: 4\n      seed: 0,1\n")
    command_line.check_slurm_resources(["-m", "hydra/launcher=slurm", "trainer=gpu", "sweep=four",
                                        "hydra.launcher.tasks_per_node=4", "hydra.launcher.gpus_per_node=4"])
    # the command line's value replaces the sweep's: one device a job
    command_line.check_multirun_processes(["-m", "trainer=cpu", "sweep=devices", "trainer.devices=1"])


def test_a_multirun_of_ddp_jobs_on_this_machine_is_refused(monkeypatch) -> None:
    import pytest

    import ssgan.command_line as command_line
    from ssgan.errors import UserError

    # Lightning starts a DDP job's other processes by running the command line again, -m and all:
    # each of them ran the whole sweep (or, in a joblib worker, failed and took the sweep down)
    for args in (["-m", "trainer=ddp_cpu", "seed=0,1"], ["-m", "trainer=cpu,ddp_cpu"],
                 ["-m", "trainer=cpu", "trainer.devices=1,2"], ["-m", "hydra/launcher=local", "trainer=ddp_cpu", "seed=0,1"],
                 ["-m", "trainer=cpu", "trainer.devices=[0,1]", "seed=0,1"],  # one list of two devices, not a sweep
                 ["-m", "trainer=cpu", "trainer.devices='0,1'", "seed=0,1"], ["-m", "trainer=choice(cpu,ddp_cpu)"]):
        with pytest.raises(UserError, match="^a multirun cannot start DDP jobs of several processes on this machine"):
            command_line.check_multirun_processes(args)
    # one process a job, a single DDP run, or a sweep that SLURM launches, one job each: as before
    for args in (["-m", "seed=0,1"], ["trainer=ddp_cpu"], ["-m", "trainer=cpu", "seed=0,1"],
                 # the command line's devices replace the config's 2 in every job: one process each
                 ["-m", "trainer=ddp_cpu", "trainer.devices=1", "seed=0,1"], ["-m", "trainer=ddp_cpu", "trainer.devices=1"]):
        command_line.check_multirun_processes(args)
    # ... and where one job of the sweep takes the config's or a given value of several devices, it is refused
    for args in (["-m", "trainer=ddp_cpu", "trainer.devices=1,2"], ["-m", "trainer=cpu,ddp_cpu", "trainer.num_nodes=1,2"]):
        with pytest.raises(UserError, match="^a multirun cannot start DDP jobs"):
            command_line.check_multirun_processes(args)
    monkeypatch.setattr(command_line.shutil, "which", lambda name: "/usr/bin/srun")
    command_line.check_multirun_processes(["-m", "hydra/launcher=slurm", "trainer=ddp", "seed=0,1"])


def test_rank_zero_is_lightnings_global_rank(monkeypatch) -> None:
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    import ssgan.train as train_module

    monkeypatch.delenv("LOCAL_RANK", raising=False)  # as under SLURM, which sets SLURM_PROCID, not LOCAL_RANK
    monkeypatch.setattr(rank_zero_only, "rank", 1, raising=False)
    assert not train_module._is_rank_zero()  # it printed the summary and cleaned the run folder on every task
    monkeypatch.setattr(rank_zero_only, "rank", 0, raising=False)
    assert train_module._is_rank_zero()
