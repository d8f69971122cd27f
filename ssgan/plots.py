"""Figures written next to a run: the test confusion matrix and generator sample grids."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ssgan.atomic import atomic_write
from ssgan.data.images import printable

log = logging.getLogger(__name__)


# Above this many classes the figure keeps its size and drops the class names and counts: at 0.55
# inch a class, 200 classes would take a 113-inch figure, minutes and gigabytes to draw
MAX_LABELED_CLASSES = 50


def save_confusion_matrix(confusion: torch.Tensor, class_names: Sequence[str], path: Path) -> None:
    """Writes a (K, K) confusion matrix (rows: true class, columns: predicted) as a PNG with counts
    (class names up to ``MAX_LABELED_CLASSES`` classes, counts up to 20)."""
    from matplotlib.figure import Figure  # no pyplot: the host process's backend and figures stay as they are

    counts = confusion.to(torch.long).numpy()
    labeled = len(class_names) <= MAX_LABELED_CLASSES
    size = max(4.0, 0.55 * min(len(class_names), MAX_LABELED_CLASSES) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    shown = axes.imshow(counts, cmap="Blues")
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    if labeled:
        ticks = range(len(class_names))
        names = [printable(name) for name in class_names]  # matplotlib refuses a folder name that is not UTF-8
        axes.set_xticks(ticks, names, rotation=45, ha="right")
        axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted class" if labeled else "predicted class (index)")
    axes.set_ylabel("true class" if labeled else "true class (index)")
    accuracy = counts.trace() / max(1, counts.sum())
    axes.set_title(f"test confusion matrix (accuracy {100 * accuracy:.2f} %)")
    threshold = counts.max() / 2 if counts.size else 0
    if len(class_names) <= 20:
        for row in range(counts.shape[0]):
            for col in range(counts.shape[1]):
                axes.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize=8,
                          color="white" if counts[row, col] > threshold else "black")
    # matplotlib warns once per missing glyph (a CJK class name: a warning of several lines per character)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.tight_layout()
        atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    missing = sorted({chr(int(match.group(1))) for warning in caught
                      for match in [re.search(r"Glyph (\d+) .*missing from", str(warning.message))] if match})
    for warning in caught:
        if "missing from" not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if missing:
        log.warning("%s: the plot's font has no glyph for %s in the class names; they show as boxes there",
                    path.name, ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))


def grid_row_length(count: int) -> int:
    """Images per row of a grid of ``count`` images: as near a square as whole rows allow."""
    import math

    return max(1, math.ceil(math.sqrt(count)))


def save_image_grid(images: torch.Tensor, path: Path, rows: int | None = None) -> None:
    """Writes float images (N, C, H, W) in [0, 1] as one PNG grid (``rows`` images per row; default square)."""
    from torchvision.utils import save_image

    if len(images) == 0:
        raise ValueError("save_image_grid needs at least one image")
    per_row = rows or grid_row_length(len(images))
    atomic_write(path, lambda temporary: save_image(images.float().clamp(0, 1), temporary, nrow=per_row,
                                                    padding=2, format="png"))
