"""Self-training: the selection rule, the round bookkeeping, the lr restart, and resuming mid-round."""

from __future__ import annotations

import copy
import json
import logging
import re

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from ssgan.data import DigitsDataModule, MNISTDataModule
from ssgan.errors import UserError
from ssgan.module import SSGAN, SupervisedBaseline
from ssgan.self_training import SelfTraining, select_pseudo_labels


# -- the selection rule ---------------------------------------------------------------------------
def test_selection_keeps_confident_predictions_most_confident_first_and_caps_each_class() -> None:
    probabilities = torch.tensor([
        [0.97, 0.03],  # 0: class 0, confident
        [0.60, 0.40],  # 1: class 0, below the threshold
        [0.99, 0.01],  # 2: class 0, the most confident
        [0.05, 0.95],  # 3: class 1, exactly at the threshold
        [0.98, 0.02],  # 4: class 0, confident but beyond the cap
    ])
    candidates = np.array([10, 11, 12, 13, 14])
    indices, labels = select_pseudo_labels(probabilities, candidates, threshold=0.95, max_per_class=2)
    assert indices.tolist() == [12, 14, 13]  # class 0 by confidence (0.99, 0.98; 0.97 is cut), then class 1
    assert labels.tolist() == [0, 0, 1]
    uncapped, _ = select_pseudo_labels(probabilities, candidates, threshold=0.95, max_per_class=None)
    assert sorted(uncapped.tolist()) == [10, 12, 13, 14]


def test_selection_breaks_confidence_ties_by_candidate_order() -> None:
    probabilities = torch.full((4, 2), 0.5)
    probabilities[:, 0] = 1.0
    indices, _ = select_pseudo_labels(probabilities, np.array([7, 3, 5, 1]), threshold=0.9, max_per_class=2)
    assert indices.tolist() == [7, 3]


def test_bad_self_training_settings_are_one_line_user_errors() -> None:
    with pytest.raises(UserError, match="threshold"):
        SelfTraining(threshold=1.5)
    with pytest.raises(UserError, match="max_per_class"):
        SelfTraining(max_per_class=0)
    with pytest.raises(UserError, match="rounds"):
        SelfTraining(rounds=-1)
    with pytest.raises(UserError, match=r"^self_training.epochs_per_round=0 must be at least 1; use e.g. "
                                        r"self_training.epochs_per_round=5$"):
        SelfTraining(epochs_per_round=0)


def _datamodule() -> DigitsDataModule:
    return DigitsDataModule(num_labeled=50, num_val=50, batch_size=100, split_cache_dir=None, shuffle_seed=0)


def test_pseudo_label_candidates_exclude_labeled_validation_and_test_images(idx_root) -> None:
    # the tiny IDX files' images are random noise, 120 training and 30 test ones, none alike: the images
    # trained on tell which set they came from
    datamodule = MNISTDataModule(root=str(idx_root), download=False, num_labeled=20, num_val=20, split_cache_dir=None,
                                 shuffle_seed=0)
    datamodule.setup()
    data = datamodule.data
    assert not _rows_in(data.test_images, data.train_images).any()  # the premise
    candidates = datamodule.pseudo_label_candidates()
    assert not np.isin(candidates, datamodule.split.labeled).any()
    assert not np.isin(candidates, datamodule.split.val).any()
    with pytest.raises(ValueError, match="unlabeled pool"):
        datamodule.set_pseudo_labels(datamodule.split.val[:2], np.array([0, 1]))

    # indices alone cannot show that the test set stays out (they index the training images whatever
    # labeled_set() does with them): the images it trains on must be those training images themselves
    batches = datamodule.train_dataloader()  # set_pseudo_labels hands the new set to the live batches
    pseudo_indices, pseudo_labels = candidates[::3], (np.arange(len(candidates[::3])) * 7) % 10
    datamodule.set_pseudo_labels(pseudo_indices, pseudo_labels)
    labeled_images, labels = datamodule._subset(datamodule.split.labeled)
    for images, targets in (datamodule.labeled_set(), (batches.labeled_images, batches.labels)):
        assert len(images) == len(targets) == len(labeled_images) + len(pseudo_indices)
        assert torch.equal(images[:len(labeled_images)], labeled_images) and torch.equal(targets[:len(labels)], labels)
        pseudo_images = images[len(labeled_images):]
        assert torch.equal(pseudo_images, data.train_images[torch.from_numpy(pseudo_indices)])
        assert targets[len(labels):].tolist() == pseudo_labels.tolist()  # each with its own label
        assert not _rows_in(pseudo_images, data.test_images).any()


def _rows_in(images: torch.Tensor, others: torch.Tensor) -> np.ndarray:
    """(N,) whether each of ``images`` equals one of ``others`` pixel for pixel."""
    return (images.flatten(1)[:, None] == others.flatten(1)[None]).all(dim=2).any(dim=1).numpy()


# -- the rounds, end to end -----------------------------------------------------------------------
class RecordLearningRates(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _trainer(tmp_path, callbacks, max_epochs=3, **kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_epochs=max_epochs, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path,
                      callbacks=callbacks, **kwargs)


def test_rounds_add_capped_pseudo_labels_record_each_round_and_restart_the_lr(tmp_path) -> None:
    torch.manual_seed(0)
    self_training = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=2)
    lrs = RecordLearningRates()
    datamodule = _datamodule()
    model = SupervisedBaseline((1, 8, 8), 10, lr_decay_start=0.0)  # linear decay over each stage
    trainer = _trainer(tmp_path, [self_training, lrs], enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)

    assert trainer.current_epoch == 3 + 2 * 2
    history = self_training.history
    assert [entry["round"] for entry in history] == [0, 1, 2]
    assert [entry["epochs"] for entry in history] == [[0, 2], [3, 4], [5, 6]]
    assert history[0]["pseudo_labeled"] == 0 and history[0]["added"] == 0
    for entry in history[1:]:
        assert all(count <= 4 for count in entry["added_per_class"])
        assert entry["added"] == sum(entry["added_per_class"]) > 0
        assert 0.0 <= entry["precision_added"] <= 1.0 and 0.0 <= entry["test_acc"] <= 1.0
    assert history[2]["pseudo_labeled"] == history[1]["added"] + history[2]["added"]  # kept and added to
    assert len(datamodule.pseudo_indices) == history[2]["pseudo_labeled"]
    assert len(set(datamodule.pseudo_indices.tolist())) == len(datamodule.pseudo_indices)  # never twice
    assert not np.isin(datamodule.pseudo_indices.numpy(), np.concatenate([datamodule.split.labeled, datamodule.split.val])).any()
    # the batches of the last round drew from the labeled and the pseudo-labeled images
    assert len(trainer.train_dataloader.labeled_images) == 50 + history[2]["pseudo_labeled"]
    # lr: full at each stage's start, decaying inside it (3-epoch base, then 2-epoch rounds)
    base = 3e-3
    assert lrs.lrs == pytest.approx([base, base * 2 / 3, base / 3, base, base / 2, base, base / 2])


class RecordSelection(pl.Callback):
    """The evaluation classifier (a frozen copy) and the pseudo-labels as round 1 begins.

    Placed after SelfTraining, its epoch-end hook runs right after the selection, before any step
    changes the nets that made it.
    """

    def __init__(self, self_training: SelfTraining) -> None:
        self.self_training = self_training
        self.classifier: torch.nn.Module | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.self_training.current_round == 1 and self.classifier is None:
            self.classifier = copy.deepcopy(pl_module.ema_discriminator).eval()
            self.indices = trainer.datamodule.pseudo_indices.numpy().copy()
            self.labels = trainer.datamodule.pseudo_labels.numpy().copy()

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(confidence, predicted class) of the recorded classifier for net inputs (B, C, H, W)."""
        return torch.softmax(self.classifier(inputs)[0], dim=1).max(dim=1)


def test_a_round_pseudo_labels_the_images_the_ema_classifier_is_confident_about(tmp_path) -> None:
    # a 2-epoch, 3-batch first training: some classes have more than the cap of 20 images above the
    # threshold, others fewer, with less confident ones below it, so the threshold and the cap both bind
    torch.manual_seed(0)
    threshold, cap = 0.5, 20
    self_training = SelfTraining(rounds=1, threshold=threshold, max_per_class=cap, epochs_per_round=1)
    selection = RecordSelection(self_training)
    datamodule = _datamodule()
    model = SupervisedBaseline((1, 8, 8), 10)
    trainer = _trainer(tmp_path, [self_training, selection], max_epochs=2, limit_train_batches=3,
                       enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    assert selection.classifier is not None
    indices, labels = selection.indices, selection.labels
    train_images, train_labels = datamodule.data.train_images, datamodule.data.train_labels.numpy()

    # the classifier the rounds label with is the evaluation one: the EMA discriminator, in eval mode
    confidence, predicted = selection.predict(model.to_input(train_images[torch.from_numpy(indices)]))
    assert labels.tolist() == predicted.tolist()  # each image has its own prediction, of the right class
    assert (confidence >= threshold).all()
    counts = np.bincount(labels, minlength=10)
    assert counts.max() <= cap

    # ...and as many as the rules allow: per class, the cap or every candidate above the threshold
    pool = datamodule.pseudo_label_candidates(include_pseudo_labeled=True)  # round 1's pool: nothing pseudo-labeled yet
    pool_confidence, pool_predicted = selection.predict(model.to_input(train_images[torch.from_numpy(pool)]))
    confident = np.bincount(pool_predicted[pool_confidence >= threshold].numpy(), minlength=10)
    assert counts.tolist() == np.minimum(confident, cap).tolist()
    # the setup exercises both rules: a capped class, and one with unconfident predictions under the cap
    below = np.bincount(pool_predicted[pool_confidence < threshold].numpy(), minlength=10)
    assert (confident > cap).any() and ((confident < cap) & (below > 0)).any()

    # the recorded precision is that of these pseudo-labels against the true labels (not all right here)
    entry = self_training.history[1]
    assert entry["added"] == len(indices) and entry["added_per_class"] == counts.tolist()
    precision = float((labels == train_labels[indices]).mean())
    assert 0.0 < precision < 1.0
    assert entry["precision_added"] == pytest.approx(precision)
    assert entry["precision"] == pytest.approx(precision)  # round 1's pseudo-labels are the ones it added


def test_relabeling_mode_replaces_pseudo_labels_with_a_growing_cap(tmp_path) -> None:
    torch.manual_seed(0)
    self_training = SelfTraining(rounds=2, threshold=0.5, max_per_class=3, epochs_per_round=1,
                                 keep_pseudo_labels=False, reset_weights=True)
    datamodule = _datamodule()
    trainer = _trainer(tmp_path, [self_training], max_epochs=2, enable_checkpointing=False)
    trainer.fit(SupervisedBaseline((1, 8, 8), 10), datamodule=datamodule)
    first, second = self_training.history[1], self_training.history[2]
    assert all(count <= 3 for count in first["pseudo_per_class"])
    assert all(count <= 6 for count in second["pseudo_per_class"])  # cap x round number
    assert second["pseudo_labeled"] == second["added"]  # relabeled from scratch, not added to


def test_a_run_resumed_mid_round_goes_on_with_its_round_and_pseudo_labels(tmp_path) -> None:
    def run(ckpt_path=None, dirpath=tmp_path / "ckpts"):
        torch.manual_seed(0)
        self_training = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=2)
        checkpoints = pl.callbacks.ModelCheckpoint(dirpath=dirpath, filename="{epoch}", save_top_k=-1,
                                                   every_n_epochs=1, enable_version_counter=False)
        datamodule = _datamodule()
        model = SSGAN((1, 8, 8), 10)
        trainer = _trainer(tmp_path, [self_training, checkpoints], max_epochs=2, limit_train_batches=3)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        return trainer, self_training, datamodule

    trainer, full, full_data = run()
    assert trainer.current_epoch == 6
    # epoch 2 is the first of round 1's two epochs: its checkpoint holds round 1's pseudo-labels
    mid_round = tmp_path / "ckpts" / "epoch=2.ckpt"
    state = torch.load(mid_round, map_location="cpu", weights_only=False)
    saved_round = next(v for k, v in state["callbacks"].items() if k.startswith("SelfTraining"))["current_round"]
    assert saved_round == 1
    assert len(state["DigitsDataModule"]["pseudo_indices"]) == full.history[1]["pseudo_labeled"]

    resumed_trainer, resumed, resumed_data = run(ckpt_path=mid_round, dirpath=tmp_path / "resumed")
    assert resumed_trainer.current_epoch == 6
    assert [entry["round"] for entry in resumed.history] == [0, 1, 2]
    assert resumed.history[:1] == full.history[:1]  # round 0 came from the checkpoint
    assert resumed.history[1]["added"] == full.history[1]["added"]  # round 1 went on with the same selection
    assert resumed.history[1]["pseudo_labeled"] == full.history[1]["pseudo_labeled"]
    assert resumed.history[2]["pseudo_labeled"] == len(resumed_data.pseudo_indices)


class RecordRoundStarts(pl.Callback):
    """The EMA update count and the data-init flag as each epoch starts (after SelfTraining's own hook)."""

    def __init__(self) -> None:
        self.at_start: dict[int, tuple[int, bool]] = {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.at_start[trainer.current_epoch] = (int(pl_module.ema_updates), bool(pl_module.initialized))


def test_reset_weights_waits_for_the_round_to_start_so_the_boundary_checkpoint_holds_the_trained_nets(tmp_path) -> None:
    def run(ckpt_path=None, dirpath=tmp_path / "ckpts"):
        torch.manual_seed(0)
        self_training = SelfTraining(rounds=1, threshold=0.5, max_per_class=4, epochs_per_round=1, reset_weights=True)
        starts = RecordRoundStarts()
        checkpoints = pl.callbacks.ModelCheckpoint(dirpath=dirpath, filename="{epoch}", save_top_k=-1,
                                                   every_n_epochs=1, enable_version_counter=False)
        trainer = _trainer(tmp_path, [self_training, starts, checkpoints], max_epochs=2, limit_train_batches=3)
        trainer.fit(SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule(), ckpt_path=ckpt_path)
        return self_training, starts

    self_training, starts = run()
    assert [entry["epochs"] for entry in self_training.history] == [[0, 1], [2, 2]]
    # epoch 1 ended round 0: its checkpoint (what best.ckpt and last.ckpt would be) holds the nets it trained
    boundary = torch.load(tmp_path / "ckpts" / "epoch=1.ckpt", map_location="cpu", weights_only=False)
    assert bool(boundary["state_dict"]["initialized"]) and int(boundary["state_dict"]["ema_updates"]) == 6
    assert next(v for k, v in boundary["callbacks"].items() if k.startswith("SelfTraining"))["reset_pending"]
    # ...and round 1 started from fresh nets, which data init set up again on its first batch
    assert starts.at_start[1] == (3, True) and starts.at_start[2] == (0, False)
    # a run resumed from that checkpoint resets them as it starts round 1, too
    _, resumed_starts = run(ckpt_path=tmp_path / "ckpts" / "epoch=1.ckpt", dirpath=tmp_path / "resumed")
    assert resumed_starts.at_start == {2: (0, False)}


def test_reset_weights_keeps_data_init_off_when_the_model_has_it_off() -> None:
    model = SupervisedBaseline((1, 8, 8), 10, data_init=False)
    model.reset_weights()
    assert bool(model.initialized)  # True: no data-dependent init on the next batch
    model = SupervisedBaseline((1, 8, 8), 10)
    model.initialized.fill_(True)
    model.reset_weights()
    assert not bool(model.initialized)


def test_a_stage_stopped_early_records_the_epochs_it_ran(tmp_path, caplog) -> None:
    torch.manual_seed(0)
    self_training = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=3)
    # the supervised baseline steps once a batch: round 0 is steps 1-2, round 1 stops in its first epoch
    trainer = _trainer(tmp_path, [self_training], max_epochs=1, limit_train_batches=2, max_steps=3,
                       enable_checkpointing=False)
    trainer.fit(SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule())
    assert [entry["epochs"] for entry in self_training.history] == [[0, 0], [1, 1]]
    # stopped exactly at the boundary: the round it moved into never trained, but its selection was made (the
    # datamodule and the checkpoints hold it), so it is listed as untrained, and the stop is a warning
    torch.manual_seed(0)
    at_boundary = SelfTraining(rounds=2, threshold=0.1, max_per_class=4, epochs_per_round=3)  # 0.1: every image qualifies
    datamodule = _datamodule()
    caplog.clear()  # the stop above warned too
    with caplog.at_level(logging.WARNING, logger="ssgan.self_training"):
        _trainer(tmp_path, [at_boundary], max_epochs=1, limit_train_batches=2, max_steps=2, enable_checkpointing=False).fit(
            SupervisedBaseline((1, 8, 8), 10), datamodule=datamodule)
    assert [entry["round"] for entry in at_boundary.history] == [0, 1]
    untrained = at_boundary.history[1]
    assert untrained["trained"] is False and untrained["epochs"] is None and untrained["test_acc"] is None
    assert untrained["added"] == sum(untrained["added_per_class"]) == len(datamodule.pseudo_indices) > 0
    # the same figures as a round that trained (they lacked the pseudo-labels in all and their precision)
    assert set(untrained) == set(at_boundary.history[0]) and at_boundary.history[0]["trained"] is True
    assert untrained["pseudo_labeled"] == sum(untrained["pseudo_per_class"]) == untrained["added"]
    assert untrained["labeled"] == at_boundary.history[0]["labeled"] and untrained["precision"] is not None
    assert [r.getMessage() for r in caplog.records if r.name == "ssgan.self_training"] == [
        "self-training stopped at epoch 0, in round 1 of 2, before the 7 epochs its rounds plan (early stopping, "
        "trainer.max_steps or trainer.max_time ended the fit); metrics.json lists the rounds that ran"]



def test_a_stop_inside_a_stages_last_epoch_begins_no_round(tmp_path, caplog) -> None:
    torch.manual_seed(0)
    self_training = SelfTraining(rounds=2, threshold=0.1, max_per_class=4, epochs_per_round=1)
    datamodule = _datamodule()
    # round 0 is steps 1-3, round 1 steps 4-6: max_steps=5 stops round 1 in the middle of its only epoch, and
    # Lightning still ends that epoch; round 1 was recorded as finished, round 2 selected by its half-trained
    # classifier, and the warning named round 2
    with caplog.at_level(logging.WARNING, logger="ssgan.self_training"):
        _trainer(tmp_path, [self_training], max_epochs=1, limit_train_batches=3, max_steps=5,
                 enable_checkpointing=False).fit(SupervisedBaseline((1, 8, 8), 10), datamodule=datamodule)
    assert [(entry["round"], entry["epochs"], entry["trained"]) for entry in self_training.history] == [
        (0, [0, 0], True), (1, [1, 1], True)]
    assert self_training.current_round == 1 and len(datamodule.pseudo_indices) == self_training.history[1]["pseudo_labeled"]
    assert [r.getMessage() for r in caplog.records if r.name == "ssgan.self_training"] == [
        "self-training stopped at epoch 1, in round 1 of 2, before the 3 epochs its rounds plan (early stopping, "
        "trainer.max_steps or trainer.max_time ended the fit); metrics.json lists the rounds that ran"]

def test_each_round_starts_early_stopping_afresh(tmp_path) -> None:
    # with fresh weights a round's first epochs score below the last round's best: the patience spent in
    # the last round would end the run as soon as the new round began
    from pytorch_lightning.callbacks import EarlyStopping

    early_stopping = EarlyStopping(monitor="val/acc", mode="max", patience=100)
    seen: dict[int, tuple[int, float]] = {}

    class EarlyStoppingState(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            seen[trainer.current_epoch] = (int(early_stopping.wait_count), float(early_stopping.best_score))

    torch.manual_seed(0)
    self_training = SelfTraining(rounds=1, threshold=0.5, max_per_class=4, epochs_per_round=1, reset_weights=True)
    _trainer(tmp_path, [self_training, early_stopping, EarlyStoppingState()], max_epochs=2,
             enable_checkpointing=False).fit(SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule())
    assert seen[1][1] > 0  # within the first training, the best so far carries on
    assert seen[2] == (0, float("-inf"))  # the round's first epoch: judged afresh


def test_the_default_cap_is_the_documented_one_with_or_without_the_default_group(compose_cfg) -> None:
    assert SelfTraining().max_per_class == 100
    default = compose_cfg("self_training=default").self_training
    alone = compose_cfg("self_training.rounds=3").self_training  # self_training=none, with rounds on
    assert dict(alone) == dict(default)


def test_a_resume_whose_rounds_have_begun_keeps_their_schedule(tmp_path) -> None:
    from ssgan.self_training import refuse_changed_schedule

    state = {"callbacks": {"SelfTraining": {"current_round": 1, "history": [{"round": 0, "epochs": [0, 1]}],
                                            "base_epochs": 2, "epochs_per_round": 3}}}
    refuse_changed_schedule("last.ckpt", state, 2, 3)
    with pytest.raises(UserError, match=r"^last.ckpt has begun its self-training rounds, scheduled after 2 epochs of "
                                        r"first training in rounds of 3 epochs; resume it with trainer.max_epochs=2$"):
        refuse_changed_schedule("last.ckpt", state, 4, 3)
    with pytest.raises(UserError, match=r"resume it with trainer.max_epochs=2 and self_training.epochs_per_round=3$"):
        refuse_changed_schedule("last.ckpt", state, 4, 1)
    # still in the first training: a higher max_epochs only makes it longer
    refuse_changed_schedule("last.ckpt", {"callbacks": {"SelfTraining": {"current_round": 0, "history": []}}}, 4, 1)
    # a checkpoint of an older ssgan: the first training's epochs come from its record
    older = {"callbacks": {"SelfTraining": {"current_round": 1, "history": [{"round": 0, "epochs": [0, 1]}]}}}
    with pytest.raises(UserError, match=r"resume it with trainer.max_epochs=2$"):
        refuse_changed_schedule("last.ckpt", older, 3, 1)

    # a plain Trainer resuming with another max_epochs is stopped before it trains
    torch.manual_seed(0)
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpts", filename="{epoch}", save_top_k=-1,
                                               every_n_epochs=1, enable_version_counter=False)
    first = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=1)
    _trainer(tmp_path, [first, checkpoints], max_epochs=1, limit_train_batches=2).fit(
        SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule())
    resumed = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=1)
    with pytest.raises(UserError, match="resume it with trainer.max_epochs=1$"):
        _trainer(tmp_path, [resumed], max_epochs=2, limit_train_batches=2).fit(
            SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule(), ckpt_path=tmp_path / "ckpts" / "epoch=1.ckpt")


def test_a_finished_run_resumed_with_more_rounds_selects_before_the_new_round_trains(tmp_path) -> None:
    # 2 epochs, then 1 round of 1 epoch: the checkpoint of its end was the last stage's, whose end selected nothing
    torch.manual_seed(0)
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpts", filename="{epoch}", save_top_k=-1,
                                               every_n_epochs=1, enable_version_counter=False)
    first = SelfTraining(rounds=1, threshold=0.5, max_per_class=4, epochs_per_round=1)
    model = SupervisedBaseline((1, 8, 8), 10, lr_decay_start=0.0)
    _trainer(tmp_path, [first, checkpoints], max_epochs=2, limit_train_batches=2).fit(model, datamodule=_datamodule())
    assert [entry["round"] for entry in first.history] == [0, 1]

    more = SelfTraining(rounds=2, threshold=0.5, max_per_class=4, epochs_per_round=1)
    lrs = RecordLearningRates()
    datamodule = _datamodule()
    trainer = _trainer(tmp_path, [more, lrs], max_epochs=2, limit_train_batches=2)
    trainer.fit(SupervisedBaseline((1, 8, 8), 10, lr_decay_start=0.0), datamodule=datamodule,
                ckpt_path=tmp_path / "ckpts" / "epoch=2.ckpt")
    # round 2 trained its epoch on round 1's pseudo-labels plus its own selection, at the full rate
    assert [entry["round"] for entry in more.history] == [0, 1, 2]
    assert more.history[2]["epochs"] == [3, 3] and more.history[2]["added"] > 0
    assert more.history[2]["pseudo_labeled"] == first.history[1]["pseudo_labeled"] + more.history[2]["added"]
    assert len(datamodule.pseudo_indices) == more.history[2]["pseudo_labeled"]
    assert lrs.lrs == pytest.approx([3e-3])


def test_a_resume_whose_rounds_cannot_go_on_is_one_line(tmp_path, compose_cfg) -> None:
    from omegaconf import open_dict

    from ssgan.train import train

    tiny = ("model=supervised", "data.num_labeled=20", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "logger=csv")
    rounds = ("self_training=default", "self_training.epochs_per_round=1", "self_training.threshold=0.1")

    def run(name: str, *overrides: str):
        cfg = compose_cfg(*tiny, *overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / name)
        train(cfg)
        return tmp_path / name / "checkpoints" / "last.ckpt"

    plain = run("plain", "trainer.max_epochs=2")
    with_rounds = run("rounds", "trainer.max_epochs=1", *rounds, "self_training.rounds=2")
    cases = [
        # its pseudo-labels, under a name without self-training
        ((f"ckpt_path={with_rounds}", "trainer.max_epochs=3"),
         "has begun its self-training rounds and holds their pseudo-labels; resume it with its self-training settings "
         "(e.g. self_training=default self_training.rounds=<its rounds> trainer.max_epochs=1 "
         "self_training.epochs_per_round=1), or start a new run"),
        # the first selection would never come: it once trained an epoch at learning rate 0 instead
        ((f"ckpt_path={plain}", "trainer.max_epochs=2", *rounds, "self_training.rounds=1"),
         "has trained 2 epochs without self-training, and the rounds begin at the end of the first training; resume "
         "with trainer.max_epochs=3 or more, or start a new run"),
        # fewer rounds than trained: the fix is the rounds, not trainer.max_epochs (which the schedule refuses)
        ((f"ckpt_path={with_rounds}", "trainer.max_epochs=1", *rounds, "self_training.rounds=1"),
         "has trained 3 epochs, 2 of them in self-training rounds of 1; resume with self_training.rounds=2 or more"),
    ]
    for number, (overrides, message) in enumerate(cases):
        cfg = compose_cfg(*tiny, *overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"resumed{number}")
        with pytest.raises(UserError) as raised:
            train(cfg)
        assert str(raised.value).endswith(message), str(raised.value)
    # a run that Hydra recorded: its own settings, which resume it (the schedule alone once led to a second refusal)
    # (those it left to the config, here the schedule, from the checkpoint)
    recorded = ["self_training=default", "self_training.threshold=0.1", "self_training.rounds=2"]
    (tmp_path / "rounds" / ".hydra").mkdir()
    (tmp_path / "rounds" / ".hydra" / "overrides.yaml").write_text("".join(f"- {item}\n" for item in [*tiny, *recorded]))
    own = [*recorded, "trainer.max_epochs=1", "self_training.epochs_per_round=1"]
    cfg = compose_cfg(*tiny, f"ckpt_path={with_rounds}", "trainer.max_epochs=3")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "resumed_recorded")
    with pytest.raises(UserError) as raised:
        train(cfg)
    assert str(raised.value).endswith(f"resume it with its self-training settings ({' '.join(own)}), or start a new run")
    cfg = compose_cfg(*tiny, f"ckpt_path={with_rounds}", *own)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "resumed_recorded")
    assert train(cfg)["status"] == "ok"


def test_fewer_rounds_than_a_mid_epoch_checkpoint_has_begun_are_refused() -> None:
    from ssgan.self_training import refuse_mismatched_rounds

    # a mid-epoch checkpoint (the layout Lightning writes) of a run with 1 epoch of first training and
    # rounds of 1 epoch: 2 epochs finished, and 6 batches of the third, round 2's, trained
    state = {"callbacks": {"SelfTraining": {"current_round": 2, "base_epochs": 1, "epochs_per_round": 1}},
             "loops": {"fit_loop": {"epoch_progress": {"current": {"started": 3, "processed": 2, "completed": 2}},
                                    "epoch_loop.batch_progress": {"current": {"processed": 6, "completed": 5}}}}}
    settings = {"max_epochs": "trainer.max_epochs={}", "rounds": "self_training.rounds={}", "on": "self_training=default"}
    refuse_mismatched_rounds("mid.ckpt", state, 1, 2, 1, settings)  # round 2 goes on
    with pytest.raises(UserError, match=r"^mid.ckpt has trained 2 epochs and 6 batches of the next, 2 epochs of "
                                        r"self-training rounds of 1, the last in part; resume with "
                                        r"self_training.rounds=2 or more$"):
        refuse_mismatched_rounds("mid.ckpt", state, 1, 1, 1, settings)
    # saved at the third epoch's last batch, before Lightning counts it processed (validation with
    # val_check_interval < 1 saves there): 3 whole epochs, 2 of them in rounds
    state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] = True
    with pytest.raises(UserError, match=r"^mid.ckpt has trained 3 epochs, 2 of them in self-training rounds of 1; "):
        refuse_mismatched_rounds("mid.ckpt", state, 1, 1, 1, settings)
    # at the end of epoch 2 (the checkpoint written at an epoch's end): round 1 is whole, nothing of round 2
    state["loops"]["fit_loop"]["epoch_progress"]["current"]["started"] = 2
    refuse_mismatched_rounds("mid.ckpt", state, 1, 1, 1, settings)


def test_a_checkpoint_from_the_first_trainings_last_batch_goes_on_into_the_rounds() -> None:
    from ssgan.self_training import refuse_mismatched_rounds

    # best.ckpt of 2 epochs of first training with check_val_every_n_epoch=2: saved by validation at the second
    # epoch's last batch, before that epoch's end selects the first round's pseudo-labels (no rounds yet)
    state = {"callbacks": {"SelfTraining": {"current_round": 0, "base_epochs": 2, "epochs_per_round": 2, "history": []}},
             "loops": {"fit_loop": {"epoch_progress": {"current": {"started": 2, "processed": 1, "completed": 1}},
                                    "epoch_loop.batch_progress": {"current": {"processed": 2, "completed": 2},
                                                                  "is_last_batch": True}}}}
    settings = {"max_epochs": "trainer.max_epochs={}", "rounds": "self_training.rounds={}", "on": "self_training=default"}
    refuse_mismatched_rounds("best.ckpt", state, 2, 1, 2, settings)  # it was once refused as a run without rounds
    # one epoch of first training asked for: that epoch's end has passed without a selection
    with pytest.raises(UserError, match=r"^best.ckpt has trained 2 epochs without self-training"):
        refuse_mismatched_rounds("best.ckpt", state, 1, 1, 2, settings)
    # the same checkpoint saved at the epoch's end (after its selection would have run) is refused
    state["loops"]["fit_loop"]["epoch_progress"]["current"].update(started=2, processed=2)
    with pytest.raises(UserError, match=r"^best.ckpt has trained 2 epochs without self-training"):
        refuse_mismatched_rounds("best.ckpt", state, 2, 1, 2, settings)


@pytest.mark.parametrize("global_zero", [True, False])
def test_round_lines_come_from_rank_zero_alone(tmp_path, caplog, monkeypatch, global_zero: bool) -> None:
    # every rank runs the callback: under DDP each round's lines, and the warning of a fit stopped early, came once per rank
    monkeypatch.setattr(pl.Trainer, "is_global_zero", property(lambda trainer: global_zero))
    self_training = SelfTraining(rounds=1, threshold=0.1, max_per_class=4, epochs_per_round=2)
    with caplog.at_level(logging.INFO, logger="ssgan.self_training"):  # max_steps stops round 1 after its first step
        _trainer(tmp_path, [self_training], max_epochs=1, limit_train_batches=2, max_steps=3, enable_checkpointing=False).fit(
            SupervisedBaseline((1, 8, 8), 10), datamodule=_datamodule())
    assert len(self_training.history) == 2  # both stages ran on this rank
    lines = [r.getMessage() for r in caplog.records if r.name == "ssgan.self_training"]
    assert [line.split(":")[0].split(",")[0] for line in lines] == ([
        "self-training round 0 done", "self-training round 1", "self-training round 1 done",
        "self-training stopped at epoch 1"] if global_zero else []), lines


def test_round_entries_of_a_checkpoint_from_before_they_said_whether_they_trained_say_they_did() -> None:
    state = SelfTraining(rounds=1).state_dict()
    state["history"] = [{"round": 0, "epochs": [0, 2], "val_acc": 0.5, "test_acc": 0.5}]  # as saved before
    self_training = SelfTraining(rounds=1)
    self_training.load_state_dict(state)
    assert self_training.history[0]["trained"] is True


def test_the_advice_to_train_more_rounds_on_a_finished_run_works(tmp_path, train_in_process) -> None:
    # the finished run said "raise trainer.max_epochs", which its rounds refused, and its folder refused more rounds
    import shlex

    run = tmp_path / "run"
    settings = ("model=supervised", "data.num_labeled=20", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "self_training=default",
                "self_training.epochs_per_round=1", "self_training.threshold=0.1")
    code, stderr = train_in_process(*settings, "self_training.rounds=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    code, stderr = train_in_process(*settings, "self_training.rounds=1", f"hydra.run.dir={run}", "ckpt_path=last",
                                    cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    assert ("nothing to train; to train more self-training rounds, resume its checkpoint in a new folder with "
            f"self_training.rounds=2 (hydra.run.dir=<a new folder> ckpt_path={run / 'checkpoints' / 'last.ckpt'})"
            ) in (run / "train.log").read_text()
    code, stderr = train_in_process(*settings, "self_training.rounds=2", f"hydra.run.dir={run}", "ckpt_path=last",
                                    cwd=tmp_path)
    assert code == 2, stderr[-2000:]
    line = stderr.strip().splitlines()[-1]
    lead = ("error: this run's checkpoint was trained with other settings (self_training.rounds: 1 -> 2); its own folder "
            "keeps its own rounds, and more rounds train from its checkpoint in a new folder: ssgan-train ")
    assert line.startswith(lead), line
    command = shlex.split(line[len(lead):])
    assert f"hydra.run.dir={tmp_path / 'run_more_rounds'}" in command and "self_training.rounds=2" in command
    code, stderr = train_in_process(*command, cwd=tmp_path)  # the command it gives, as given
    assert code == 0, stderr[-2000:]
    metrics = json.loads((tmp_path / "run_more_rounds" / "metrics.json").read_text())
    assert [entry["round"] for entry in metrics["rounds"]] == [0, 1, 2]


def test_the_most_confident_probability_is_shown_with_the_decimals_that_put_it_under_the_threshold() -> None:
    # threshold=1: "the most confident had 1.000" read as if it had reached it; 0.99999994 is float32's largest below 1
    from ssgan.self_training import _below

    assert _below(0.99999994, 1.0) == "0.9999999" and _below(0.5, 0.95) == "0.500"
    assert _below(0.9499, 0.95) == "0.9499" and _below(0.9999999999, 1.0) == "1.000000000"  # nine decimals at most


def test_a_round_that_adds_no_pseudo_label_says_why(tmp_path, caplog) -> None:
    # it trained on as "self-training" without a word, the same data as before
    torch.manual_seed(0)
    callback = SelfTraining(rounds=1, threshold=0.999999, max_per_class=4, epochs_per_round=1)
    model = SupervisedBaseline((1, 8, 8), 10, lr_decay_start=0.0)
    with caplog.at_level(logging.WARNING, logger="ssgan.self_training"):
        _trainer(tmp_path, [callback], max_epochs=1, limit_train_batches=1).fit(model, datamodule=_datamodule())
    assert callback.history[1]["added"] == 0
    [warning] = [record.getMessage() for record in caplog.records if "added no pseudo-label" in record.getMessage()]
    assert re.fullmatch(r"self-training round 1 added no pseudo-label: no unlabeled image reached "
                        r"self_training.threshold=0.999999 \(the most confident had 0\.\d{3}\); lower the threshold to add "
                        r"some", warning), warning


def test_self_training_settings_of_a_run_without_rounds_are_checked_and_said_to_be_unused(tmp_path, train_in_process) -> None:
    # self_training.threshold=1.5 trained plain ssgan without a word, where with rounds it is an error
    code, stderr = train_in_process("self_training.threshold=1.5", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        "error: self_training.threshold=1.5 is outside (0, 1]; use e.g. self_training.threshold=0.95")
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "run"
    code, stderr = train_in_process("model=supervised", "data.num_labeled=20", "trainer.max_epochs=1",
                                    "trainer.limit_train_batches=1", "trainer.enable_progress_bar=false",
                                    "self_training.threshold=0.8", "self_training.max_per_class=50", f"hydra.run.dir={run}",
                                    cwd=tmp_path)
    assert code == 0, stderr[-2000:]
    assert ("self_training.threshold=0.8 self_training.max_per_class=50 have no effect in this run, which has no "
            "self-training rounds (self_training.rounds=N or self_training=default turns them on)"
            ) in (run / "train.log").read_text()
