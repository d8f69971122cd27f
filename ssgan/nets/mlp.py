"""The reference MNIST nets of openai/improved-gan, generalised to any image size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from ssgan.nets.layers import BatchNormBias, GaussianNoise, WeightNormLinear


class MLPDiscriminator(nn.Module):
    """D: input-1000-500-250-250-250-K, ReLU, weight norm, gaussian noise (training only).

    ``forward`` returns ``(logits, features)``: the K class logits (B, K) and the last hidden
    layer (B, 250), before its noise, which the generator matches in feature matching.
    Images are expected in [0, 1].
    """

    input_range = (0.0, 1.0)

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (1000, 500, 250, 250, 250),
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        widths = [math.prod(self.image_shape), *hidden]
        self.input_noise = GaussianNoise(input_noise)
        self.hidden = nn.ModuleList(WeightNormLinear(i, o) for i, o in zip(widths[:-1], widths[1:]))
        self.hidden_noise = GaussianNoise(hidden_noise)
        self.classifier = WeightNormLinear(widths[-1], num_classes, train_scale=True)
        self.feature_dim = widths[-1]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.input_noise(images.flatten(1))  # (B, C*H*W)
        features = h
        for layer in self.hidden:
            features = F.relu(layer(h))
            h = self.hidden_noise(features)
        return self.classifier(h), features


class MLPGenerator(nn.Module):
    """G: z(100)-500-500-image, batch norm and softplus, weight-normed sigmoid output in [0, 1]."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int = 100, hidden: Sequence[int] = (500, 500)) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for out in hidden:
            layers += [nn.Linear(width, out, bias=False), BatchNormBias(out), nn.Softplus()]
            width = out
        layers += [WeightNormLinear(width, math.prod(self.image_shape), train_scale=True, init_std=0.05), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)  # (B, C, H, W)
