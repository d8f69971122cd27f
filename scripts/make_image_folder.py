"""Writes scikit-learn's digits as a folder of PNG files in the layout ``data=folder`` reads.

    python scripts/make_image_folder.py demo_images              # 50 labeled (5 per class) + 150 unlabeled
    python scripts/make_image_folder.py test_images --test-per-class 10   # the same, plus test/ (100)
    python scripts/make_image_folder.py new_images --unlabeled 0 --labeled-per-class 0 --test-per-class 0 --loose 40

The first folder holds ``labeled/<digit>/`` and ``unlabeled/``, the second also ``test/<digit>/``
(test images give a run its test/acc, and ``ssgan-cli test`` needs them); ``--loose N``
writes N unsorted images straight into the folder (something to run ``ssgan predict`` on), drawn from
the digits test split: never a training image of a folder this script writes, whatever its seed.
Images are drawn without overlap between the parts, seeded by ``--seed``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import non_negative_int, positive_int  # noqa: E402

from ssgan.atomic import unwritable_reason  # noqa: E402
from ssgan.data.sources import ImageData, load_digits_data  # noqa: E402


# digits are 8x8: a side beyond this only blurs them further, at a memory cost that grows with its square
MAX_SIDE = 1024


def image_side(text: str) -> int:
    """argparse type: a side of 1 to ``MAX_SIDE`` pixels."""
    side = positive_int(text)
    if side > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"{side} is above {MAX_SIDE}; give at most {MAX_SIDE}")
    return side


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--labeled-per-class", type=non_negative_int, default=5, help="labeled images per class (default: 5)")
    parser.add_argument("--unlabeled", type=non_negative_int, default=150, help="unlabeled images (default: 150)")
    parser.add_argument("--test-per-class", type=non_negative_int, default=0, help="test images per class, from the digits test split (default: 0, no test/)")
    parser.add_argument("--loose", type=non_negative_int, default=0, help="unsorted images written into OUT itself")
    parser.add_argument("--size", type=image_side, default=28, help="side of the written images in pixels, at most "
                        f"{MAX_SIDE} (default: 28)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the draw (default: 0)")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    problem = unwritable_reason(args.out.parent)
    if problem:
        parser.error(f"{args.out}: {problem}; choose another folder")
    data = load_digits_data()
    problem = asks_for_more_than_digits_has(args, data)
    if problem:
        parser.error(problem)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # written into a hidden folder beside OUT and renamed at the end: a failure leaves no half-written OUT
    staging = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=f".{args.out.name}.partial-"))
    try:
        written = write_images(staging, args, data)
        staging.rename(args.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"wrote {written} PNG files under {args.out}")


def asks_for_more_than_digits_has(args: argparse.Namespace, data: ImageData) -> str | None:
    """Why the counts asked for cannot be drawn from the digits ``data`` (they were cut short without a word), or None."""
    train_per_class = np.bincount(data.train_labels.numpy(), minlength=10)
    test_per_class = np.bincount(data.test_labels.numpy(), minlength=10)
    if args.labeled_per_class + args.unlabeled + args.test_per_class + args.loose == 0:
        return "nothing to write: every count is 0; ask for some images, e.g. --loose 40"
    if args.labeled_per_class > train_per_class.min():
        return f"--labeled-per-class {args.labeled_per_class} is more than the {train_per_class.min()} that every digit has; use at most that"
    left = len(data.train_labels) - 10 * args.labeled_per_class
    if args.unlabeled > left:
        return (f"--unlabeled {args.unlabeled} asks for more images than the {left} left beside the labeled ones; "
                f"ask for at most {left}")
    if args.test_per_class > test_per_class.min():
        return f"--test-per-class {args.test_per_class} is more than the {test_per_class.min()} that every digit has; use at most that"
    left = len(data.test_labels) - 10 * args.test_per_class
    if args.loose > left:
        return (f"--loose {args.loose} asks for more images than the {left} of the digits test split left beside "
                f"test/; ask for at most {left}")
    return None


def write_images(out: Path, args: argparse.Namespace, data: ImageData) -> int:
    """Writes the images drawn from ``data`` under ``out`` and returns how many."""
    rng = np.random.default_rng(args.seed)

    def save(image: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        big = torch.nn.functional.interpolate(image[None].float(), size=(args.size, args.size), mode="bilinear")
        write_png(big[0].round().clamp(0, 255).to(torch.uint8), str(path))

    train_order = rng.permutation(len(data.train_labels))
    labeled = [i for k in range(10) for i in [j for j in train_order if data.train_labels[j] == k][: args.labeled_per_class]]
    rest = [i for i in train_order if i not in set(labeled)]
    for i in labeled:
        save(data.train_images[i], out / "labeled" / str(int(data.train_labels[i])) / f"train_{i:04d}.png")
    for n, i in enumerate(rest[: args.unlabeled]):
        save(data.train_images[i], out / "unlabeled" / f"part{n % 3}" / f"train_{i:04d}.png")
    test_order = rng.permutation(len(data.test_labels))
    tested = [i for k in range(10) for i in [j for j in test_order if data.test_labels[j] == k][: args.test_per_class]]
    for i in tested:
        save(data.test_images[i], out / "test" / str(int(data.test_labels[i])) / f"test_{i:04d}.png")
    # from the test split: a training image of another folder (the same seed's) would be predicted as if new
    untested = [i for i in test_order if i not in set(tested)]
    for n, i in enumerate(untested[: args.loose]):
        save(data.test_images[i], out / f"image_{n:04d}.png")
    return sum(1 for _ in out.rglob("*.png"))


if __name__ == "__main__":
    main()
