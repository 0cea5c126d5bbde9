"""The one way kpstudio reads images: bytes → cv2.imdecode → HxWx3 uint8 RGB, as the user sees it.

Every part of the app (canvas, training, prediction, export) goes through `decode_image`, so
they all agree on orientation (EXIF applied), colour (gray / alpha / 16-bit / CMYK → 8-bit RGB)
and on which files are refused (empty, truncated, not an image, too many pixels).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from kpstudio.core.limits import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE
from kpstudio.core.regular_files import FileRefused, open_regular, read_regular

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
     ".pbm", ".pgm", ".ppm", ".pnm"}
)  # fmt: skip

# Image files kpstudio does not read although they are images: a folder scan reports them by
# name instead of passing over them. GIF: palette animations that some OpenCV builds decode and
# others do not, and that no training tool reads back; the rest OpenCV cannot decode at all.
UNSUPPORTED_IMAGE_SUFFIXES: dict[str, str] = {
    ".gif": "GIF", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".svg": "SVG",
    ".ico": "ICO", ".psd": "Photoshop", ".jxl": "JPEG XL", ".dng": "raw camera",
    ".cr2": "raw camera", ".nef": "raw camera", ".arw": "raw camera",
}  # fmt: skip
_GIF_MAGIC = (b"GIF87a", b"GIF89a")

# A 24 MP photo is ~24 M pixels, a 30000 x 30000 bomb 900 M; 200 M leaves room for panoramas.
MAX_PIXELS: int = 200_000_000

# Formats we ask Pillow to read the header of: all have a magic number (so random bytes are never
# taken for them) and cv2 decodes them. Anything else goes straight to cv2.
_HEADER_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "PPM")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageReadError(ValueError):
    """An image file cannot be read; the message names the file and says why."""


@dataclass(frozen=True)
class ImageInfo:
    """A readable image file: its size as displayed and the sha256 of its bytes."""

    path: Path
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class _Header:
    format: str
    width: int  # as Pillow reports it (stored size, except TIFF: already oriented)
    height: int
    orientation: int  # EXIF 1..8 that we still have to apply; 1 when nothing to do

    @property
    def display_size(self) -> tuple[int, int]:
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if max(width, height) > MAX_IMAGE_SIDE:
        raise ImageReadError(
            f"{name}: the image is {width} x {height} pixels; kpstudio reads images up to "
            f"{MAX_IMAGE_SIDE:,} pixels a side"
        )
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name}: the image is {width} x {height} = {width * height:,} pixels, more than the "
            f"limit of {max_pixels:,}; kpstudio refuses it (it could be a decompression bomb)"
        )


def _png_exif(fp: BinaryIO) -> tuple[bytes | None, bool]:
    """Walk PNG chunks by seeking: (eXIf payload or None, whether IEND was reached)."""
    fp.seek(len(_PNG_MAGIC))
    exif = None
    while True:
        head = fp.read(8)
        if len(head) < 8:
            return exif, False
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            return exif, True
        if kind == b"eXIf":
            exif = fp.read(length)
            if len(exif) < length:
                return None, False
            fp.seek(4, os.SEEK_CUR)  # CRC
        else:
            fp.seek(length + 4, os.SEEK_CUR)


def _orientation(im: Image.Image, fp: BinaryIO) -> int:
    try:
        if im.format == "PNG":
            # Pillow's PNG getexif() decodes all pixels when eXIf sits after IDAT; walk instead.
            raw, _ = _png_exif(fp)
            if raw is None:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        value = int(exif.get(0x0112, 1))  # 0x0112: Orientation
    except Exception:
        # Pillow's EXIF parser raises assorted types on damaged metadata; a photo whose metadata
        # is broken still shows upright-as-stored in every viewer, so we do the same.
        return 1
    return value if 1 <= value <= 8 else 1


def _read_header(fp: BinaryIO, name: str) -> _Header | None:
    """Parse the header with Pillow's format plugins; None if no plugin recognises it.

    We call the plugins directly rather than `Image.open`, because `Image.open` applies Pillow's
    own global bomb limit (warning above ~89 M pixels, error above ~179 M), which would override
    the caller's `max_pixels`, and changing that limit is global state shared with other code.
    """
    Image.init()
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in _HEADER_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None:
            continue
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "close, but no"
            continue
        fp.seek(0)
        try:
            im = factory(fp, name)
        except (SyntaxError, IndexError, TypeError, ValueError, struct.error, OSError, EOFError):
            continue
        width, height = im.size
        orientation = _orientation(im, fp)
        if im.format == "TIFF":
            # cv2's TIFF decoder applies the Orientation tag itself, even with IMREAD_UNCHANGED
            # (OpenCV PR #14609), and Pillow already reports the oriented size.
            orientation = 1
        return _Header(im.format or fmt, width, height, orientation)
    return None


def _check_complete(data: bytes, name: str) -> None:
    """Refuse truncated JPEG/PNG: some cv2 builds decode them silently, grey-filling the rest."""
    if data.startswith(b"\xff\xd8\xff"):
        i = 2  # walk marker segments to the first scan, stepping over EXIF thumbnails
        while i + 3 < len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            if marker == 0xDA:
                break
            if marker == 0xFF:  # fill byte before a marker
                i += 1
            elif marker == 0x01 or 0xD0 <= marker <= 0xD9:  # stand-alone markers
                i += 2
            else:
                i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        else:
            if i + 3 >= len(data):
                raise ImageReadError(f"{name}: the file is truncated (JPEG image data missing)")
            i = 2  # an odd layout libjpeg may still read: only ask for an end marker somewhere
        # In entropy-coded data 0xFF is always stuffed or a restart marker, so FF D9 is the end.
        if data.find(b"\xff\xd9", i) < 0:
            raise ImageReadError(f"{name}: the file is truncated (JPEG end marker missing)")
    elif data.startswith(_PNG_MAGIC):
        _, complete = _png_exif(io.BytesIO(data))
        if not complete:
            raise ImageReadError(f"{name}: the file is truncated (PNG end chunk IEND missing)")


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        # (v + 128) // 257 == round(v / 257): 65535 → 255, 32896 → 128, unlike v >> 8.
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    # Float (and rare signed/32-bit) data has no fixed range: 0..1 is the float convention,
    # 0..255 is 8-bit data stored as float, anything else is stretched min..max for display.
    f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        f = f * 255.0
    elif not (lo >= 0.0 and hi <= 255.0):
        f = (f - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(f)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _to_rgb8(raw: np.ndarray, name: str) -> np.ndarray:
    raw = raw[:, :, None] if raw.ndim == 2 else raw
    channels = raw.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageReadError(
            f"{name}: the image has {channels} channels; kpstudio reads gray, RGB and RGBA images"
        )
    has_alpha = channels in (2, 4)
    color = _to_uint8(raw[:, :, : channels - has_alpha])
    rgb = cv2.cvtColor(color, cv2.COLOR_GRAY2RGB if color.shape[2] == 1 else cv2.COLOR_BGR2RGB)
    if has_alpha:
        # Composite on white rather than drop alpha: the colour under fully transparent pixels
        # is arbitrary (often black or leftover junk) and would show as noise around cut-outs;
        # white is what most viewers and documents show behind a transparent image.
        alpha = _to_uint8(raw[:, :, channels - 1 :]).astype(np.uint16)
        blended = (rgb.astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255
        rgb = blended.astype(np.uint8)
    return rgb


# Stored pixel grid → displayed grid, per EXIF orientation (6 = rotate 90° clockwise to view).
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: a.swapaxes(0, 1)[::-1],
}


def decode_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to a C-contiguous HxWx3 uint8 RGB array, EXIF orientation applied.

    `name` only labels error messages. Raises ImageReadError for anything unreadable.
    """
    if len(data) == 0:
        raise ImageReadError(f"{name}: the file is empty (0 bytes)")
    if data.startswith(_GIF_MAGIC):
        raise ImageReadError(_unsupported(name, "GIF"))
    _check_complete(data, name)
    header = _read_header(io.BytesIO(data), name)
    if header is not None:
        _check_pixels(name, header.width, header.height, max_pixels)
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageReadError(f"{name}: the image could not be decoded ({exc.err})") from None
    except MemoryError:
        raise ImageReadError(f"{name}: there is not enough memory to decode the image") from None
    if raw is None or raw.size == 0:
        if header is None:
            raise ImageReadError(f"{name}: the file is not an image kpstudio can read")
        raise ImageReadError(
            f"{name}: the file looks like a {header.format} image but could not be decoded "
            "(it is damaged or uses a variant kpstudio cannot read)"
        )
    if header is None:
        # No header parser knew the format, so the limit can only be enforced after decoding.
        _check_pixels(name, raw.shape[1], raw.shape[0], max_pixels)
    rgb = _to_rgb8(raw, name)
    if header is not None and header.orientation in _ORIENT:
        rgb = _ORIENT[header.orientation](rgb)
    return np.ascontiguousarray(rgb)


def _unsupported(name: str, kind: str) -> str:
    return f"{name}: {kind} images are not read by kpstudio; convert it to PNG or JPEG"


def _read_bytes(path: Path) -> bytes:
    try:
        return read_regular(path, MAX_IMAGE_BYTES)
    except FileRefused as exc:  # a named pipe, a device, a folder, missing, too large
        raise ImageReadError(str(exc)) from None


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB in the orientation the user sees."""
    path = Path(path)
    return decode_image(_read_bytes(path), str(path), max_pixels)


def read_image_size(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as displayed, from the file header without decoding the pixels.

    Formats Pillow cannot parse (rare) are decoded in full to learn their size.
    """
    path = Path(path)
    name = str(path)
    try:
        fp = open_regular(path, MAX_IMAGE_BYTES)
    except FileRefused as exc:
        raise ImageReadError(str(exc)) from None
    with fp:
        if fp.seek(0, os.SEEK_END) == 0:
            raise ImageReadError(f"{name}: the file is empty (0 bytes)")
        header = _read_header(fp, name)
        if header is None:
            fp.seek(0)
            shape = decode_image(fp.read(), name, max_pixels).shape
            return shape[1], shape[0]
    _check_pixels(name, header.width, header.height, max_pixels)
    return header.display_size


def scan_image(path: str | os.PathLike) -> ImageInfo:
    """Read a file once: hash its bytes and decode it fully to prove it is readable."""
    path = Path(path)
    data = _read_bytes(path)
    image = decode_image(data, str(path))
    return ImageInfo(path, image.shape[1], image.shape[0], hashlib.sha256(data).hexdigest())


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    """Files under `folder` named as images, readable or not (hidden ones left out)."""
    named_as_image = IMAGE_SUFFIXES | UNSUPPORTED_IMAGE_SUFFIXES.keys()
    found = []
    for root, dirs, files in os.walk(folder):
        # Hidden entries are tool litter (macOS "._x.jpg" resource forks, ".thumbnails").
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        found.extend(
            Path(root, f)
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in named_as_image
        )
    return sorted(found)


def scan_folder(
    folder: str | os.PathLike,
    recursive: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ImageInfo], list[tuple[Path, str]]]:
    """Scan image files under `folder` (by suffix, hidden ones skipped), sorted by path.

    Returns (good, bad): bad holds (path, message) for each file that cannot be read (named
    pipes, devices and formats kpstudio does not read included); one bad file never stops the
    scan. `progress(done, total)` is called after each file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: there is no folder here to scan")
    files = _image_files(folder, recursive)
    good: list[ImageInfo] = []
    bad: list[tuple[Path, str]] = []
    for done, path in enumerate(files, start=1):
        kind = UNSUPPORTED_IMAGE_SUFFIXES.get(path.suffix.lower())
        try:
            if kind is not None:
                raise ImageReadError(_unsupported(str(path), kind))
            good.append(scan_image(path))
        except ImageReadError as exc:
            bad.append((path, str(exc)))
        if progress is not None:
            progress(done, len(files))
    return good, bad
