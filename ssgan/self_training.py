"""Self-training rounds: pseudo-label confident unlabeled images, add them to the labeled set, go on training.

A run with ``rounds = R`` trains its configured ``max_epochs`` (round 0), then ``R`` rounds of
``epochs_per_round`` epochs. At the end of each stage but the last, the evaluation classifier (the
EMA discriminator) labels the unlabeled pool; images whose top class probability reaches ``threshold``
become pseudo-labeled training images, at most ``max_per_class`` new ones per class and round, most
confident first. Each round restarts the learning-rate schedule (the previous stage ended at lr 0).
The schedule is fixed once the rounds begin: a resumed run keeps its ``max_epochs`` and
``epochs_per_round`` (``refuse_changed_schedule``).

The design is a callback plus datamodule state, so it works the same from Hydra and from the
Lightning CLI, and a checkpoint carries everything a resumed run needs: the callback's round
bookkeeping and the datamodule's pseudo-labels.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from ssgan.callbacks import last_epoch_fraction
from ssgan.errors import UserError

log = logging.getLogger(__name__)


def _below(value: float, threshold: float) -> str:
    """``value`` (under ``threshold``) with as many decimals as it takes to show that it is under: 0.99999994
    against a threshold of 1, where three decimals read 1.000."""
    digits = 3
    while digits < 9 and round(value, digits) >= threshold:
        digits += 1
    return f"{value:.{digits}f}"


def select_pseudo_labels(probabilities: torch.Tensor, candidates: np.ndarray, threshold: float,
                         max_per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Picks confident predictions, capped per class: at most ``max_per_class`` per predicted class
    (``None``: no cap, so the classes may be far from balanced).

    Args:
        probabilities: (N, K) class probabilities of the candidate images.
        candidates: (N,) their indices into the training images.
        threshold: the smallest top-class probability accepted.
        max_per_class: cap per class (``None``: no cap); the most confident are kept, ties by index.

    Returns:
        (indices, labels): the chosen training-image indices and their pseudo-labels, by class then confidence.
    """
    confidence, predicted = probabilities.max(dim=1)  # (N,), (N,)
    confidence, predicted = confidence.cpu().numpy(), predicted.cpu().numpy()
    chosen_indices, chosen_labels = [], []
    for k in range(probabilities.shape[1]):
        members = np.flatnonzero((predicted == k) & (confidence >= threshold))
        # most confident first; a stable sort on candidate order breaks ties reproducibly
        members = members[np.argsort(-confidence[members], kind="stable")]
        if max_per_class is not None:
            members = members[:max_per_class]
        chosen_indices.append(candidates[members])
        chosen_labels.append(np.full(len(members), k, dtype=np.int64))
    return np.concatenate(chosen_indices).astype(np.int64), np.concatenate(chosen_labels)


def saved_schedule(checkpoint: dict[str, Any]) -> tuple[int | None, int | None] | None:
    """(first training's epochs, epochs per round) of a checkpoint whose self-training rounds have
    begun; None for a checkpoint still in its first training, or without self-training.

    A value that a checkpoint of an older ssgan does not tell is None.
    """
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if not key.startswith("SelfTraining") or int(state.get("current_round", 0)) < 1:
            continue
        history = state.get("history") or []
        base_epochs = state.get("base_epochs")
        if base_epochs is None and history and history[0].get("round") == 0:
            base_epochs = int(history[0]["epochs"][1]) + 1
        return base_epochs, state.get("epochs_per_round")
    return None


def refuse_changed_schedule(checkpoint: str, state: dict[str, Any], base_epochs: int, epochs_per_round: int,
                            settings: tuple[str, str] = ("trainer.max_epochs={}", "self_training.epochs_per_round={}"),
                            train_on: str = "") -> None:
    """A one-line ``UserError`` if ``state`` (a loaded checkpoint) has begun its self-training rounds on
    another schedule than ``base_epochs`` then rounds of ``epochs_per_round``.

    Its rounds' epochs are counted from the end of its first training: another ``max_epochs`` would
    move every round boundary and train on at an exhausted learning rate. ``settings`` names the
    two options as the command line spells them (templates for the value); ``train_on`` ends the message
    with how to train on (more rounds, from the checkpoint in a new folder).
    """
    schedule = saved_schedule(state)
    if schedule is None:
        return
    wanted = [(name, saved) for name, saved, given in zip(settings, schedule, (base_epochs, epochs_per_round))
              if saved is not None and saved != given]
    if wanted:
        raise UserError(f"{checkpoint} has begun its self-training rounds, scheduled after {schedule[0]} epochs of first "
                        f"training in rounds of {schedule[1]} epochs; resume it with "
                        + " and ".join(template.format(saved) for template, saved in wanted) + train_on)


def _epoch_under_way(state: dict[str, Any]) -> tuple[int, int]:
    """(the epochs whose training pass a loaded checkpoint has finished, the batches a mid-epoch checkpoint
    has trained of the next: 0 for one written at an epoch's end).

    Those batches have changed the weights, so a resume that asks for no more epochs than the finished
    ones would report weights trained past what it asks for."""
    fit_loop = state.get("loops", {}).get("fit_loop", {})
    epochs = fit_loop.get("epoch_progress", {}).get("current", {})
    # a checkpoint of an epoch's end is written before Lightning counts that epoch "completed", a
    # mid-epoch one (mid_epoch_checkpoint) before it is "processed"
    processed = int(epochs.get("processed", state.get("epoch", 0)))
    if int(epochs.get("started", 0)) <= processed:  # no epoch under way
        return processed, 0
    batches = fit_loop.get("epoch_loop.batch_progress", {})
    if batches.get("is_last_batch"):  # saved at the epoch's last batch (e.g. by validation with val_check_interval < 1)
        return processed + 1, 0
    return processed, int(batches.get("current", {}).get("processed", 0))


def _before_an_epochs_end(state: dict[str, Any]) -> bool:
    """Whether a checkpoint was saved at an epoch's last batch, before that epoch's end (its
    ``on_train_epoch_end``, where a round's selection happens): a resume runs that end."""
    fit_loop = state.get("loops", {}).get("fit_loop", {})
    epochs = fit_loop.get("epoch_progress", {}).get("current", {})
    under_way = int(epochs.get("started", 0)) > int(epochs.get("processed", state.get("epoch", 0)))
    return under_way and bool(fit_loop.get("epoch_loop.batch_progress", {}).get("is_last_batch"))


def trained_epochs(state: dict[str, Any]) -> int:
    """The epochs whose training pass a loaded checkpoint has finished."""
    return _epoch_under_way(state)[0]


def trained_text(state: dict[str, Any]) -> tuple[int, str]:
    """The epochs a checkpoint has begun (a partly trained one counts) and how to say what it has trained:
    ``(3, "2 epochs and 6 batches of the next")``."""
    epochs, batches = _epoch_under_way(state)
    finished = f"{epochs} epoch{'' if epochs == 1 else 's'}"
    if not batches:
        return epochs, finished
    return epochs + 1, f"{finished} and {batches} batch{'' if batches == 1 else 'es'} of the next"


def refuse_mismatched_rounds(checkpoint: str, state: dict[str, Any], base_epochs: int, rounds: int, epochs_per_round: int,
                             settings: dict[str, str]) -> None:
    """A one-line ``UserError`` for a resume whose self-training settings cannot go on from ``state``.

    - Its rounds have begun (it holds pseudo-labels) and the run has none: it would train on them
      under a name without self-training.
    - Its first training has ended (``base_epochs`` or more epochs) before any round began (it is a
      run without self-training): the first selection would never come at a stage's end.
    - Its rounds have begun and trained past the ``rounds`` asked for, a partly trained epoch
      included (the schedule itself is ``refuse_changed_schedule``'s).

    ``settings`` spells the options as the command line does: ``max_epochs`` and ``rounds`` (templates
    for the value) and ``on`` (how to turn self-training on).
    """
    begun = saved_schedule(state) is not None
    trained = trained_epochs(state)
    if begun and rounds == 0:
        raise UserError(f"{checkpoint} has begun its self-training rounds and holds their pseudo-labels; resume it with "
                        f"its self-training settings ({settings['on']}), or start a new run")
    if rounds == 0:
        return
    # a checkpoint saved by validation at the first training's last batch (check_val_every_n_epoch > 1 saves
    # best.ckpt there) has not yet passed that epoch's end, where the first selection happens: it can go on
    if not begun and trained - _before_an_epochs_end(state) >= base_epochs:
        raise UserError(f"{checkpoint} has trained {trained} epochs without self-training, and the rounds begin at the end "
                        f"of the first training; resume with {settings['max_epochs'].format(trained + 1)} or more, or "
                        "start a new run")
    started, trained_so_far = trained_text(state)
    if begun and started > base_epochs + rounds * epochs_per_round:
        needed = -(-(started - base_epochs) // epochs_per_round)  # ceil
        in_rounds = (f"{started - base_epochs} of them in self-training rounds of {epochs_per_round}" if started == trained
                     else f"{started - base_epochs} epochs of self-training rounds of {epochs_per_round}, the last in part")
        raise UserError(f"{checkpoint} has trained {trained_so_far}, {in_rounds}; resume with "
                        f"{settings['rounds'].format(needed)} or more")


class SelfTraining(pl.Callback):
    """Runs self-training rounds after the configured training (see the module docstring).

    Args:
        rounds: number of rounds after the first training; 0 turns self-training off.
        threshold: smallest top-class probability for a pseudo-label, in (0, 1].
        max_per_class: at most this many new pseudo-labels per class and round (``None``: no cap).
        epochs_per_round: epochs trained after each selection.
        reset_weights: re-initialise the nets (and optimizer states) at the start of each round,
            instead of going on from the current weights.
        keep_pseudo_labels: keep earlier rounds' pseudo-labels and add new ones (True), or relabel
            the whole pool each round (False), with a cap of ``max_per_class`` times the round number.
        eval_batch_size: batch size for labeling the pool and for the per-round evaluation.
    """

    def __init__(self, rounds: int = 3, threshold: float = 0.95, max_per_class: int | None = 100,
                 epochs_per_round: int = 5, reset_weights: bool = False, keep_pseudo_labels: bool = True,
                 eval_batch_size: int = 1000) -> None:
        if rounds < 0:
            raise UserError(f"self_training.rounds={rounds} is negative; use 0 (off) or more")
        if not 0 < threshold <= 1:
            raise UserError(f"self_training.threshold={threshold} is outside (0, 1]; use e.g. self_training.threshold=0.95")
        if max_per_class is not None and max_per_class < 1:
            raise UserError(f"self_training.max_per_class={max_per_class} must be at least 1, or null for no cap")
        if eval_batch_size < 1:
            raise UserError(f"self_training.eval_batch_size={eval_batch_size} must be at least 1; use e.g. self_training.eval_batch_size=1000")
        if rounds > 0 and epochs_per_round < 1:
            raise UserError(f"self_training.epochs_per_round={epochs_per_round} must be at least 1; use e.g. "
                            "self_training.epochs_per_round=5")
        self.rounds, self.threshold, self.max_per_class = rounds, threshold, max_per_class
        self.epochs_per_round, self.reset_weights = epochs_per_round, reset_weights
        self.keep_pseudo_labels, self.eval_batch_size = keep_pseudo_labels, eval_batch_size
        self.base_epochs = 0
        self.current_round = 0
        self.history: list[dict[str, Any]] = []  # one entry per finished stage (round 0 = the first training)
        self._pending: dict[str, Any] = {}  # the selection that started the current round
        # the nets are re-initialised when the round's first epoch starts, not when the previous one
        # ends: the checkpoints written at that epoch's end must hold the weights it trained
        self._reset_pending = False
        self._loaded_state: dict[str, Any] | None = None  # a resumed checkpoint's state, checked at train start

    # -- schedule -----------------------------------------------------------------------------
    def stage_bounds(self, round_index: int) -> tuple[int, int]:
        """(first epoch, number of epochs) of a round; round 0 is the configured training."""
        if round_index == 0:
            return 0, self.base_epochs
        return self.base_epochs + (round_index - 1) * self.epochs_per_round, self.epochs_per_round

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        max_epochs = trainer.fit_loop.max_epochs
        if max_epochs is None or max_epochs < 1:
            raise UserError("self-training needs a fixed number of epochs; set trainer.max_epochs")
        self.base_epochs = max_epochs
        trainer.fit_loop.max_epochs = max_epochs + self.rounds * self.epochs_per_round

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after a checkpoint is restored: current_round comes from it
        if self._loaded_state is not None:  # ssgan-train and ssgan-cli refuse this before any work; a plain Trainer here
            loaded, self._loaded_state = self._loaded_state, None
            refuse_changed_schedule("the resumed checkpoint", {"callbacks": {"SelfTraining": loaded}},
                                    self.base_epochs, self.epochs_per_round)
        start, length = pl_module.schedule_stage = self.stage_bounds(self.current_round)
        stage_recorded = bool(self.history) and self.history[-1]["round"] == self.current_round
        if stage_recorded and trainer.current_epoch >= start + length and self.current_round < self.rounds:
            # a checkpoint of a finished run's last stage, resumed with more rounds: the selection that the
            # stage's end skipped (it was the last then) comes now, and the new round starts at its full rate
            self._begin_next_round(trainer, pl_module)
            pl_module.follow_lr_schedule()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.current_round > 0 and trainer.current_epoch == self.stage_bounds(self.current_round)[0]:
            # each round is a new stage, judged on its own: with fresh weights its first epochs score below the
            # last round's best, and the patience spent there would end the run as soon as the round began
            # (not at the last round's end: EarlyStopping judges that epoch after this callback's hook)
            for early_stopping in (c for c in trainer.callbacks if isinstance(c, EarlyStopping)):
                early_stopping.wait_count = 0
                early_stopping.best_score = torch.tensor(torch.inf if early_stopping.mode == "min" else -torch.inf)
        if self._reset_pending:
            self._reset_pending = False
            pl_module.reset_weights()
            for optimizer in trainer.optimizers:
                optimizer.state.clear()  # fresh Adam moments for the fresh weights

    # -- the round boundary -----------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start, length = self.stage_bounds(self.current_round)
        if trainer.current_epoch < start + length - 1:  # >=: a resumed run that skipped the boundary catches up
            return
        if last_epoch_fraction(trainer) < 1:
            # trainer.max_steps or max_time cut the stage's last epoch short, and Lightning ends that epoch all
            # the same: the stage did not finish, so no round begins (on_train_end records the stage as it ran)
            return
        self._finish_stage(trainer, pl_module)
        if self.current_round < self.rounds:
            self._begin_next_round(trainer, pl_module)
            # the module's on_train_epoch_end (after this hook) steps the schedulers into the new stage

    def _begin_next_round(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Selects the next round's pseudo-labels with the current classifier and moves the schedule to that round."""
        datamodule = trainer.datamodule
        self.current_round += 1
        added_indices, added_labels = self._select(pl_module, datamodule)
        if trainer.world_size > 1:  # every rank must train on the same pseudo-labels: rank 0's
            added_indices, added_labels = trainer.strategy.broadcast((added_indices, added_labels), src=0)
        if self.keep_pseudo_labels:
            indices = np.concatenate([datamodule.pseudo_indices.numpy(), added_indices])
            labels = np.concatenate([datamodule.pseudo_labels.numpy(), added_labels])
        else:
            indices, labels = added_indices, added_labels
        datamodule.set_pseudo_labels(indices, labels)
        true_labels = datamodule.data.train_labels.numpy()
        num_classes = datamodule.num_classes
        self._pending = {
            "added": int(len(added_indices)),
            "added_per_class": np.bincount(added_labels, minlength=num_classes).tolist(),
            "precision_added": _precision(added_labels, true_labels[added_indices]),
        }
        if trainer.is_global_zero:  # every rank selects the same; under DDP its line came once per rank
            log.info("self-training round %d: %d pseudo-labels added (%s per class), precision %s; %d in all",
                     self.current_round, len(added_indices), self._pending["added_per_class"],
                     _format(self._pending["precision_added"]), len(indices))
            if len(added_indices) == 0:  # the round trains on, but is self-training only in name
                log.warning("self-training round %d added no pseudo-label: %s", self.current_round,
                            "no unlabeled image is left to label (the pool holds only labeled or pseudo-labeled images)"
                            if self._top_confidence is None else
                            f"no unlabeled image reached self_training.threshold={self.threshold:g} (the most confident "
                            f"had {_below(self._top_confidence, self.threshold)}); lower the threshold to add some")
        self._reset_pending = self.reset_weights  # done in on_train_epoch_start
        pl_module.schedule_stage = self.stage_bounds(self.current_round)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a run stopped early (e.g. max_steps, fast_dev_run) has not recorded its current stage yet,
        # unless it stopped at a round boundary: then the new round never trained, and is not a stage
        start, _ = self.stage_bounds(self.current_round)
        last_started = trainer.fit_loop.epoch_progress.current.started - 1
        never_trained = last_started < start
        if (not self.history or self.history[-1]["round"] != self.current_round) and not never_trained:
            self._finish_stage(trainer, pl_module, log_metrics=False)  # Lightning allows no logging here
        elif never_trained and self._pending:
            # its selection was made, and is in the datamodule and the checkpoints: report it, untrained
            self.history.append({"round": self.current_round, "epochs": None, "trained": False,
                                 **_pseudo_label_figures(trainer.datamodule), **self._pending, "val_acc": None,
                                 "test_acc": None})
            self._pending = {}
        last_start, last_length = self.stage_bounds(self.rounds)
        planned_end = last_start + last_length - 1
        if self.rounds > 0 and last_started < planned_end and not trainer.fast_dev_run and trainer.is_global_zero:
            # early stopping, trainer.max_steps or max_time ended the fit, and with it the rounds to come
            log.warning("self-training stopped at epoch %d, in round %d of %d, before the %d epochs its rounds plan "
                        "(early stopping, trainer.max_steps or trainer.max_time ended the fit); metrics.json lists "
                        "the rounds that ran", max(last_started, 0), self.current_round, self.rounds, planned_end + 1)

    def _finish_stage(self, trainer: pl.Trainer, pl_module: pl.LightningModule, log_metrics: bool = True) -> None:
        datamodule = trainer.datamodule
        start, length = self.stage_bounds(self.current_round)
        # a stage stopped early (e.g. EarlyStopping, max_steps) ends at the last epoch that started
        last_started = trainer.fit_loop.epoch_progress.current.started - 1
        end = min(start + length - 1, max(start, last_started))
        entry = {
            "round": self.current_round,
            "epochs": [start, end],
            "trained": True,
            **_pseudo_label_figures(datamodule),
            **{"added": 0, "added_per_class": [0] * datamodule.num_classes, "precision_added": None, **self._pending},
            "val_acc": _accuracy(pl_module, *datamodule._subset(datamodule.split.val), self.eval_batch_size),
            "test_acc": _accuracy(pl_module, datamodule.data.test_images, datamodule.data.test_labels, self.eval_batch_size),
        }
        self.history.append(entry)
        self._pending = {}
        if log_metrics:
            self._log(pl_module, entry)
        if trainer.is_global_zero:
            log.info("self-training round %d done: val acc %s, test acc %s, %d pseudo-labels (precision %s)",
                     entry["round"], _format(entry["val_acc"]), _format(entry["test_acc"]), entry["pseudo_labeled"],
                     _format(entry["precision"]))

    @staticmethod
    def _log(pl_module: pl.LightningModule, entry: dict[str, Any]) -> None:
        pl_module.log_dict({"self_training/round": float(entry["round"]),
                            "self_training/pseudo_labeled": float(entry["pseudo_labeled"]),
                            **({"self_training/precision": entry["precision"]} if entry["precision"] is not None else {}),
                            **({"self_training/test_acc": entry["test_acc"]} if entry["test_acc"] is not None else {})},
                           on_epoch=True)

    @torch.no_grad()
    def _select(self, pl_module: pl.LightningModule, datamodule) -> tuple[np.ndarray, np.ndarray]:
        if self.keep_pseudo_labels:
            candidates = datamodule.pseudo_label_candidates()
            cap = self.max_per_class
        else:
            candidates = datamodule.pseudo_label_candidates(include_pseudo_labeled=True)
            cap = None if self.max_per_class is None else self.max_per_class * self.current_round
        self._top_confidence = None  # the most confident candidate's top-class probability, for the no-selection warning
        if len(candidates) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        images = datamodule.data.train_images[torch.from_numpy(candidates)]
        probabilities = _predict(pl_module, images, self.eval_batch_size)  # (N, K)
        self._top_confidence = float(probabilities.max())
        return select_pseudo_labels(probabilities, candidates, self.threshold, cap)

    # -- checkpoint state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"current_round": self.current_round, "history": copy.deepcopy(self.history),
                "pending": copy.deepcopy(self._pending), "reset_pending": self._reset_pending,
                "base_epochs": self.base_epochs, "epochs_per_round": self.epochs_per_round}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.current_round = int(state_dict["current_round"])
        self.history = copy.deepcopy(state_dict["history"])
        for entry in self.history:  # a checkpoint from before entries said whether they trained: they all did
            entry.setdefault("trained", True)
        self._pending = copy.deepcopy(state_dict.get("pending", {}))
        # a pending reset of a run resumed with reset_weights=false (e.g. from another run's checkpoint) is dropped
        self._reset_pending = bool(state_dict.get("reset_pending", False)) and self.reset_weights
        self._loaded_state = copy.deepcopy(state_dict)


@torch.no_grad()
def _predict(pl_module: pl.LightningModule, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probabilities (N, K) of uint8 images from the module's evaluation classifier, in eval mode."""
    was_training = pl_module.training
    pl_module.eval()
    try:
        outputs = [torch.softmax(pl_module(chunk.to(pl_module.device)).float(), dim=1).cpu()
                   for chunk in images.split(batch_size)]
    finally:
        pl_module.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, pl_module.num_classes)


def _accuracy(pl_module: pl.LightningModule, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float | None:
    if len(images) == 0:
        return None
    predicted = _predict(pl_module, images, batch_size).argmax(dim=1)
    return float((predicted == labels).float().mean())


def _pseudo_label_figures(datamodule) -> dict[str, Any]:
    """A round's labeled count and its pseudo-labels in all: their number, per class, and precision."""
    pseudo = datamodule.pseudo_indices.numpy()
    return {"labeled": int(len(datamodule.split.labeled)), "pseudo_labeled": int(len(pseudo)),
            "pseudo_per_class": np.bincount(datamodule.pseudo_labels.numpy(), minlength=datamodule.num_classes).tolist(),
            "precision": _precision(datamodule.pseudo_labels.numpy(), datamodule.data.train_labels.numpy()[pseudo])}


def _precision(pseudo_labels: np.ndarray, true_labels: np.ndarray) -> float | None:
    """Share of pseudo-labels equal to the true labels (a diagnostic: training never sees these labels).

    Images whose true label is unknown (-1, e.g. a folder's ``unlabeled/`` images) are left out.
    """
    known = true_labels >= 0
    return float((pseudo_labels[known] == true_labels[known]).mean()) if known.any() else None


def _format(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
