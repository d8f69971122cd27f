"""Building blocks shared by the reference nets: weight-normalised layers and gaussian noise."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise to its input in training mode only (Lasagne's GaussianNoiseLayer)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x.add(torch.randn_like(x), alpha=self.std)  # one pass fewer than x + std * randn

    def extra_repr(self) -> str:
        return f"std={self.std}"


class WeightNormLinear(nn.Module):
    """Dense layer with weight normalisation, W = g * v / ||v|| (Salimans & Kingma 2016).

    As in openai/improved-gan, the scale ``g`` is fixed at 1 unless ``train_scale``; the
    normalisation is applied to the (B, out) output rather than to the (out, in) weight, which is
    the same product and costs less for the batch sizes used here.
    """

    def __init__(self, in_features: int, out_features: int, train_scale: bool = False, init_std: float = 0.1,
                 init_target_std: float = 1.0) -> None:
        super().__init__()
        self.init_pending = False
        self.init_target_std = init_target_std  # the pre-activations' std after the data-dependent init
        self.direction = nn.Parameter(torch.randn(out_features, in_features) * init_std)  # v: (out, in)
        self.bias = nn.Parameter(torch.zeros(out_features))
        scale = torch.ones(out_features)
        if train_scale:
            self.scale = nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.init_pending:
            _data_dependent_init(self, x @ self.direction.t() * self._norm_scale(), dims=(0,))
        # The fused backward serves training on (B, in) batches outside autocast. Autocast picks
        # each op's dtype, and inference and export (tracing, ONNX) need plain ops: those get the
        # same product unfused.
        if (x.dim() == 2 and torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type)
                and not torch.jit.is_tracing()):
            return _WeightNormLinearFunction.apply(x, self.direction, self.scale, self.bias)  # (B, out)
        return torch.addcmul(self.bias, x @ self.direction.t(), self._norm_scale())  # (B, out)

    def _norm_scale(self) -> torch.Tensor:
        """g / ||v|| per output unit, (out,)."""
        return self.scale / torch.linalg.vector_norm(self.direction, dim=1)


class _WeightNormLinearFunction(torch.autograd.Function):
    """y = (x v^T) * s + b with s = g / ||v|| (per output row), and a backward pass that fuses the norm's terms.

    Autograd's own backward of the plain expression adds the gradient through ||v|| to the matmul's
    gradient in three separate passes over the (out, in) weight (divide, multiply, add), each
    allocating a new weight-sized tensor. Here it is one pass, folded into the matmul:

        dL/du = dL/dy * s                        u = x v^T, (B, out)
        dL/ds = sum_B dL/dy * u                  (out,)
        dL/dv = (dL/du)^T x - (dL/ds * s / ||v||^2) v      (out, in): one pass after the matmul
        dL/dg = dL/ds / ||v||,   dL/db = sum_B dL/dy,   dL/dx = dL/du v
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        inverse_norm = torch.linalg.vector_norm(direction, dim=1).reciprocal()  # 1 / ||v||, (out,)
        norm_scale = scale * inverse_norm  # s, (out,)
        projected = x @ direction.t()  # u, (B, out)
        ctx.save_for_backward(x, direction, projected, inverse_norm, norm_scale)
        return torch.addcmul(bias, projected, norm_scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        x, direction, projected, inverse_norm, norm_scale = ctx.saved_tensors
        need_x, need_direction, need_scale, need_bias = ctx.needs_input_grad
        grad_projected = grad_output * norm_scale  # dL/du, (B, out)
        grad_x = grad_projected @ direction if need_x else None  # (B, in)
        grad_direction = grad_scale = grad_bias = None
        if need_direction or need_scale:
            grad_norm_scale = (grad_output * projected).sum(dim=0)  # dL/ds, (out,)
            if need_scale:
                grad_scale = grad_norm_scale * inverse_norm
            if need_direction:
                coefficient = -grad_norm_scale * norm_scale * inverse_norm.square()  # (out,)
                grad_direction = (grad_projected.t() @ x).addcmul_(direction, coefficient.unsqueeze(1))  # (out, in)
        if need_bias:
            grad_bias = grad_output.sum(dim=0)
        return grad_x, grad_direction, grad_scale, grad_bias


def _setup_weight_norm(layer: nn.Module, train_scale: bool, init_std: float, init_target_std: float) -> None:
    """A weight-normalised conv layer's parameters: v ~ N(0, init_std), zero bias, and g = 1, a
    parameter if ``train_scale`` else a buffer (set only by the data-dependent init)."""
    layer.init_pending = False
    layer.init_target_std = init_target_std
    nn.init.normal_(layer.weight, std=init_std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    scale = torch.ones(layer.out_channels)
    if train_scale:
        layer.scale = nn.Parameter(scale)
    else:
        layer.register_buffer("scale", scale)


class WeightNormConv2d(nn.Conv2d):
    """2-D convolution with a weight-normalised kernel, W = g * v / ||v|| per output channel.

    As in openai/improved-gan's ``weight_norm``, ``g`` is fixed (set only by the data-dependent init)
    unless ``train_scale``; the init gives the pre-activations the std ``init_target_std``.
    """

    def __init__(self, *args, train_scale: bool = False, init_std: float = 0.05, init_target_std: float = 1.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _setup_weight_norm(self, train_scale, init_std, init_target_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.init_pending:
            _data_dependent_init(self, self._conv_forward(x, self._normalized_weight(), None), dims=(0, 2, 3))
        return self._conv_forward(x, self._normalized_weight(), self.bias)

    def _normalized_weight(self) -> torch.Tensor:
        norm = torch.linalg.vector_norm(self.weight.flatten(1), dim=1)  # (C_out,)
        return self.weight * (self.scale / norm).view(-1, 1, 1, 1)


class WeightNormConvTranspose2d(nn.ConvTranspose2d):
    """Transposed 2-D convolution with a weight-normalised kernel, W = g * v / ||v|| per output channel
    (the reference CIFAR-10 generator's output layer: ``g`` trained, data init to std ``init_target_std``)."""

    def __init__(self, *args, train_scale: bool = True, init_std: float = 0.05, init_target_std: float = 1.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _setup_weight_norm(self, train_scale, init_std, init_target_std)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if self.init_pending:
            pre = F.conv_transpose2d(x, self._normalized_weight(), None, self.stride, self.padding,
                                     self.output_padding, self.groups, self.dilation)
            _data_dependent_init(self, pre, dims=(0, 2, 3))
        return F.conv_transpose2d(x, self._normalized_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def _normalized_weight(self) -> torch.Tensor:
        norm = torch.linalg.vector_norm(self.weight, dim=(0, 2, 3))  # (C_out,): the kernel of each output channel
        return self.weight * (self.scale / norm).view(1, -1, 1, 1)


@torch.no_grad()
def _data_dependent_init(layer: nn.Module, pre_activation: torch.Tensor, dims: tuple[int, ...]) -> None:
    """Sets scale and bias so that this batch's pre-activations have zero mean and the layer's
    ``init_target_std`` (default 1) per unit.

    The data-dependent initialisation of Salimans & Kingma 2016, as openai/improved-gan applies it
    (its ``init_stdv``): g <- g * target / std, b <- -mean * target / std.
    """
    target = getattr(layer, "init_target_std", 1.0)
    mean = pre_activation.mean(dim=dims)  # (out,)
    std = (pre_activation - mean.view(1, -1, *([1] * (pre_activation.dim() - 2)))).pow(2).mean(dim=dims).sqrt()
    # a unit that does not vary over the batch (one image, constant images) says nothing of its spread:
    # its scale stays, where target / std would blow it up by ~1e6 and the net with it
    constant = std < 1e-6  # (out,)
    std = std.clamp_min(1e-6)
    layer.scale.copy_(torch.where(constant, layer.scale, layer.scale * target / std))
    if layer.bias is not None:
        layer.bias.copy_(torch.where(constant, -mean, -mean * target / std))
    layer.init_pending = False


@torch.no_grad()
def data_dependent_init(net: nn.Module, images: torch.Tensor) -> None:
    """Initialises every weight-normalised layer of ``net`` from one forward pass over ``images`` (for a
    generator: over a batch of z).

    Layers are initialised in order, each on the output of the already initialised layers before it.
    """
    layers = [m for m in net.modules() if isinstance(m, (WeightNormLinear, WeightNormConv2d, WeightNormConvTranspose2d))]
    for layer in layers:
        layer.init_pending = True
    net.forward(images)  # not net(images): a compiled net would compile this one-off pass too
    for layer in layers:  # a layer the forward pass did not reach stays as it was
        layer.init_pending = False


class BatchNormBias(nn.Module):
    """Batch normalisation without a learned gain, plus a learned bias (Lasagne ``batch_norm(g=None)``)."""

    def __init__(self, num_features: int, spatial: bool = False) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        self.norm = norm(num_features, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.spatial = spatial

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.view(1, -1, 1, 1) if self.spatial else self.bias
        return self.norm(x) + bias


def uniform_noise(batch_size: int, latent_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The reference's latent prior, z ~ U(0, 1)^latent_dim.  Returns (B, latent_dim)."""
    return torch.rand(batch_size, latent_dim, device=device)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """The reference's lrelu, slope 0.2."""
    return F.leaky_relu(x, 0.2)
