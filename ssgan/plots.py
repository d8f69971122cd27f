"""Figures written next to a run: the test confusion matrix and generator sample grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ssgan.atomic import atomic_write


def save_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str], path: Path) -> None:
    """Writes a (K, K) confusion matrix (rows: true class, columns: predicted) as a PNG with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = confusion.to(torch.long).numpy()
    size = max(4.0, 0.55 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    shown = axes.imshow(counts, cmap="Blues")
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    accuracy = counts.trace() / max(1, counts.sum())
    axes.set_title(f"test confusion matrix (accuracy {100 * accuracy:.2f} %)")
    threshold = counts.max() / 2 if counts.size else 0
    if len(class_names) <= 20:
        for row in range(counts.shape[0]):
            for col in range(counts.shape[1]):
                axes.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize=8,
                          color="white" if counts[row, col] > threshold else "black")
    figure.tight_layout()
    try:
        atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    finally:
        plt.close(figure)


def save_image_grid(images: torch.Tensor, path: Path, rows: int | None = None) -> None:
    """Writes float images (N, C, H, W) in [0, 1] as one PNG grid (``rows`` images per row; default square)."""
    import math

    from torchvision.utils import save_image

    per_row = rows or max(1, math.ceil(math.sqrt(len(images))))
    atomic_write(path, lambda temporary: save_image(images.float().clamp(0, 1), temporary, nrow=per_row,
                                                    padding=2, format="png"))
