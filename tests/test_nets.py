"""The nets: plain nn.Modules, with the reference shapes, for any input size."""

import ast
from pathlib import Path

import pytest
import torch

from ssgan.nets import MLPDiscriminator, build_discriminator, build_generator, resolve_arch
from ssgan.nets.layers import WeightNormLinear, _WeightNormLinearFunction


@pytest.mark.parametrize(("shape", "arch"), [((1, 8, 8), "mlp"), ((1, 28, 28), "mlp"), ((3, 32, 32), "conv")])
def test_auto_arch_and_shapes(shape, arch) -> None:
    assert resolve_arch("auto", shape) == arch
    discriminator, generator = build_discriminator("auto", shape, 10), build_generator("auto", shape)
    fake = generator(torch.rand(4, 100))
    assert fake.shape == (4, *shape)
    logits, features = discriminator(fake)
    assert logits.shape == (4, 10) and features.shape == (4, discriminator.feature_dim)
    low, high = discriminator.input_range
    assert low <= fake.min() and fake.max() <= high  # the generator's output range is the D's input range


def test_reference_mlp_widths_and_noise() -> None:
    d = MLPDiscriminator((1, 28, 28), 10)
    assert [layer.direction.shape[1] for layer in d.hidden] == [784, 1000, 500, 250, 250]
    assert d.classifier.direction.shape == (10, 250)
    assert d.input_noise.std == 0.3 and d.hidden_noise.std == 0.5
    x = torch.rand(3, 1, 28, 28)
    d.eval()
    assert torch.equal(d(x)[0], d(x)[0])  # no noise in eval mode
    d.train()
    assert not torch.equal(d(x)[0], d(x)[0])  # gaussian noise in training mode


def test_weight_norm_makes_the_output_independent_of_the_direction_scale() -> None:
    d = MLPDiscriminator((1, 8, 8), 10).eval()
    x = torch.rand(5, 1, 8, 8)
    before = d(x)[0]
    with torch.no_grad():
        d.hidden[0].direction.mul_(7.0)
    assert torch.allclose(before, d(x)[0], atol=1e-5)


def plain_weight_norm_linear(x, direction, scale, bias):
    """W = g v / ||v|| written out, for autograd's own backward."""
    weight = direction * (scale / torch.linalg.vector_norm(direction, dim=1)).unsqueeze(1)
    return x @ weight.t() + bias


@pytest.mark.parametrize("train_scale", [True, False])
def test_weight_norm_linear_fused_backward_matches_autograd(train_scale) -> None:
    inputs = (torch.randn(6, 5, dtype=torch.double, requires_grad=True),
              torch.randn(4, 5, dtype=torch.double, requires_grad=True),
              (torch.rand(4, dtype=torch.double) + 0.5).requires_grad_(train_scale),
              torch.randn(4, dtype=torch.double, requires_grad=True))
    assert torch.autograd.gradcheck(_WeightNormLinearFunction.apply, inputs)

    torch.manual_seed(0)
    layer = WeightNormLinear(784, 300, train_scale=train_scale)
    with torch.no_grad():
        layer.scale.uniform_(0.5, 2.0)
        layer.bias.normal_()
    x = torch.rand(50, 784, requires_grad=True)
    out = layer(x)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), [x, *layer.parameters()])
    plain = plain_weight_norm_linear(x, layer.direction, layer.scale, layer.bias)
    plain_grads = torch.autograd.grad((plain * weights).sum(), [x, *layer.parameters()])
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-5)
    for grad, plain_grad in zip(grads, plain_grads):
        # float32 round-off of sums over 50 to 784 terms, on gradients of order 1
        torch.testing.assert_close(grad, plain_grad, rtol=1e-4, atol=1e-5)


def test_weight_norm_linear_under_autocast_keeps_the_plain_ops() -> None:
    layer = WeightNormLinear(20, 8)
    x = torch.rand(4, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.grad_fn.name() == "AddcmulBackward0"  # autocast's dtypes, not the fp32 fused function
    torch.testing.assert_close(out.float(), layer(x), rtol=2e-2, atol=2e-2)


def test_unknown_arch_and_bad_conv_size() -> None:
    with pytest.raises(ValueError, match="unknown net 'resnet'"):
        resolve_arch("resnet", (1, 28, 28))
    for shape in [(1, 8, 8), (1, 30, 30), (3, 28, 26)]:  # too small; sides not divisible by 4
        with pytest.raises(ValueError, match="divisible by 4"):
            build_generator("conv", shape)
        with pytest.raises(ValueError, match="divisible by 4"):
            build_discriminator("conv", shape, 10)


@pytest.mark.parametrize(("shape", "start", "doublings"), [
    ((3, 32, 32), (512, 4, 4), 3),   # the reference CIFAR-10 layout
    ((1, 28, 28), (256, 7, 7), 2),   # MNIST and Fashion-MNIST: one doubling fewer
    ((1, 12, 12), (256, 3, 3), 2),   # the smallest size: D's 3x3 valid conv sees 3x3
    ((3, 24, 20), (256, 6, 5), 2),   # one side not divisible by 8
])
def test_the_conv_nets_take_sides_divisible_by_4(shape, start, doublings) -> None:
    discriminator, generator = build_discriminator("conv", shape, 10), build_generator("conv", shape)
    assert generator.start == start
    transposed = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == doublings and transposed[-1] is generator.out
    fake = generator(torch.rand(4, 100))
    assert fake.shape == (4, *shape)
    logits, features = discriminator(fake)
    assert logits.shape == (4, 10) and features.shape == (4, 192)


def test_the_conv_generator_width_scales_its_channels() -> None:
    # width w gives the reference's 512/256/128 channels as 4w/2w/w; 28x28 starts at 2w x 7 x 7
    generator = build_generator("conv", (1, 28, 28), width=32)
    assert generator.start == (64, 7, 7)
    assert [tuple(m.weight.shape[:2]) for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)] == [(64, 32), (32, 1)]
    assert generator(torch.rand(3, 100)).shape == (3, 1, 28, 28)
    assert build_generator("conv", (3, 32, 32), width=16).start == (64, 4, 4)


def test_nets_do_not_import_lightning() -> None:
    folder = Path(__file__).resolve().parents[1] / "ssgan" / "nets"
    for path in folder.glob("*.py"):
        imported = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert not imported & {"pytorch_lightning", "lightning"}, path


def test_data_dependent_init_standardises_each_layer_on_the_batch() -> None:
    from ssgan.nets.layers import data_dependent_init

    torch.manual_seed(0)
    d = MLPDiscriminator((1, 8, 8), 10, input_noise=0.0, hidden_noise=0.0)
    images = torch.rand(200, 1, 8, 8)
    data_dependent_init(d, images)
    h = images.flatten(1)
    for layer in [*d.hidden, d.classifier]:
        pre = layer(h)  # (B, out)
        assert torch.allclose(pre.mean(0), torch.zeros(pre.shape[1]), atol=1e-4)
        assert torch.allclose(pre.std(0, unbiased=False), torch.ones(pre.shape[1]), atol=1e-3)
        h = torch.relu(pre)
    assert not any(layer.init_pending for layer in d.hidden)


@pytest.mark.parametrize(("arch", "shape"), [("mlp", (1, 28, 28)), ("conv", (3, 32, 32)), ("conv", (1, 28, 28))])
def test_data_dependent_init_on_one_image_keeps_the_net_finite_and_small(arch: str, shape: tuple) -> None:
    from ssgan.nets.layers import data_dependent_init

    torch.manual_seed(0)
    d = build_discriminator(arch, shape, 10)
    data_dependent_init(d, torch.rand(1, *shape))  # no spread to measure: the scales stay (they once became 1e6)
    logits, _ = d.eval()(torch.rand(8, *shape))
    assert logits.abs().max() < 100


def test_weight_norm_linear_takes_any_leading_dims_in_training() -> None:
    layer = WeightNormLinear(20, 8)
    x = torch.rand(2, 3, 20, requires_grad=True)
    out = layer(x)  # (2, 3, 8): the plain ops, as nn.Linear would take it
    out.sum().backward()
    assert out.shape == (2, 3, 8) and x.grad.shape == x.shape and layer.direction.grad.shape == (8, 20)


def test_the_conv_nets_follow_the_reference_cifar_recipe() -> None:
    # openai/improved-gan's train_cifar_feature_matching.py: weight_norm's g fixed in the conv layers
    # and trained in the classifier, whose data init gives logits of std 0.1 (init_stdv=0.1); in G,
    # batch norm per unit of the dense layer, and a weight-normed output layer initialised to std 0.1
    from ssgan.module import SSGAN
    from ssgan.nets.layers import data_dependent_init

    torch.manual_seed(0)
    discriminator = build_discriminator("conv", (3, 32, 32), 10)
    assert [name for name, _ in discriminator.named_parameters() if name.endswith("scale")] == ["classifier.scale"]
    images = torch.rand(64, 3, 32, 32) * 2 - 1
    data_dependent_init(discriminator, images)
    logits, _ = discriminator(images)  # (B, K), with the training pass's dropout, as at init
    assert logits.std(dim=0).mean().item() == pytest.approx(0.1, rel=0.3)  # other dropout masks than at init

    generator = build_generator("conv", (3, 32, 32))
    assert generator.project_norm.norm.num_features == 512 * 4 * 4
    # the reference layout, key by key: checkpoints of the 32x32 conv net made before other sizes were taken still load
    assert {name: tuple(tensor.shape) for name, tensor in generator.state_dict().items() if not name.endswith("batches_tracked")} == {
        "project.weight": (8192, 100), "project_norm.bias": (8192,), "project_norm.norm.running_mean": (8192,),
        "project_norm.norm.running_var": (8192,), "body.0.weight": (512, 256, 5, 5), "body.1.bias": (256,),
        "body.1.norm.running_mean": (256,), "body.1.norm.running_var": (256,), "body.3.weight": (256, 128, 5, 5),
        "body.4.bias": (128,), "body.4.norm.running_mean": (128,), "body.4.norm.running_var": (128,),
        "out.weight": (128, 3, 5, 5), "out.bias": (3,), "out.scale": (3,)}
    model = SSGAN((3, 32, 32), 10, arch="conv")
    before = model.generator.out.scale.detach().clone()
    model.initialize_from_batch(images[:32], images[32:])  # the first training batch: D on images, G on z
    assert not torch.equal(model.generator.out.scale, before)
    z = torch.rand(64, 100)
    with torch.no_grad():
        hidden = torch.relu(model.generator.project_norm(model.generator.project(z))).view(-1, 512, 4, 4)
        pre_tanh = model.generator.out(model.generator.body(hidden))  # (B, 3, 32, 32)
    assert pre_tanh.std(dim=(0, 2, 3)).tolist() == pytest.approx([0.1] * 3, rel=0.2)
