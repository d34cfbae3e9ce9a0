"""Image checks: hostile uploads are refused with a reason, accepted ones are re-encoded without metadata."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image, PngImagePlugin

from mintplane.media import images

pytestmark = pytest.mark.unit

LIMITS = images.Limits(max_pixels=40_000_000, max_side=16_384, max_total_pixels=100_000_000, max_frames=500)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _gradient(width: int = 120, height: int = 80) -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 2 % 256, y * 3 % 256, (x + y) % 256) for y in range(height) for x in range(width)])
    return image


def _png(**options: object) -> bytes:
    return _save(_gradient(), "PNG", **options)


def _exif_with_gps() -> Image.Exif:
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x010F] = "SecretCamera"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 1.0), 3: "E", 4: (4.0, 53.0, 2.0)})  # GPSInfo
    return exif


def _rejected(data: bytes, claimed: str, limits: images.Limits = LIMITS) -> str:
    with pytest.raises(images.ImageRejected) as error:
        images.validate_image(data, claimed, limits)
    return error.value.message


def test_png_text_chunks_are_stripped_and_pixels_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "shot at 52.37N 4.89E")
    source = _png(pnginfo=info)
    checked = images.validate_image(source, "image/png", LIMITS)
    assert b"52.37N" in source and b"52.37N" not in checked.data
    assert (checked.content_type, checked.width, checked.height, checked.frames) == ("image/png", 120, 80, 1)
    assert Image.open(io.BytesIO(checked.data)).convert("RGB").tobytes() == _gradient().tobytes()


def test_jpeg_exif_and_gps_are_removed_and_the_orientation_is_applied() -> None:
    source = _save(_gradient(), "JPEG", exif=_exif_with_gps(), comment=b"private note")
    checked = images.validate_image(source, "image/jpeg", LIMITS)
    assert b"SecretCamera" in source
    for secret in (b"SecretCamera", b"Exif\x00\x00", b"private note"):
        assert secret not in checked.data
    result = Image.open(io.BytesIO(checked.data))
    assert not result.getexif() and 0x8825 not in result.getexif()
    assert (checked.width, checked.height) == (80, 120)  # the rotation the tag asked for is in the pixels


def test_animated_gif_keeps_frames_durations_and_loop_and_loses_its_comment() -> None:
    frames = [Image.new("RGB", (40, 30), (40 * i, 200 - 30 * i, 10 * i)) for i in range(5)]
    source = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[100, 150, 200, 250, 300],
                   loop=2, comment=b"uploader secret")
    checked = images.validate_image(source, "image/gif", LIMITS)
    assert b"uploader secret" in source and b"uploader secret" not in checked.data
    result = Image.open(io.BytesIO(checked.data))
    durations = []
    for index in range(result.n_frames):
        result.seek(index)
        durations.append(result.info["duration"])
    assert checked.frames == 5 and durations == [100, 150, 200, 250, 300] and result.info["loop"] == 2


def test_animated_webp_keeps_frames_and_loses_exif() -> None:
    frames = [Image.new("RGB", (32, 24), (60 * i, 0, 255 - 60 * i)) for i in range(4)]
    source = _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=120, exif=_exif_with_gps())
    checked = images.validate_image(source, "image/webp", LIMITS)
    assert b"SecretCamera" in source and b"SecretCamera" not in checked.data
    assert checked.frames == 4 and Image.open(io.BytesIO(checked.data)).n_frames == 4


def test_the_type_comes_from_the_bytes_not_the_claim() -> None:
    assert "not the claimed image/jpeg" in _rejected(_png(), "image/jpeg")
    assert "not a PNG, JPEG, GIF or WebP" in _rejected(b"<!doctype html><script>alert(1)</script>", "image/png")
    assert "not a PNG" in _rejected(b"MZ\x90\x00 executable", "image/png")
    assert images.validate_image(_png(), "image/x-png; charset=binary", LIMITS).content_type == "image/png"


def test_polyglots_are_refused() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.js", "alert(document.cookie)")
    assert "polyglot" in _rejected(_png() + archive.getvalue(), "image/png")
    jpeg = _save(_gradient(), "JPEG")
    assert "polyglot" in _rejected(jpeg + b"<html><script>alert(1)</script></html>", "image/jpeg")
    gif = _save(Image.new("P", (4, 4)), "GIF")
    assert "polyglot" in _rejected(gif + b"//<script>", "image/gif")
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "<script>fetch('//evil')</script>")
    assert "markup" in _rejected(_png(pnginfo=info), "image/png")
    assert "markup" in _rejected(_save(_gradient(), "JPEG", comment=b"<?php system($_GET[1]); ?>"), "image/jpeg")


def test_truncated_images_are_refused() -> None:
    png = _png()
    assert "truncated" in _rejected(png[: len(png) // 2], "image/png")
    jpeg = _save(_gradient(), "JPEG")
    assert "truncated" in _rejected(jpeg[:-100], "image/jpeg")
    webp = _save(_gradient(), "WEBP")
    assert "truncated" in _rejected(webp[:-50], "image/webp")
    # A complete container around cut pixel data: only a full decode notices.
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start:start + 4])
    cut = png[start + 8:start + 8 + length // 3]
    chunk = struct.pack(">I", len(cut)) + b"IDAT" + cut + struct.pack(">I", zlib.crc32(b"IDAT" + cut))
    assert "cannot be decoded" in _rejected(png[:start] + chunk + png[start + 12 + length:], "image/png")


def _png_header_only(width: int, height: int) -> bytes:
    """A few hundred bytes of valid PNG that decode to width x height pixels of zeros (a bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding() -> None:
    bomb = _png_header_only(20_000, 20_000)
    assert len(bomb) < 100_000
    assert "pixels" in _rejected(bomb, "image/png")
    small_limits = images.Limits(max_pixels=1_000_000, max_side=16_384, max_total_pixels=10**9, max_frames=500)
    assert "pixels" in _rejected(_save(_gradient(1100, 1000), "PNG"), "image/png", small_limits)
    side_limits = images.Limits(max_pixels=10**9, max_side=1_000, max_total_pixels=10**9, max_frames=500)
    assert "longest side" in _rejected(_save(_gradient(1001, 10), "PNG"), "image/png", side_limits)
    frames = [Image.new("RGB", (64, 64), (i, 0, 0)) for i in range(12)]
    animation = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    few = images.Limits(max_pixels=10**6, max_side=1_000, max_total_pixels=10**9, max_frames=10)
    assert "frames" in _rejected(animation, "image/gif", few)
    total = images.Limits(max_pixels=10**6, max_side=1_000, max_total_pixels=64 * 64 * 10, max_frames=500)
    assert "decodes to" in _rejected(animation, "image/gif", total)


def test_svg_is_refused_whatever_it_is_called() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for claimed in ("image/svg+xml", "image/png"):
        assert "SVG is not accepted" in _rejected(svg, claimed)
    assert "SVG is not accepted" in _rejected(_png(), "image/svg+xml")


def test_thumbnails_fit_the_size_and_never_upscale() -> None:
    data = images.validate_image(_save(_gradient(600, 300), "PNG"), "image/png", LIMITS).data
    webp, width, height = images.thumbnail_webp(data, "image/png", 128, 80)
    assert (width, height) == (128, 64) and Image.open(io.BytesIO(webp)).format == "WEBP"
    _, width, height = images.thumbnail_webp(data, "image/png", 1024, 80)
    assert (width, height) == (600, 300)
