"""Reading image files into uint8 tensors of one fixed shape (the user's folders, ``ssgan predict``)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssgan.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".bmp", ".webp", ".tif", ".tiff", ".gif",  # a GIF: its first frame
                  ".avif", ".pgm", ".ppm", ".pbm", ".pnm", ".tga", ".pcx")
# image formats a folder may hold that ssgan does not read (Pillow cannot, or not as one picture): passed over,
# with a warning, so that a phone's HEIC photos among its JPEGs do not disappear without a word
UNREAD_IMAGE_SUFFIXES = (".heic", ".heif", ".jxl", ".ico", ".icns", ".psd", ".svg", ".dng", ".cr2", ".cr3", ".nef",
                         ".arw", ".raw", ".jp2", ".j2k")


def printable(text: str) -> str:
    """``text`` with the bytes of a name that is not valid UTF-8 written as escapes: a folder named
    ``cls_`` and the byte 0xE9, which Python reads as ``"cls_\\udce9"``, shows as ``cls_\\xe9``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name's byte gave
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_image_file(path: Path) -> bool:
    """An image by its name, not hidden; a symbolic link whose target is gone counts too, so that it is
    reported as unreadable, not dropped without a word."""
    return ((path.is_file() or (path.is_symlink() and not path.exists()))
            and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."))


# Folders that photo tools and file systems fill with thumbnails and metadata, never the user's images
HIDDEN_FOLDERS = ("@eaDir", "__MACOSX", "$RECYCLE.BIN")


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and its subfolders if ``recursive``, except hidden ones such as
    ``.ipynb_checkpoints/`` and thumbnail folders such as Synology's ``@eaDir/``), sorted by path.

    Subfolders that are symbolic links are followed (each real folder once, so a link loop ends)."""
    if not recursive:
        names = list(folder.iterdir())
        _warn_of_unread_formats(folder, names)
        return sorted(p for p in names if is_image_file(p))
    found, visited, passed_over = [], set(), []

    def unlisted(error: OSError) -> None:  # a subfolder that cannot be listed: its images would go without a word
        log.warning("could not list %s (%s): its images are left out", printable(str(error.filename)),
                    error.strerror or type(error).__name__)

    for top, subfolders, names in os.walk(folder, followlinks=True, onerror=unlisted):
        real = os.path.realpath(top)
        if real in visited:  # a link back up the tree, or a second link to the same folder
            subfolders[:] = []
            continue
        visited.add(real)
        # sorted: a folder reached by two paths (a link to it) is kept under the first in name order, not
        # in the file system's listing order, which differs between disks and would move the split
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name not in HIDDEN_FOLDERS)
        found += [path for path in (Path(top) / name for name in names) if is_image_file(path)]
        passed_over += [Path(top) / name for name in names]
    _warn_of_unread_formats(folder, passed_over)
    return sorted(found)


def _warn_of_unread_formats(folder: Path, paths: Sequence[Path]) -> None:
    """One warning for the files under ``folder`` in an image format that ssgan passes over, counted by suffix."""
    unread = Counter(path.suffix.lower() for path in paths
                     if path.suffix.lower() in UNREAD_IMAGE_SUFFIXES and not path.name.startswith("."))
    if unread:
        counts = ", ".join(f"{count} {suffix}" for suffix, count in sorted(unread.items()))
        log.warning("passed over %d image(s) under %s in formats ssgan does not read (%s); convert them to PNG or JPEG "
                    "to use them", sum(unread.values()), printable(str(folder)), counts)


def class_folder_names(names: Sequence[str]) -> list[str]:
    """The folder of each class in a sample folder (``ssgan sample`` writes them, ``data.synthetic_labeled_dir``
    reads them): its name with "/" as "_", or ``class_<k>`` for a name that is no folder name
    ("", ".", ".."); a name that two classes would share gets ``_<k>`` after it, so their samples never mix."""
    wanted = [name.replace("/", "_").replace("\0", "_") for name in names]
    wanted = [name if name not in ("", ".", "..") else f"class_{k}" for k, name in enumerate(wanted)]
    return [name if wanted.count(name) == 1 else f"{name}_{k}" for k, name in enumerate(wanted)]


def class_folders(folder: Path) -> list[Path]:
    """The class folders under ``folder``, sorted: not hidden ones, nor the NAS and archive clutter of
    ``HIDDEN_FOLDERS``."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in HIDDEN_FOLDERS)


@contextlib.contextmanager
def _large_images_quiet() -> Iterator[None]:
    """A large photo (Pillow warns from 89 million pixels, in two lines of its own) is read as any other; one of more
    than twice that still raises ``DecompressionBombError``, and is reported as unreadable."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def read_image(path: Path, image_shape: Sequence[int]) -> torch.Tensor:
    """One image file as uint8 (C, H, W): grey (C = 1) or RGB (C = 3), resized to (H, W) if needed.

    The image is turned upright as its EXIF orientation says (phone photos), and 16-bit grey
    images (PNG mode ``I;16`` or ``I``) are scaled to 8 bits (``value / 257``), not clipped, as are 32-bit
    integer ones (TIFF mode ``I``) but those whose values all lie in 0..255, which hold 8-bit values and are
    kept as they are; 32-bit float images (TIFF mode ``F``) in [0, 1] are scaled by 255, others clipped to 0..255.
    Transparent pixels are shown on white.
    Raises ``OSError`` or ``ValueError`` for a file that is not a readable image (Pillow's format plugins raise
    others too, such as ``struct.error`` or ``TypeError`` for a damaged header), and
    ``PIL.Image.DecompressionBombError`` for one too large to decode safely.
    """
    from PIL import Image

    channels, height, width = image_shape
    if channels not in (1, 3):
        raise UserError(f"images must have 1 (grey) or 3 (RGB) channels, not {channels}; set data.channels=1 or 3")
    with _large_images_quiet(), Image.open(path) as image:
        image.load()  # decodes now, so a truncated file fails here
        # read before upright(), whose turned copy has no format or tags: a 32-bit sample, not PNG's 16 bits
        thirty_two_bit = image.mode == "I" and image.format == "TIFF" and tuple(image.tag_v2.get(258, ())) == (32,)
        image = upright(image)
        if image.mode.startswith("I;16") or image.mode == "I":
            # PIL's convert("L") clips 16-bit values at 255 (a black-and-white image): scale them instead
            wide = np.asarray(image, dtype=np.float64)  # (H, W)
            eight_bit_values = thirty_two_bit and wide.size and wide.min() >= 0 and wide.max() <= 255
            scale = 1.0 if eight_bit_values else 257.0  # 8-bit values in a 32-bit file would turn black at / 257
            grey = Image.fromarray(np.clip(np.rint(wide / scale), 0, 255).astype(np.uint8))
            transparent = image.info.get("transparency")
            if isinstance(transparent, int):  # the 16-bit value of transparent pixels: its mask, before scaling
                alpha = Image.fromarray(np.where(wide == transparent, 0, 255).astype(np.uint8))
                grey = Image.merge("LA", (grey, alpha))
            image = grey
        if image.mode == "F":
            # PIL's convert("L") truncates 32-bit float values to 0..255, which turns an image stored in [0, 1] (the
            # float convention of scientific TIFFs) black: scale such an image by 255, clip any other to 0..255
            floats = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)  # (H, W)
            if floats.size and floats.max() <= 1.0:
                floats = floats * 255.0
            image = Image.fromarray(np.clip(np.rint(floats), 0, 255).astype(np.uint8))
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            # convert() drops alpha and keeps the colour stored under transparent pixels (often black,
            # which blanks a dark icon): show the image on white, as image viewers do
            image = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
        if image.mode not in ("L", "RGB", "1", "P", "RGBA") and channels == 1:
            image = image.convert("RGB")  # e.g. CIELab or HSV, which Pillow converts to RGB only, not to grey
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.array(image, dtype=np.uint8)  # (H, W) or (H, W, 3); a writable copy
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pixels))


# EXIF orientation (tag 0x0112) -> the turn or mirror that shows the picture as it was taken
_ORIENTATION_TURNS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                      7: "TRANSVERSE", 8: "ROTATE_90"}


def upright(image: Any) -> Any:
    """``image`` turned as its EXIF orientation says (phone photos are stored sideways).

    Only the orientation tag is read: Pillow's ``ImageOps.exif_transpose`` also writes the whole EXIF
    back, and fails on a tag it cannot encode (a camera's foreign or damaged entry) although the
    pixels are fine. An EXIF block that cannot be parsed at all leaves the image as stored.
    """
    from PIL import Image

    try:
        orientation = image.getexif().get(0x0112)
    except Exception:  # Pillow's EXIF parser raises many kinds on a damaged block; the pixels may still be good
        return image
    turn = _ORIENTATION_TURNS.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(getattr(Image.Transpose, turn)) if turn else image


def read_images(paths: Sequence[Path], image_shape: Sequence[int],
                unopened: list[Path] | None = None) -> tuple[torch.Tensor, list[int], list[Path]]:
    """Decodes ``paths`` into one uint8 (N, C, H, W) tensor.

    A file that cannot be read is logged by path and skipped. Returns the images, the positions
    (in ``paths``) of the images kept, and the skipped paths. ``unopened``, if given, receives the skipped
    paths that the file system refused (no permission, a read error), which a later reading may not.
    """
    # filled in place: a list of images stacked at the end would hold the data set twice at its peak
    images = torch.empty(len(paths), *image_shape, dtype=torch.uint8)  # (N, C, H, W)
    kept, skipped = [], []
    for position, path in enumerate(paths):
        try:
            images[len(kept)] = read_image(path, image_shape)
        except Exception as error:  # corrupt, foreign or huge files: Pillow's plugins raise many kinds on a bad header
            if isinstance(error, (UserError, MemoryError)):
                raise
            log.warning("skipped unreadable image %s (%s)", printable(str(path)),
                        printable(" ".join(str(error).split())) or type(error).__name__)
            skipped.append(path)
            # a link whose target is gone stays skipped, so the cache may keep its absence; a refused read may pass later
            dangling = path.is_symlink() and not path.exists()
            if unopened is not None and isinstance(error, OSError) and error.errno is not None and not dangling:
                unopened.append(path)
            continue
        kept.append(position)
    # a copy (the data set twice, for a moment) only when many files were skipped: a few leave some unused rows
    kept_images = images[:len(kept)]
    return (kept_images.clone() if len(skipped) > len(paths) // 8 else kept_images), kept, skipped
