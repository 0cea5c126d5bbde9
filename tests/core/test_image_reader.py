from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import time_limit
from PIL import Image

from kpstudio.core import image_reader
from kpstudio.core.image_reader import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageInfo,
    ImageReadError,
    decode_image,
    read_image,
    read_image_size,
    scan_folder,
    scan_image,
)

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)


def quadrants(h: int = 32, w: int = 64) -> np.ndarray:
    """RGB image with four distinct colours: every flip/rotation of it looks different."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = RED
    a[: h // 2, w // 2 :] = GREEN
    a[h // 2 :, : w // 2] = BLUE
    a[h // 2 :, w // 2 :] = YELLOW
    return a


def write_cv2(path: Path, image: np.ndarray) -> Path:
    ok, enc = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(enc.tobytes())
    return path


def save_pil(path: Path, image: Image.Image, fmt: str | None = None, **kw) -> Path:
    image.save(path, fmt, **kw)
    return path


def assert_error(exc_info, path: Path | str, *words: str) -> None:
    message = str(exc_info.value)
    assert Path(path).name in message
    reason = message.replace(str(path), "")  # tmp_path holds the test's name: look past it
    for word in words:
        assert word in reason, message


def test_png_round_trip_is_exact_rgb(tmp_path):
    src = quadrants()
    path = write_cv2(tmp_path / "q.png", src[:, :, ::-1])  # cv2 writes BGR
    out = read_image(path)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, src)
    assert read_image_size(path) == (64, 32)


def test_gray_becomes_three_equal_channels(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    out = read_image(write_cv2(tmp_path / "g.png", gray))
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


# 25900/257 = 100.8 (truncating gives 100); 51528/257 = 200.5- (a plain >>8 gives 201)
@pytest.mark.parametrize(
    ("value16", "value8"), [(65535, 255), (32896, 128), (0, 0), (25900, 101), (51528, 200)]
)
def test_16bit_gray_png_is_scaled_with_rounding(tmp_path, value16, value8):
    gray = np.full((4, 5), value16, np.uint16)
    out = read_image(write_cv2(tmp_path / "g16.png", gray))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert (out == value8).all()


def test_16bit_colour_png_keeps_channels_and_scales(tmp_path):
    bgr16 = np.zeros((3, 3, 3), np.uint16)
    bgr16[..., 2] = 65535  # red, in cv2's BGR order
    bgr16[..., 1] = 51528
    bgr16[..., 0] = 25900
    out = read_image(write_cv2(tmp_path / "c16.png", bgr16))
    assert tuple(out[1, 1]) == (255, 200, 101)


def test_rgba_png_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 10, 20, 255)  # opaque: colour kept
    rgba[0, 1] = (0, 0, 0, 0)  # transparent black: white, not black
    rgba[0, 2] = (0, 0, 255, 128)  # half-transparent blue over white
    path = save_pil(tmp_path / "a.png", Image.fromarray(rgba, "RGBA"))
    out = read_image(path)
    assert out.shape == (2, 3, 3)
    assert tuple(out[0, 0]) == (200, 10, 20)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert np.abs(out[0, 2].astype(int) - (127, 127, 255)).max() <= 1


def test_palette_png_reads_as_rgb(tmp_path):
    img = Image.new("P", (4, 4))
    img.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    out = read_image(save_pil(tmp_path / "p.png", img))
    assert tuple(out[0, 0]) == (10, 20, 30)


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [((0, 255, 255, 0), RED), ((255, 0, 255, 0), GREEN), ((0, 0, 0, 255), (0, 0, 0)),
     ((0, 0, 0, 0), (255, 255, 255)), ((128, 64, 0, 0), (127, 191, 255))],
)  # fmt: skip
def test_cmyk_jpeg_colours_are_right(tmp_path, cmyk, rgb):
    path = save_pil(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), cmyk), "JPEG", quality=95)
    out = read_image(path)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[8, 8].astype(int) - rgb).max() <= 3, out[8, 8]


# Pillow's transpose of the stored image is the independent reference for what a viewer shows.
EXPECTED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def expected_view(src: np.ndarray, orientation: int) -> np.ndarray:
    method = EXPECTED[orientation]
    return src if method is None else np.asarray(Image.fromarray(src).transpose(method))


def save_with_orientation(path: Path, src: np.ndarray, orientation: int, **kw) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save_pil(path, Image.fromarray(src), exif=exif, **kw)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg_all_eight(tmp_path, orientation):
    src = quadrants()
    path = save_with_orientation(tmp_path / f"o{orientation}.jpg", src, orientation, quality=95)
    out = read_image(path)
    want = expected_view(src, orientation)
    assert out.shape == want.shape
    assert np.abs(out.astype(int) - want).mean() < 6  # JPEG noise only at colour edges
    h, w = out.shape[:2]
    for y in (h // 4, 3 * h // 4):  # block centres decide which way it was turned
        for x in (w // 4, 3 * w // 4):
            assert np.abs(out[y, x].astype(int) - want[y, x]).max() <= 12
    assert read_image_size(path) == (w, h)
    assert out.flags.c_contiguous


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("orientation", [2, 6, 7])
def test_exif_orientation_other_formats(tmp_path, suffix, orientation):
    # cv2 rotates TIFFs itself while it ignores the tag in PNG/WebP: neither may double-rotate.
    src = quadrants()
    kw = {"lossless": True} if suffix == ".webp" else {}
    path = save_with_orientation(tmp_path / f"o{orientation}{suffix}", src, orientation, **kw)
    out = read_image(path)
    np.testing.assert_array_equal(out, expected_view(src, orientation))
    assert read_image_size(path) == (out.shape[1], out.shape[0])


def test_orientation_from_png_exif_after_pixel_data(tmp_path):
    data = write_cv2(tmp_path / "tmp.png", quadrants()[:, :, ::-1]).read_bytes()
    payload = Image.Exif()
    payload[0x0112] = 6
    raw = payload.tobytes()[6:] if payload.tobytes().startswith(b"Exif") else payload.tobytes()
    chunk = struct.pack(">I", len(raw)) + b"eXIf" + raw
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]))
    iend = data.rindex(b"IEND") - 4
    path = tmp_path / "late_exif.png"
    path.write_bytes(data[:iend] + chunk + data[iend:])
    np.testing.assert_array_equal(read_image(path), expected_view(quadrants(), 6))
    assert read_image_size(path) == (32, 64)


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR is patched to claim width x height (header-only bomb)."""
    data = bytearray(write_cv2(path, np.zeros((1, 1), np.uint8)).read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_decompression_bomb_refused_from_header_before_decoding(tmp_path, monkeypatch):
    path = bomb_png(tmp_path / "bomb.png", 30000, 30000)

    def no_decode(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(image_reader.cv2, "imdecode", no_decode)
    with pytest.raises(ImageReadError) as exc:
        read_image(path)
    assert_error(exc, path, "900,000,000", "200,000,000")
    with pytest.raises(ImageReadError) as exc:
        read_image_size(path)
    assert_error(exc, path, "900,000,000")


def test_pixel_limit_is_the_callers_not_pillows(tmp_path):
    # 15000 x 12000 = 180 M pixels: past Pillow's own hard limit (~179 M), inside ours.
    path = bomb_png(tmp_path / "pano.png", 15000, 12000)
    assert read_image_size(path) == (15000, 12000)
    with pytest.raises(ImageReadError) as exc:
        read_image_size(path, max_pixels=100_000_000)
    assert_error(exc, path, "180,000,000")
    assert MAX_PIXELS >= 24_000_000


def test_limit_enforced_after_decode_when_no_header_parser(tmp_path):
    # PFM is decoded by cv2 but not parsed by our header step.
    pfm = b"PF\n64 32\n-1.0\n" + np.ones((32, 64, 3), "<f4").tobytes()
    path = tmp_path / "hdr.pfm"
    path.write_bytes(pfm)
    assert read_image(path).shape == (32, 64, 3)
    with pytest.raises(ImageReadError) as exc:
        read_image(path, max_pixels=1000)
    assert_error(exc, path, "2,048")


def jpeg_bytes() -> bytes:
    ok, enc = cv2.imencode(".jpg", cv2.resize(quadrants(), (256, 256)))
    return enc.tobytes()


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_jpeg_is_refused(tmp_path, keep):
    data = jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageReadError) as exc:
        read_image(path)
    assert_error(exc, path, "truncated")


def test_truncated_camera_jpeg_with_thumbnail_is_refused(tmp_path):
    # Camera JPEGs carry an EXIF thumbnail, a whole JPEG with its own end marker, near the start.
    data = jpeg_bytes()
    thumbnail = jpeg_bytes()
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 8) + b"Exif\x00\x00" + thumbnail
    camera = data[:2] + app1 + data[2:]
    whole = tmp_path / "camera.jpg"
    whole.write_bytes(camera)
    assert read_image(whole).shape == (256, 256, 3)
    cut = tmp_path / "camera_cut.jpg"
    cut.write_bytes(camera[: len(camera) - 200])
    with pytest.raises(ImageReadError) as exc:
        read_image(cut)
    assert_error(exc, cut, "truncated")


def test_jpeg_with_trailing_bytes_after_end_marker_reads(tmp_path):
    path = tmp_path / "trailer.jpg"
    path.write_bytes(jpeg_bytes() + b"camera maker data")
    assert read_image(path).shape == (256, 256, 3)


def test_truncated_png_is_refused(tmp_path):
    data = write_cv2(tmp_path / "ok.png", cv2.resize(quadrants(), (128, 128))).read_bytes()
    for name, cut in [("noend.png", data[:-12]), ("half.png", data[: len(data) // 2])]:
        path = tmp_path / name
        path.write_bytes(cut)
        with pytest.raises(ImageReadError) as exc:
            read_image(path)
        assert_error(exc, path, "truncated")


def test_empty_garbage_missing_and_folder_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "notes.png"
    garbage.write_bytes(b"this is a shopping list, not a picture\n" * 20)
    for path, words in [
        (empty, ["empty"]),
        (garbage, ["not an image kpstudio can read"]),
        (tmp_path / "gone.png", ["does not exist"]),
        (tmp_path, ["folder"]),
    ]:
        for read in (read_image, read_image_size, scan_image):
            with pytest.raises(ImageReadError) as exc:
                read(path)
            assert_error(exc, path, *words)
            assert isinstance(exc.value, ValueError)


def test_decode_image_names_the_given_name():
    with pytest.raises(ImageReadError) as exc:
        decode_image(b"\x00" * 64, "upload from camera 3")
    assert "upload from camera 3" in str(exc.value)


def test_non_ascii_file_name(tmp_path):
    folder = tmp_path / "Ordner_ß"
    folder.mkdir()
    path = write_cv2(folder / "Bild_ü_猫.png", quadrants()[:, :, ::-1])
    np.testing.assert_array_equal(read_image(path), quadrants())
    assert read_image_size(path) == (64, 32)
    good, bad = scan_folder(tmp_path)
    assert [info.path for info in good] == [path] and bad == []


def test_scan_image_hash_and_displayed_size(tmp_path):
    path = save_with_orientation(tmp_path / "turned.jpg", quadrants(), 8)
    info = scan_image(path)
    assert info == ImageInfo(path, 32, 64, hashlib.sha256(path.read_bytes()).hexdigest())


def test_scan_folder_reports_bad_files_and_keeps_going(tmp_path):
    write_cv2(tmp_path / "b.png", quadrants())
    write_cv2(tmp_path / "A.JPG", quadrants())  # suffix match ignores case
    (tmp_path / "c.jpg").write_bytes(jpeg_bytes()[:300])
    (tmp_path / "d.png").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("not an image suffix, not scanned")
    (tmp_path / "._b.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    sub = tmp_path / "sub"
    sub.mkdir()
    write_cv2(sub / "e.bmp", quadrants())
    calls = []

    good, bad = scan_folder(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert [g.path.name for g in good] == ["A.JPG", "b.png", "e.bmp"]
    assert all((g.width, g.height) == (64, 32) for g in good)
    assert [p.name for p, _ in bad] == ["c.jpg", "d.png"]
    assert "c.jpg" in bad[0][1] and "truncated" in bad[0][1]
    assert "d.png" in bad[1][1] and "empty" in bad[1][1]
    assert calls == [(i, 5) for i in range(1, 6)]

    good, bad = scan_folder(tmp_path, recursive=False)
    assert [g.path.name for g in good] == ["A.JPG", "b.png"] and len(bad) == 2


def test_suffixes_are_lower_case_with_dot():
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)


def test_float_tiff_in_unit_range_is_scaled(tmp_path):
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    path = tmp_path / "f.tif"
    ok, enc = cv2.imencode(".tiff", ramp)
    assert ok
    path.write_bytes(enc.tobytes())
    out = read_image(path)
    assert out[0, 0, 0] == 0 and out[3, 3, 0] == 255
    assert out[0, 1, 0] == 17  # 1/15 * 255


def test_decoding_from_memory_matches_file(tmp_path):
    path = save_with_orientation(tmp_path / "m.jpg", quadrants(), 5)
    via_bytes = decode_image(io.BytesIO(path.read_bytes()).getvalue(), "m.jpg")
    np.testing.assert_array_equal(via_bytes, read_image(path))


# --- hostile paths (issue 11): only regular files are read, unread formats are named ---------


def _pipe_and_zero(folder: Path) -> tuple[Path, Path]:
    import os

    fifo = folder / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    zero = folder / "zero.jpg"
    zero.symlink_to("/dev/zero")  # reading it would never end
    return fifo, zero


def test_named_pipes_and_devices_are_refused_by_name(tmp_path):
    for path in _pipe_and_zero(tmp_path):
        for read in (read_image, read_image_size, scan_image):
            with time_limit(20), pytest.raises(ImageReadError, match="not a regular file") as err:
                read(path)
            assert str(path) in str(err.value)


def test_folder_scan_reports_pipes_devices_and_gifs(tmp_path):
    write_cv2(tmp_path / "good.png", quadrants())
    _pipe_and_zero(tmp_path)
    Image.new("RGB", (8, 6)).save(tmp_path / "anim.gif")
    with time_limit(20):
        good, bad = scan_folder(tmp_path)
    assert [i.path.name for i in good] == ["good.png"]
    reasons = {path.name: message for path, message in bad}
    assert set(reasons) == {"pipe.png", "zero.jpg", "anim.gif"}
    assert "named pipe" in reasons["pipe.png"] and "device" in reasons["zero.jpg"]
    assert "GIF" in reasons["anim.gif"] and "anim.gif" in reasons["anim.gif"]


def test_a_gif_named_explicitly_is_refused_whatever_opencv_can_do(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "x.png", format="GIF")  # a GIF behind a .png name
    with pytest.raises(ImageReadError, match="GIF images are not read"):
        read_image(tmp_path / "x.png")


def test_a_side_beyond_the_limit_is_refused_from_the_header(tmp_path):
    from kpstudio.core.limits import MAX_IMAGE_SIDE

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    head = struct.pack(">IIBBBBB", MAX_IMAGE_SIDE + 1, 1, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b"")
    (tmp_path / "strip.png").write_bytes(png)
    with pytest.raises(ImageReadError, match="a side"):
        read_image_size(tmp_path / "strip.png")
