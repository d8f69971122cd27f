"""The losses against hand-computed values, and the implicit fake logit."""

import math

import torch

from ssgan import losses


def softplus(a: float) -> float:
    return math.log1p(math.exp(a))


def test_supervised_loss_is_cross_entropy_over_the_k_real_logits() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    expected = 0.5 * ((math.log(math.exp(2) + 2) - 2) + (math.log(1 + math.e + math.exp(3)) - 1))
    assert math.isclose(losses.supervised_loss(logits, labels).item(), expected, rel_tol=1e-6)


def test_unsupervised_loss_matches_hand_computation() -> None:
    unl = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    fake = torch.tensor([[-1.0, -1.0]])
    lse_unl = [math.log(2.0), math.log(math.e + math.exp(2))]
    lse_fake = math.log(2 * math.exp(-1))
    expected = 0.5 * (-sum(lse_unl) / 2 + sum(softplus(a) for a in lse_unl) / 2 + softplus(lse_fake))
    assert math.isclose(losses.unsupervised_loss(unl, fake).item(), expected, rel_tol=1e-6)


def test_unsupervised_loss_is_the_gan_loss_with_a_zero_fake_logit() -> None:
    # Append the implicit (K+1)th logit, fixed at 0, and compute -log p(real) - log p(fake) directly.
    torch.manual_seed(0)
    unl, fake = torch.randn(7, 4), torch.randn(5, 4)
    zero = lambda x: torch.cat([x, torch.zeros(len(x), 1)], dim=1)  # noqa: E731  (B, K+1)
    log_p_unl = torch.log_softmax(zero(unl), dim=1)
    log_p_fake = torch.log_softmax(zero(fake), dim=1)
    p_real_unl = torch.logsumexp(log_p_unl[:, :4], dim=1)  # log sum_k<K p_k
    expected = 0.5 * (-p_real_unl.mean() - log_p_fake[:, 4].mean())
    assert torch.allclose(losses.unsupervised_loss(unl, fake), expected, atol=1e-6)
    # D(x) = sigmoid(LSE(l)) is the softmax mass on the K real classes.
    assert torch.allclose(losses.real_probability(unl), p_real_unl.exp(), atol=1e-6)


def test_unsupervised_loss_rewards_confident_real_and_low_fake_logits() -> None:
    confident = losses.unsupervised_loss(torch.full((4, 3), 6.0), torch.full((4, 3), -6.0))
    confused = losses.unsupervised_loss(torch.full((4, 3), -6.0), torch.full((4, 3), 6.0))
    assert confident.item() < 0.01 < 5 < confused.item()


def test_conditional_entropy_matches_hand_computation() -> None:
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # posteriors (1/2, 1/2) and (3/4, 1/4)
    expected = 0.5 * (math.log(2) - (0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert math.isclose(losses.conditional_entropy(logits).item(), expected, rel_tol=1e-6)


def test_conditional_entropy_ignores_the_fake_logit_and_falls_with_confidence() -> None:
    # A shift of all K logits moves p(real) but not the class posterior given real.
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.allclose(losses.conditional_entropy(logits), losses.conditional_entropy(logits + 5.0))
    uniform, confident = losses.conditional_entropy(torch.zeros(1, 4)), losses.conditional_entropy(torch.tensor([[20.0, 0, 0, 0]]))
    assert math.isclose(uniform.item(), math.log(4), rel_tol=1e-6) and confident.item() < 1e-6


def test_feature_matching_loss_is_mean_squared_distance_of_batch_means() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # mean (1, 0)
    assert math.isclose(losses.feature_matching_loss(real, fake).item(), (1 + 9) / 2)
    assert losses.feature_matching_loss(real, real[[1, 0]]).item() == 0.0  # order in the batch does not matter


def test_feature_matching_loss_absolute_is_mean_absolute_distance_of_batch_means() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 6.0], [2.0, 6.0]])  # mean (1, 6): differences +1 and -3
    assert math.isclose(losses.feature_matching_loss(real, fake, distance="absolute").item(), (1 + 3) / 2)


def test_feature_matching_loss_names_the_distances_it_knows() -> None:
    import pytest

    with pytest.raises(ValueError, match="use squared or absolute"):
        losses.feature_matching_loss(torch.zeros(2, 3), torch.zeros(2, 3), distance="l1")


def test_non_saturating_generator_loss() -> None:
    fake = torch.tensor([[0.0, 0.0]])  # LSE = log 2, D = 2/3
    assert math.isclose(losses.non_saturating_generator_loss(fake).item(), -math.log(2 / 3), rel_tol=1e-6)
