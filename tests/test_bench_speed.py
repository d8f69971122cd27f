"""scripts/bench_speed.py runs end to end on a tiny batch, and its GEMM floor counts exactly the MLP's matmuls.

Behaviour only: no timing is asserted (speed figures live in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import bench_speed  # noqa: E402

D_HIDDEN = [1000, 500, 250, 250, 250, 10]  # the reference MNIST discriminator, after its input
G_HIDDEN = [100, 500, 500]  # and generator, before its output


def _pairs(widths: list[int]) -> list[int]:
    return [a * b for a, b in zip(widths[:-1], widths[1:])]


def mlp_iteration_gflop(batch: int, pixels: int = 784) -> float:
    """The matmuls of one iteration (B labeled + B unlabeled + B generated), counted by hand."""
    d, g = _pairs([pixels, *D_HIDDEN]), _pairs([*G_HIDDEN, pixels])
    macs = 0
    # D step: G(z) without grad; D forward over 3B; weight gradients of every D layer; input gradients of all but the first
    macs += batch * sum(g) + 3 * batch * sum(d) + 3 * batch * sum(d) + 3 * batch * sum(d[1:])
    # G step: G(z); D forward over the real and the fake batch (the logits come with the features);
    # input gradients through D's hidden layers (the features skip the classifier); G's weight
    # gradients, and its input gradients but for the first layer's (z needs none)
    macs += batch * sum(g) + 2 * batch * sum(d) + batch * sum(d[:-1]) + batch * sum(g) + batch * sum(g[1:])
    return 2 * macs / 1e9


@pytest.mark.parametrize(("net", "pixels"), [("mlp", 784), ("digits", 64)])  # digits: the digits recipe's 8x8 MLP
def test_bench_speed_writes_a_row_per_setting_and_counts_the_mlp_gemms(tmp_path, capsys, net, pixels) -> None:
    out = tmp_path / "not_yet" / "speed.json"  # a folder the script makes, as in a fresh clone's multirun/
    bench_speed.main(["--nets", net, "--precisions", "32-true", "--iterations", "3", "--warmup", "1",
                      "--batch-size", "20", "--rounds", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["net"] == net and row["precision"] == "32-true"
    for key in ("ours_ms", "bare_ms", "floor_ms"):
        assert row[key] > 0
    assert abs(row["ours_over_bare"] - row["ours_ms"] / row["bare_ms"]) < 1e-9
    gflop = mlp_iteration_gflop(20, pixels)
    assert abs(row["gflop"] - gflop) < 1e-9 * gflop + 1e-12
    printed = capsys.readouterr().out
    assert f"| {net} | 32-true |" in printed and f"wrote {out}" in printed


def test_bench_speed_measures_the_conv_net_on_28x28_grey(tmp_path) -> None:
    out = tmp_path / "speed.json"
    bench_speed.main(["--nets", "conv28", "--precisions", "32-true", "--iterations", "1", "--warmup", "1",
                      "--batch-size", "4", "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert row["net"] == "conv28" and row["ours_ms"] > 0 and row["floor_ms"] > 0
    assert bench_speed.build_model("conv28", []).discriminator.image_shape == (1, 28, 28)  # Fashion-MNIST's shape
    # the convolutions are counted: far more than the 28x28 MLP's matmuls on the same batch
    assert row["gflop"] > 10 * mlp_iteration_gflop(4)


def test_bench_noise_prints_each_way_and_puts_the_noise_layer_back(capsys) -> None:
    import bench_noise

    from ssgan.nets.layers import GaussianNoise

    drawn = GaussianNoise.forward
    bench_noise.main(["--rounds", "1", "--iterations", "2", "--warmup", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "round" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| drawn", "| none drawn (a bound)", "| second thread"]
    assert GaussianNoise.forward is drawn  # the nets draw their noise again after the script


def test_the_bare_loop_computes_the_terms_the_model_overrides_switch_on(monkeypatch) -> None:
    # timed beside ours with model.entropy_weight=1, the bare loop once left the entropy term out
    calls: dict[str, int] = {}
    for name in ("conditional_entropy", "non_saturating_generator_loss", "feature_matching_loss"):
        original = getattr(bench_speed.losses, name)
        monkeypatch.setattr(bench_speed.losses, name,
                            lambda *a, _f=original, _n=name, **k: calls.__setitem__(_n, calls.get(_n, 0) + 1) or _f(*a, **k))
    clipped = []
    monkeypatch.setattr(bench_speed.torch.nn.utils, "clip_grad_norm_", lambda params, value: clipped.append(value))
    bench_speed.bare_loop("mlp", "32-true", bench_speed.torch.device("cpu"), 0, 2, 10,
                          ["model.entropy_weight=1", "model.generator_loss=non_saturating", "model.gradient_clip_val=5"])
    assert calls == {"conditional_entropy": 2, "non_saturating_generator_loss": 2} and clipped == [5, 5, 5, 5]
    calls.clear()
    bench_speed.bare_loop("mlp", "32-true", bench_speed.torch.device("cpu"), 0, 2, 10, [])
    assert calls == {"feature_matching_loss": 2}


def test_bench_speed_refuses_a_bad_device_or_model_setting_in_one_line_before_measuring(tmp_path, capsys) -> None:
    out = tmp_path / "speed.json"
    for arguments, message in (
            (["--device", "foo"], "error: --device foo is not a device ("),
            (["model.bogus=1"], "error: model.bogus=1 does not build the digits net (Could not override 'model.bogus'.)"),
            (["model.unlabeled_weight=abc"], "error: model.unlabeled_weight=abc does not build the digits net (")):
        with pytest.raises(SystemExit) as stopped:  # each was a traceback
            bench_speed.main(["--out", str(out), *arguments, "--nets", "digits"])
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not out.exists()
