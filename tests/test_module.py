"""The Lightning modules: each optimizer's parameters get gradients only in their own step."""

from __future__ import annotations

import sys

import pytest
import pytorch_lightning as pl
import torch

from ssgan.data import DigitsDataModule
from ssgan.module import SSGAN, SupervisedBaseline


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def _same(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b))


class RecordGradients(pl.Callback):
    """Wraps both optimizers' ``step`` to snapshot every parameter's gradient at each step."""

    def __init__(self) -> None:
        self.records: list[tuple[str, list, list]] = []  # (optimizer, D grads, G grads)

    def on_train_start(self, trainer: pl.Trainer, module: SSGAN) -> None:
        for name, optimizer in zip(("discriminator", "generator"), trainer.optimizers):
            original = optimizer.step

            def step(*args, _name=name, _original=original, **kwargs):
                self.records.append((_name, _grads(module.discriminator), _grads(module.generator)))
                return _original(*args, **kwargs)

            optimizer.step = step


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


def test_each_optimizer_gets_gradients_only_in_its_own_step(tmp_path) -> None:
    datamodule = DigitsDataModule(num_labeled=20, batch_size=32, split_cache_dir=None)
    model = SSGAN((1, 8, 8), 10)
    recorder = RecordGradients()
    _trainer(max_steps=8, limit_val_batches=0, callbacks=[recorder]).fit(model, datamodule=datamodule)
    assert [name for name, *_ in recorder.records] == ["discriminator", "generator"] * 4
    previous_g: list = [None] * len(list(model.generator.parameters()))
    for (_, d_step_d, d_step_g), (_, g_step_d, g_step_g) in zip(recorder.records[::2], recorder.records[1::2]):
        # D step: every D parameter has a non-zero gradient; G's are untouched (G(z) is detached)
        assert all(g is not None and g.abs().sum() > 0 for g in d_step_d)
        assert _same(d_step_g, previous_g)
        # G step: every G parameter has a non-zero gradient; D's are left as the D step made them
        assert all(g is not None and g.abs().sum() > 0 for g in g_step_g)
        assert _same(g_step_d, d_step_d)
        previous_g = g_step_g


class RecordDiscriminatorAroundGeneratorStep(pl.Callback):
    """Wraps the generator optimizer's ``step`` to snapshot D's weights just before and just after it."""

    def __init__(self) -> None:
        self.pairs: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []  # (before, after) per G step

    def on_train_start(self, trainer: pl.Trainer, module: SSGAN) -> None:
        optimizer = trainer.optimizers[1]
        original = optimizer.step

        def step(*args, **kwargs):
            before = [p.detach().clone() for p in module.discriminator.parameters()]
            result = original(*args, **kwargs)
            self.pairs.append((before, [p.detach().clone() for p in module.discriminator.parameters()]))
            return result

        optimizer.step = step


def test_discriminator_weights_move_only_in_the_d_step_and_ema_follows() -> None:
    torch.manual_seed(0)
    datamodule = DigitsDataModule(num_labeled=20, batch_size=32, split_cache_dir=None)
    model = SSGAN((1, 8, 8), 10, ema_decay=0.9)
    start_d = [p.detach().clone() for p in model.discriminator.parameters()]
    start_ema = [p.detach().clone() for p in model.ema_discriminator.parameters()]
    recorder = RecordDiscriminatorAroundGeneratorStep()
    _trainer(max_steps=6, limit_val_batches=0, callbacks=[recorder]).fit(model, datamodule=datamodule)
    assert all(not torch.equal(a, b) for a, b in zip(start_d, model.discriminator.parameters()))
    # the G step leaves every D weight as the D step made it
    assert len(recorder.pairs) == 3
    assert all(torch.equal(a, b) for before, after in recorder.pairs for a, b in zip(before, after))
    ema_moved = [not torch.equal(a, b) for a, b in zip(start_ema, model.ema_discriminator.parameters())]
    assert all(ema_moved)
    assert not any(p.requires_grad for p in model.ema_discriminator.parameters())
    assert int(model.ema_updates) == 3


def test_ema_update_follows_the_warmed_up_decay() -> None:
    model = SSGAN((1, 8, 8), 10, ema_decay=0.9)
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.fill_(1.0)
        for p in model.ema_discriminator.parameters():
            p.zero_()
    model.update_ema()  # n = 1: decay = min(0.9, 2/11)
    expected = 1.0 - 2.0 / 11.0
    assert all(torch.allclose(p, torch.full_like(p, expected)) for p in model.ema_discriminator.parameters())
    for _ in range(200):
        model.update_ema()  # late steps use the configured 0.9
    assert all(torch.allclose(p, torch.ones_like(p), atol=1e-6) for p in model.ema_discriminator.parameters())
    assert int(model.ema_updates) == 201


def test_supervised_baseline_has_one_optimizer_and_evaluates() -> None:
    datamodule = DigitsDataModule(num_labeled=20, batch_size=32, split_cache_dir=None)
    model = SupervisedBaseline((1, 8, 8), 10)
    trainer = _trainer(max_steps=3, limit_val_batches=1)
    trainer.fit(model, datamodule=datamodule)
    assert len(trainer.optimizers) == 1
    result = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    assert 0.0 <= result["test/acc"] <= 1.0
    assert not hasattr(model, "generator")


def test_forward_accepts_uint8_and_predict_gives_probabilities() -> None:
    model = SSGAN((1, 8, 8), 10).eval()
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    assert torch.allclose(model(images), model(images.float() / 255.0), atol=1e-5)
    probs = model.predict_step(images, 0)
    assert probs.shape == (4, 10) and torch.allclose(probs.sum(dim=1), torch.ones(4))


def test_a_gradient_scaler_overflow_under_16_mixed_is_a_skipped_step_not_a_divergence() -> None:
    # a GPU 16-mixed run's plugin, emulated on the CPU; the scale starts high and grows every step, so
    # it overflows at once, as GradScaler's growth makes it do now and then in any long run
    from pytorch_lightning.plugins.precision import MixedPrecision

    from ssgan.data import DigitsDataModule

    pl.seed_everything(0, verbose=False)
    datamodule = DigitsDataModule(num_labeled=50, num_val=100, split_cache_dir=None)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=1)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=12, logger=False, enable_progress_bar=False,
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)], enable_checkpointing=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(SSGAN((1, 8, 8), 10), datamodule=datamodule)  # once: DivergenceError at batch 2
    assert scaler.get_scale() < 2.0**16 * 2**24  # it did overflow and back off (24 steps of growth otherwise)


def test_a_step_the_grad_scaler_skips_updates_no_ema() -> None:
    from pytorch_lightning.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    # a scale so large that every scaled gradient overflows: the scaler skips each step and halves its scale
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 40)
    model = SSGAN((1, 8, 8), 10)
    trainer = _trainer(max_steps=6, limit_val_batches=0, plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.fit(model, datamodule=DigitsDataModule(num_labeled=20, batch_size=32, split_cache_dir=None))
    assert scaler.get_scale() < 2.0 ** 40  # the premise: steps were skipped
    # D kept its data-initialised weights, and the EMA is still their copy
    assert int(model.ema_updates) == 0
    assert all(torch.equal(a, b) for a, b in zip(model.discriminator.parameters(), model.ema_discriminator.parameters()))


def test_train_means_start_afresh_when_the_resumed_checkpoint_summed_other_terms() -> None:
    # a mid-epoch checkpoint of a run without the entropy term, resumed with it: the sums of 4 terms
    # met a step of 5 and stopped the run with a size mismatch
    model = SSGAN((1, 8, 8), 10, arch="mlp", entropy_weight=1.0)
    model.on_load_checkpoint({"ssgan_train_sums": {"names": ["loss_supervised", "acc_labeled"],
                                                   "sums": torch.tensor([2.0, 1.5]), "steps": 2}})
    step = {"loss_supervised": torch.tensor(1.0), "acc_labeled": torch.tensor(0.5), "loss_entropy": torch.tensor(3.0)}
    model.accumulate_train_metrics(**step)
    assert model._train_names == list(step) and model._train_sums.tolist() == [1.0, 0.5, 3.0] and model._train_steps == 1
    # the same terms as the checkpoint's: its sums go on
    model.on_load_checkpoint({"ssgan_train_sums": {"names": list(step), "sums": torch.tensor([2.0, 1.0, 4.0]), "steps": 2}})
    model.accumulate_train_metrics(**step)
    assert model._train_sums.tolist() == [3.0, 1.5, 7.0] and model._train_steps == 3


def test_class_metric_names_are_unique_however_the_names_read() -> None:
    from ssgan.module import class_metric_names

    assert class_metric_names(["T-shirt/top", "Trouser"]) == ["T-shirt_top", "Trouser"]
    assert class_metric_names(["a b", "a_b", "c"]) == ["a_b_0", "a_b_1", "c"]  # once both "a_b": one figure lost
    for names in (["a b", "a_b", "a_b_1"], ["a b", "a_b", "a_b_0"], ["x", "x_1", "x 1", "x?1"]):
        assert len(set(class_metric_names(names))) == len(names), names


def test_under_ddp_with_a_grad_scaler_every_rank_takes_the_same_nonfinite_decision() -> None:
    # each rank checks only its own loss under a GradScaler: a rank whose loss overflowed once skipped (or
    # stopped) alone, and the ranks' scalers parted ways or the others hung in the next collective
    from types import SimpleNamespace

    decisions = []

    class OtherRankOverflowed:
        def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
            decisions.append((decision, all))
            return False

    model = SSGAN((1, 8, 8), 10)
    model._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=object()), world_size=2,
                                     strategy=OtherRankOverflowed())
    optimizer = torch.optim.Adam(model.discriminator.parameters())
    assert model._nonfinite(torch.tensor(1.0), optimizer) == "another process's loss"
    assert decisions == [(True, True)]


def test_synced_batch_norms_in_the_generator_are_refused() -> None:
    # rank 0 alone draws the sample grids: a SyncBatchNorm in training mode would wait for the other ranks forever
    import pytest

    from ssgan.errors import UserError

    model = SSGAN((1, 8, 8), 10)
    model.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model.generator)
    with pytest.raises(UserError, match=r"^trainer.sync_batchnorm=true would make the generator's batch norms wait"):
        model.on_fit_start()


def test_sync_batchnorm_is_refused_before_the_strategy_converts_and_wraps_the_nets() -> None:
    # under trainer=ddp_cpu, DDP's wrap stopped first, with torch's traceback ("SyncBatchNorm layers only work
    # with GPU modules"): the refusal comes in setup, which Lightning calls before the strategy's own setup
    import pytest

    from ssgan.errors import UserError

    def ssgan_on(sync_batchnorm: bool) -> SSGAN:
        model = SSGAN((1, 8, 8), 10)
        model.trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true",
                                   sync_batchnorm=sync_batchnorm, logger=False, enable_progress_bar=False)
        return model

    with pytest.raises(UserError, match=r"^trainer.sync_batchnorm=true would make the generator's batch norms wait"):
        ssgan_on(True).setup("fit")
    ssgan_on(False).setup("fit")
    ssgan_on(True).setup("test")  # testing draws no samples: the nets are not trained


@pytest.mark.parametrize("emulate_16_mixed", [False, True])
def test_gradient_clipping_bounds_the_unscaled_gradient_norm(emulate_16_mixed: bool) -> None:
    # under 16-mixed the backward's gradients carry the loss scale: clipped before unscaling, the norm
    # Adam saw was clip / 65536
    import functools

    from pytorch_lightning.plugins.precision import MixedPrecision

    class StepNorms(pl.Callback):  # D's gradient norm as its optimizer's step applied it
        def __init__(self) -> None:
            self.norms: list[float] = []

        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            optimizer = trainer.optimizers[0]
            step = optimizer.step

            def recorded_step(*args, **kwargs):
                result = step(*args, **kwargs)
                grads = [p.grad.norm() for p in pl_module.discriminator.parameters() if p.grad is not None]
                self.norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))
                return result

            optimizer.step = recorded_step

    torch.manual_seed(0)
    adam = functools.partial(torch.optim.Adam, lr=3e-3, betas=(0.5, 0.999))  # unfused: clipping under a scaler needs it
    model = SSGAN((1, 8, 8), 10, optimizer_d=adam, optimizer_g=adam, gradient_clip_val=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=10**6)
    norms = StepNorms()
    trainer = _trainer(max_steps=3, limit_val_batches=0, callbacks=[norms],
                       plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)] if emulate_16_mixed else None)
    trainer.fit(model, datamodule=DigitsDataModule(num_labeled=20, batch_size=32, split_cache_dir=None))
    assert len(norms.norms) >= 2 and all(abs(norm - 0.5) < 1e-3 for norm in norms.norms), norms.norms


def test_a_conv_net_with_adam_above_1e_3_is_warned_about_with_the_fix_as_the_entry_point_spells_it(caplog) -> None:
    from functools import partial

    from ssgan.module import warn_if_the_conv_net_gets_a_high_lr

    def warned(model, choose=lambda setting, value: f"model.{setting}={value}", tail=", as experiment=cifar10_4000 does"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="ssgan.module"):
            warn_if_the_conv_net_gets_a_high_lr(model, choose, tail)
        return [record.getMessage() for record in caplog.records]

    adam = partial(torch.optim.Adam, betas=(0.5, 0.999))
    # the default optimizers: the MLP recipe's Adam at 3e-3, and its squared feature matching
    assert warned(SSGAN((3, 16, 16), 10, arch="conv")) == [
        "the conv net trains with Adam at model.optimizer_d.lr=0.003 model.optimizer_g.lr=0.003, above 0.001, where it "
        "learns poorly (the reference conv recipe's rate is 3e-4); set model.optimizer_d.lr=0.0003 "
        "model.optimizer_g.lr=0.0003 model.feature_matching=absolute, as experiment=cifar10_4000 does"]
    # as ssgan-cli spells the settings; only the optimizer that is too high is named
    cli = lambda setting, value: f"--model.init_args.{setting.replace('.lr', '.init_args.lr')}={value}"  # noqa: E731
    assert warned(SSGAN((3, 16, 16), 10, arch="conv", optimizer_d=partial(adam, lr=1e-4), feature_matching="absolute"),
                  cli, tail="") == [
        "the conv net trains with Adam at --model.init_args.optimizer_g.init_args.lr=0.003, above 0.001, where it learns "
        "poorly (the reference conv recipe's rate is 3e-4); set --model.init_args.optimizer_g.init_args.lr=0.0003"]
    assert warned(SupervisedBaseline((3, 16, 16), 10, arch="conv")) == [
        "the conv net trains with Adam at model.optimizer_d.lr=0.003, above 0.001, where it learns poorly (the reference "
        "conv recipe's rate is 3e-4); set model.optimizer_d.lr=0.0003, as experiment=cifar10_4000 does"]
    # the conv recipe, the MLP, and another optimizer (whose rates mean something else) are left alone
    conv_recipe = partial(adam, lr=3e-4)
    assert warned(SSGAN((3, 16, 16), 10, arch="conv", optimizer_d=conv_recipe, optimizer_g=conv_recipe)) == []
    assert warned(SSGAN((1, 16, 16), 10, arch="mlp")) == []
    assert warned(SupervisedBaseline((3, 16, 16), 10, arch="conv",
                                     optimizer_d=partial(torch.optim.SGD, lr=0.05, momentum=0.9))) == []


@pytest.mark.parametrize("value", [0, -1.0, float("nan")])
def test_a_gradient_clip_value_that_clips_nothing_is_refused(value: float) -> None:
    from ssgan.errors import UserError

    # 0 and negative norms once trained without clipping, without a word
    with pytest.raises(UserError, match=r"^model.gradient_clip_val=\S+ is no gradient norm to clip to; use a positive "
                                        r"number, e.g. model.gradient_clip_val=1, or null for no clipping$"):
        SupervisedBaseline((1, 8, 8), 10, gradient_clip_val=value)
    SupervisedBaseline((1, 8, 8), 10, gradient_clip_val=0.5)  # a positive norm is taken


def test_a_resume_into_a_subclass_of_the_checkpoints_module_is_not_refused() -> None:
    # a user's SSGAN subclass (the same nets) resumed an SSGAN checkpoint before the module-class check
    from ssgan.errors import UserError
    from ssgan.module import refuse_another_module

    class MySSGAN(SSGAN):
        pass

    refuse_another_module("x.ckpt", {"ssgan_module": "ssgan.module.SSGAN"}, MySSGAN((1, 8, 8), 10), str)
    with pytest.raises(UserError, match="^x.ckpt was written by ssgan.module.SSGAN, and this run builds "
                                        "ssgan.module.SupervisedBaseline; resume with "):
        refuse_another_module("x.ckpt", {"ssgan_module": "ssgan.module.SSGAN"}, SupervisedBaseline((1, 8, 8), 10), str)
    # a class that is no model is a damaged checkpoint; a name a loaded module lacks (a user's script's class) or a
    # module never imported (which a checkpoint must not make ssgan import) is another model, named to resume with
    with pytest.raises(UserError, match="records its model class as collections.OrderedDict, which is not an ssgan model"):
        refuse_another_module("x.ckpt", {"ssgan_module": "collections.OrderedDict"}, SSGAN((1, 8, 8), 10), str)
    for recorded in ("__main__.MySSGAN", "never_imported_package.MySSGAN"):
        with pytest.raises(UserError, match=f"^x.ckpt was written by {recorded}, and this run builds ssgan.module.SSGAN"):
            refuse_another_module("x.ckpt", {"ssgan_module": recorded}, SSGAN((1, 8, 8), 10), str)
    assert "never_imported_package" not in sys.modules
