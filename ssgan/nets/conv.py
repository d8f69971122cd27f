"""The reference CIFAR-10 nets of openai/improved-gan (32x32 RGB, images in [-1, 1]), and the same nets
for other sizes, such as 28x28 grey (MNIST, Fashion-MNIST)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssgan.errors import UserError
from ssgan.nets.layers import BatchNormBias, WeightNormConv2d, WeightNormConvTranspose2d, WeightNormLinear, leaky_relu


def check_conv_size(image_shape: tuple[int, ...]) -> None:
    """D halves the image twice and ends in a 3x3 valid conv; G doubles a (H/8 or H/4)-sided start: sides >= 12, divisible by 4."""
    _, height, width = image_shape
    if height % 4 or width % 4 or min(height, width) < 12:
        raise UserError(f"the conv net needs images of at least 12x12 with sides divisible by 4, got {height}x{width}; "
                        f"use model.arch=mlp")


def generator_doublings(height: int, width: int) -> int:
    """The reference's three stride-2 doublings when both sides divide by 8 (32x32), else two (28x28 starts at 7x7)."""
    return 3 if height % 8 == 0 and width % 8 == 0 else 2


class ConvDiscriminator(nn.Module):
    """D: dropout, 3x(96 conv), 3x(192 conv), NIN, global pool, weight-normed linear to K.

    ``forward`` returns ``(logits, features)`` with the globally pooled (B, 192) features that the
    reference generator matches.
    """

    input_range = (-1.0, 1.0)

    def __init__(self, image_shape: Sequence[int], num_classes: int, width: int = 96, dropout: float = 0.5, input_dropout: float = 0.2) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        check_conv_size(self.image_shape)
        self.num_classes = num_classes
        channels = self.image_shape[0]
        wide = 2 * width

        def conv(c_in: int, c_out: int, stride: int = 1, padding: int = 1, kernel: int = 3) -> WeightNormConv2d:
            # the reference's weight_norm: the scale g is set by the data init and then fixed
            return WeightNormConv2d(c_in, c_out, kernel, stride=stride, padding=padding, train_scale=False)

        self.blocks = nn.ModuleList([
            nn.Dropout(input_dropout),
            conv(channels, width), conv(width, width), conv(width, width, stride=2),
            nn.Dropout(dropout),
            conv(width, wide), conv(wide, wide), conv(wide, wide, stride=2),
            nn.Dropout(dropout),
            conv(wide, wide, padding=0), conv(wide, wide, kernel=1, padding=0), conv(wide, wide, kernel=1, padding=0),
        ])
        # trained scale, and logits of std 0.1 after the data init (the reference's init_stdv=0.1)
        self.classifier = WeightNormLinear(wide, num_classes, train_scale=True, init_std=0.05, init_target_std=0.1)
        self.feature_dim = wide

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = images
        for block in self.blocks:
            h = block(h) if isinstance(block, nn.Dropout) else leaky_relu(block(h))
        features = h.mean(dim=(2, 3))  # global pool: (B, 2*width)
        return self.classifier(features), features


class ConvGenerator(nn.Module):
    """G: z(100) -> 512x(H/8)x(W/8) -> 256 -> 128 -> C by stride-2 5x5 transposed convs, tanh output.

    When a side is not divisible by 8 (28x28) it starts one doubling later, at 256x(H/4)x(W/4).

    As in the reference: batch norm without gain on each of the dense layer's units, then per channel
    after each transposed conv; a weight-normalised output layer whose data-dependent init (on the
    first batch of z, ``data_init``) gives its pre-tanh outputs the std 0.1.
    """

    data_init = True  # SSGAN initialises this net from a batch of z, as the discriminator from images

    def __init__(self, image_shape: Sequence[int], latent_dim: int = 100, width: int = 128) -> None:
        super().__init__()
        channels, height, side = self.image_shape = tuple(image_shape)
        check_conv_size(self.image_shape)
        self.latent_dim = latent_dim
        doublings = generator_doublings(height, side)
        hidden = (4 * width, 2 * width, width)[-doublings:]  # the reference's 512, 256, 128 at width 128, from the start's on
        self.start = (hidden[0], height >> doublings, side >> doublings)
        start_units = hidden[0] * self.start[1] * self.start[2]
        self.project = nn.Linear(latent_dim, start_units, bias=False)
        nn.init.normal_(self.project.weight, std=0.05)
        self.project_norm = BatchNormBias(start_units)  # per unit, before the reshape

        def up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
            layer = nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1, bias=False)
            nn.init.normal_(layer.weight, std=0.05)
            return layer

        # every doubling but the last (the output layer's): transposed conv, per-channel batch norm, ReLU
        self.body = nn.Sequential(*(module for c_in, c_out in zip(hidden, hidden[1:])
                                    for module in (up(c_in, c_out), BatchNormBias(c_out, spatial=True), nn.ReLU())))
        self.out = WeightNormConvTranspose2d(width, channels, 5, stride=2, padding=2, output_padding=1,
                                             train_scale=True, init_target_std=0.1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project_norm(self.project(z))).view(-1, *self.start)  # (B, 512, H/8, W/8) or (B, 256, H/4, W/4)
        return torch.tanh(self.out(self.body(h)))  # (B, C, H, W)
