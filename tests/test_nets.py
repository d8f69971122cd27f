"""The nets: plain nn.Modules, with the reference shapes, for any input size."""

import ast
from pathlib import Path

import pytest
import torch

from ssgan.nets import MLPDiscriminator, build_discriminator, build_generator, resolve_arch


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


def test_unknown_arch_and_bad_conv_size() -> None:
    with pytest.raises(ValueError, match="unknown net 'resnet'"):
        resolve_arch("resnet", (1, 28, 28))
    with pytest.raises(ValueError, match="divisible by 8"):
        build_generator("conv", (1, 28, 28))


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
