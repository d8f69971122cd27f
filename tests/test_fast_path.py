"""The fast training step equals a plain reference implementation of the same math on a fixed batch.

The fast path (``SSGAN.training_step``) runs one concatenated discriminator forward over the labeled,
unlabeled and generated images, normalises weights on the output side, uses fused Adam and whatever
else makes it fast. The reference below is written straight from Salimans et al. (2016), one forward
per batch, with none of that. With the nets' noise switched off (the only randomness left is z, drawn
in the same order), both must give the same D and G losses and the same gradients for every parameter,
to float32 round-off: relative tolerance 1e-4, absolute 1e-6.
"""

from __future__ import annotations

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ssgan.data import DigitsDataModule
from ssgan.module import SSGAN

RTOL, ATOL = 1e-4, 1e-6


class CaptureBatch(pl.Callback):
    """Keeps the first training batch and the RNG state just before its step."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch = [t.clone() for t in batch]
        self.rng_state = torch.get_rng_state()


class RecordingSSGAN(SSGAN):
    """SSGAN that records the loss handed to each optimizer step."""

    def optimizer_step_block(self, optimizer, loss, name):
        self.recorded_losses = getattr(self, "recorded_losses", []) + [loss.detach().clone()]
        return super().optimizer_step_block(optimizer, loss, name)


def reference_gradients(discriminator, generator, labeled, labels, unlabeled, z_d, z_g, unlabeled_weight,
                        entropy_weight=0.0):
    """The paper's losses, one forward per batch; returns (loss_d, loss_g, D gradients, G gradients)."""
    fake = generator(z_d).detach()
    logits_labeled = discriminator(labeled)[0]  # (B, K); the fake class is the implicit logit 0
    logits_unlabeled = discriminator(unlabeled)[0]
    logits_fake = discriminator(fake)[0]
    # L_supervised = -E log p(y | x, y < K+1)
    loss_supervised = F.cross_entropy(logits_labeled, labels)
    # L_unsupervised = -E_x log D(x) - E_z log(1 - D(G(z))), with D(x) = Z(x) / (Z(x) + 1), Z = sum exp(l)
    z_unl = torch.logsumexp(logits_unlabeled, dim=1)
    z_fake = torch.logsumexp(logits_fake, dim=1)
    log_d_real = z_unl - torch.log1p(torch.exp(z_unl))
    log_one_minus_d_fake = -torch.log1p(torch.exp(z_fake))
    loss_unsupervised = -0.5 * log_d_real.mean() - 0.5 * log_one_minus_d_fake.mean()
    # H = -E_x sum_k p(k | x, k < K+1) log p(k | x, k < K+1), on the unlabeled images (Dai et al. 2017)
    posterior = torch.softmax(logits_unlabeled, dim=1)
    entropy = -(posterior * torch.log(posterior)).sum(dim=1).mean()
    loss_d = loss_supervised + unlabeled_weight * loss_unsupervised + entropy_weight * entropy
    grads_d = torch.autograd.grad(loss_d, list(discriminator.parameters()))

    fake = generator(z_g)
    features_real = discriminator(unlabeled)[1].detach()  # (B, F)
    features_fake = discriminator(fake)[1]
    loss_g = (features_fake.mean(0) - features_real.mean(0)).pow(2).mean()  # ||E f(x) - E f(G(z))||^2 / F
    grads_g = torch.autograd.grad(loss_g, list(generator.parameters()))
    return loss_d, loss_g, grads_d, grads_g


@pytest.mark.parametrize("unlabeled_weight, entropy_weight", [(1.0, 0.0), (3.0, 0.0), (1.0, 0.5)])
def test_training_step_matches_the_plain_reference(tmp_path, unlabeled_weight, entropy_weight) -> None:
    torch.manual_seed(0)
    # lr 0: the step leaves the weights as they were, so the reference sees the same nets
    frozen_sgd = partial(torch.optim.SGD, lr=0.0)
    model = RecordingSSGAN((1, 8, 8), 10, arch="mlp", unlabeled_weight=unlabeled_weight, entropy_weight=entropy_weight,
                           net_kwargs={"input_noise": 0.0, "hidden_noise": 0.0}, optimizer_d=frozen_sgd,
                           optimizer_g=frozen_sgd, data_init=False, ema_decay=None)
    capture = CaptureBatch()
    datamodule = DigitsDataModule(num_labeled=50, num_val=0, batch_size=64, split_cache_dir=None, shuffle_seed=0)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[capture], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=datamodule)

    fast_loss_d, fast_loss_g = model.recorded_losses
    fast_grads_d = [p.grad for p in model.discriminator.parameters()]
    fast_grads_g = [p.grad for p in model.generator.parameters()]

    labeled_u8, labels, unlabeled_u8 = capture.batch
    torch.set_rng_state(capture.rng_state)  # z is drawn in the same order as in the step: D's, then G's
    z_d, z_g = torch.rand(len(unlabeled_u8), 100), torch.rand(len(unlabeled_u8), 100)
    model.train().requires_grad_(True)
    loss_d, loss_g, grads_d, grads_g = reference_gradients(
        model.discriminator, model.generator, labeled_u8.float() / 255, labels, unlabeled_u8.float() / 255,
        z_d, z_g, unlabeled_weight, entropy_weight)

    torch.testing.assert_close(fast_loss_d, loss_d, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(fast_loss_g, loss_g, rtol=RTOL, atol=ATOL)
    assert len(fast_grads_d) == len(grads_d) and len(fast_grads_g) == len(grads_g)
    for fast, reference in zip(fast_grads_d + fast_grads_g, list(grads_d) + list(grads_g)):
        assert fast is not None
        torch.testing.assert_close(fast, reference, rtol=RTOL, atol=ATOL)
