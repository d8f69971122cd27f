"""Plain ``nn.Module`` networks (no Lightning import) and a timm-style registry of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ssgan.errors import UserError
from ssgan.nets.conv import ConvDiscriminator, ConvGenerator, check_conv_size
from ssgan.nets.layers import uniform_noise
from ssgan.nets.mlp import MLPDiscriminator, MLPGenerator

ARCHITECTURES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPDiscriminator, MLPGenerator),
    "conv": (ConvDiscriminator, ConvGenerator),
}


def resolve_arch(arch: str, image_shape: Sequence[int]) -> str:
    """``auto`` picks the reference CIFAR conv net for 32x32 RGB images and the MLP otherwise."""
    if arch == "auto":
        return "conv" if tuple(image_shape) == (3, 32, 32) else "mlp"
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown net '{arch}'; use model.arch= one of: auto, {', '.join(ARCHITECTURES)}")
    return arch


def _build(arch: str, image_shape: Sequence[int], which: int, option: str, *args: Any, **kwargs: Any) -> nn.Module:
    arch = resolve_arch(arch, image_shape)
    if arch == "conv":
        check_conv_size(tuple(image_shape))
    net_class = ARCHITECTURES[arch][which]
    try:
        return net_class(image_shape, *args, **kwargs)
    except TypeError as error:  # a keyword the net does not take
        raise UserError(f"{option} does not fit the {arch} net ({error}); see {net_class.__name__}'s arguments") from None


def build_discriminator(arch: str, image_shape: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """Builds the K-logit discriminator/classifier of architecture ``arch``."""
    return _build(arch, image_shape, 0, "model.net_kwargs", num_classes, **kwargs)


def build_generator(arch: str, image_shape: Sequence[int], latent_dim: int = 100, **kwargs: Any) -> nn.Module:
    """Builds the generator of architecture ``arch``, producing images of ``image_shape``."""
    return _build(arch, image_shape, 1, "model.generator_kwargs", latent_dim, **kwargs)


__all__ = [
    "ARCHITECTURES", "ConvDiscriminator", "ConvGenerator", "MLPDiscriminator", "MLPGenerator",
    "build_discriminator", "build_generator", "resolve_arch", "uniform_noise",
]
