"""Writes scikit-learn's digits as a folder of PNG files in the layout ``data=folder`` reads.

    python scripts/make_image_folder.py demo_images              # 50 labeled (5 per class) + 150 unlabeled
    python scripts/make_image_folder.py test_images --test-per-class 10   # the same, plus test/ (100)
    python scripts/make_image_folder.py new_images --unlabeled 0 --labeled-per-class 0 --test-per-class 0 --loose 40

The first folder holds ``labeled/<digit>/`` and ``unlabeled/``, the second also ``test/<digit>/``
(test images give a run its test/acc, and ``ssgan-cli test`` needs them); ``--loose N``
writes N unsorted images straight into the folder (something to run ``ssgan predict`` on).
Images are drawn without overlap between the parts, seeded by ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from ssgan.data.sources import load_digits_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--labeled-per-class", type=int, default=5, help="labeled images per class (default: 5)")
    parser.add_argument("--unlabeled", type=int, default=150, help="unlabeled images (default: 150)")
    parser.add_argument("--test-per-class", type=int, default=0, help="test images per class, from the digits test split (default: 0, no test/)")
    parser.add_argument("--loose", type=int, default=0, help="unsorted images written into OUT itself")
    parser.add_argument("--size", type=int, default=28, help="side of the written images in pixels (default: 28)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default: 0)")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    data = load_digits_data()
    rng = np.random.default_rng(args.seed)

    def save(image: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        big = torch.nn.functional.interpolate(image[None].float(), size=(args.size, args.size), mode="bilinear")
        write_png(big[0].round().clamp(0, 255).to(torch.uint8), str(path))

    train_order = rng.permutation(len(data.train_labels))
    labeled = [i for k in range(10) for i in [j for j in train_order if data.train_labels[j] == k][: args.labeled_per_class]]
    rest = [i for i in train_order if i not in set(labeled)]
    for i in labeled:
        save(data.train_images[i], args.out / "labeled" / str(int(data.train_labels[i])) / f"train_{i:04d}.png")
    for n, i in enumerate(rest[: args.unlabeled]):
        save(data.train_images[i], args.out / "unlabeled" / f"part{n % 3}" / f"train_{i:04d}.png")
    for n, i in enumerate(rest[args.unlabeled: args.unlabeled + args.loose]):
        save(data.train_images[i], args.out / f"image_{n:04d}.png")
    test_order = rng.permutation(len(data.test_labels))
    for k in range(10):
        for i in [j for j in test_order if data.test_labels[j] == k][: args.test_per_class]:
            save(data.test_images[i], args.out / "test" / str(k) / f"test_{i:04d}.png")
    written = sum(1 for p in args.out.rglob("*.png"))
    print(f"wrote {written} PNG files under {args.out}")


if __name__ == "__main__":
    main()
