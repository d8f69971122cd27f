"""Loss functions of the K+1-class semi-supervised GAN (Salimans et al. 2016, section 5).

The discriminator outputs K logits ``l`` for the real classes. The fake class is an implicit
(K+1)th logit fixed at 0, so with ``Z(x) = sum_k exp(l_k(x))``:

    D(x) = p(real | x) = Z(x) / (Z(x) + 1) = sigmoid(LSE(l(x)))

All functions are pure tensor functions: no module state, no Lightning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supervised_loss(logits_labeled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_supervised = -E_{x,y ~ p_data} log p_model(y | x, y < K+1).

    Given that the image is real, the K+1 softmax reduces to a K-way softmax, so this is the
    ordinary cross-entropy on the K logits.  ``logits_labeled``: (B, K); ``labels``: (B,).
    """
    return F.cross_entropy(logits_labeled, labels)


def unsupervised_loss(logits_unlabeled: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """L_unsupervised = -E_{x ~ p_data} log D(x) - E_{x ~ G} log(1 - D(x)).

    With D(x) = sigmoid(LSE(l)) and log sigmoid(a) = a - softplus(a), this is, as in
    openai/improved-gan::

        0.5 * (-mean(LSE(l_unl)) + mean(softplus(LSE(l_unl))) + mean(softplus(LSE(l_fake))))

    The factor 0.5 averages the real and fake halves.  Inputs: (B_unl, K) and (B_fake, K).
    """
    lse_unlabeled = torch.logsumexp(logits_unlabeled, dim=1)  # (B_unl,)
    lse_fake = torch.logsumexp(logits_fake, dim=1)  # (B_fake,)
    return 0.5 * (
        -lse_unlabeled.mean() + F.softplus(lse_unlabeled).mean() + F.softplus(lse_fake).mean()
    )


def conditional_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H = -E_{x ~ p_data} sum_k p_model(k | x, k < K+1) log p_model(k | x, k < K+1).

    The entropy of the K-way class posterior given that the image is real, averaged over the batch.
    Minimising it on unlabeled images pushes the decision boundaries into low-density regions
    (Grandvalet & Bengio 2005); Dai et al. 2017 ("Good Semi-supervised Learning that Requires a
    Bad GAN") add it to this discriminator loss.  Input: (B, K); output: a scalar in [0, log K].
    """
    log_p = F.log_softmax(logits, dim=1)  # (B, K)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def feature_matching_loss(features_real: torch.Tensor, features_fake: torch.Tensor,
                          distance: str = "squared") -> torch.Tensor:
    """Generator loss by feature matching: || E_x f(x) - E_z f(G(z)) ||^2.

    ``f`` is an intermediate discriminator layer; the squared distance of the batch means is
    averaged over the feature dimension, as in openai/improved-gan's MNIST recipe.
    ``distance="absolute"`` takes the mean absolute difference instead, as its CIFAR-10 recipe does.
    Inputs: (B, F) each.
    """
    difference = features_real.mean(dim=0) - features_fake.mean(dim=0)  # (F,)
    if distance == "squared":
        return difference.pow(2).mean()
    if distance == "absolute":
        return difference.abs().mean()
    raise ValueError(f"unknown feature matching distance '{distance}'; use squared or absolute")


def non_saturating_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Standard non-saturating generator loss: -E_z log D(G(z)).

    With D = sigmoid(LSE(l)): -log D = softplus(-LSE(l)).  Input: (B_fake, K).
    """
    return F.softplus(-torch.logsumexp(logits_fake, dim=1)).mean()


def real_probability(logits: torch.Tensor) -> torch.Tensor:
    """p(real | x) = sigmoid(LSE(l)), the K+1 softmax mass on the K real classes.  (B, K) -> (B,)."""
    return torch.sigmoid(torch.logsumexp(logits, dim=1))
