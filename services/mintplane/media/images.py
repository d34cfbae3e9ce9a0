"""Image validation and sanitising with Pillow: what an upload must pass before a byte of it is stored.

An uploaded image is pinned under a permanent CID and served from our origin and every IPFS gateway, so
the checks fail closed and the stored bytes are always our own re-encoding, never the client's file:

1. the type is decided from the bytes (magic numbers), and must equal the type the client claimed;
2. the container is walked to its end marker (PNG IEND, JPEG EOI, GIF trailer, RIFF size): bytes after it
   (a ZIP, an HTML page) make a polyglot, refused; markup in metadata segments (a `<script>` in a PNG
   text chunk, a JPEG comment) is refused too;
3. dimensions and frame counts are read from the header and capped *before* decoding (decompression
   bombs), with `Image.MAX_IMAGE_PIXELS` set and Pillow's bomb warning raised as an error as a second net;
4. `verify()` (checksums, structure), then a full decode of every frame: a truncated file fails here
   (`LOAD_TRUNCATED_IMAGES` stays off);
5. re-encoding in the same format without EXIF/XMP/comments/text chunks (GPS, camera serials, editing
   history go), applying the EXIF orientation first so stripping it does not rotate the picture;
   animations keep every frame with its duration, loop count and disposal;
6. the output is walked again and must carry no metadata segment, or the upload fails (fail closed).

SVG is refused, not sanitised: it is an XML document that can run script (`<script>`, `on*=` handlers,
`javascript:` URLs, `<foreignObject>` HTML, external references); a sanitiser is an allow-list parser
whose every miss becomes a permanent, content-addressed XSS on our origin, and Pillow cannot decode SVG
for thumbnails anyway. Creators export PNG or WebP instead; vector artwork can live on-chain or as a
token's `animation_url` later, behind a sandboxed origin.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence

from mintplane.common.errors import InvalidArgument

PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
SVG = "image/svg+xml"
IMAGE_TYPES: tuple[str, ...] = (PNG, JPEG, GIF, WEBP)
_PILLOW_FORMAT = {PNG: "PNG", JPEG: "JPEG", GIF: "GIF", WEBP: "WEBP"}
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG, "image/svg": SVG}
# Markup a browser or an interpreter would act on, looked for in metadata segments (never in compressed
# pixel data, where short byte strings occur by chance).
_MARKUP = re.compile(rb"<\s*(script|html|svg|iframe|object|embed|body|\?php)|javascript:|<!doctype", re.I)
# Metadata worth nothing to a viewer and often private; the re-encoded output must have none.
_PNG_METADATA = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_WEBP_METADATA = {b"EXIF", b"XMP "}
_INFO_DROPPED = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "dpi", "adobe", "adobe_transform")


class ImageRejected(InvalidArgument):
    """The upload is not an image we store; the message says why in terms the uploader can act on."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int  # per frame
    max_side: int
    max_total_pixels: int  # summed over frames
    max_frames: int


@dataclass(frozen=True)
class CheckedImage:
    data: bytes  # the re-encoded image: what is stored, hashed and pinned
    content_type: str
    width: int
    height: int
    frames: int


def normalise_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves announce, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and b"<svg" in head:
        return SVG
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if head.startswith((b"{", b"[")):
        return "application/json"
    if data.startswith(b"PK\x03\x04"):
        return "application/zip"
    return None


# --- container walks: (end offset of the image, metadata segments) ---------------------------------------


def _png_segments(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    pos, chunks = 8, list[tuple[bytes, bytes]]()
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            return pos, chunks
    raise ImageRejected("the PNG is truncated (no IEND chunk)")


def _jpeg_segments(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    pos, segments = 2, list[tuple[bytes, bytes]]()
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ImageRejected("the JPEG is malformed (marker expected)")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos, segments
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue
        if pos + 2 > len(data):
            break
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn, COM
            segments.append((bytes([marker]), data[pos + 2:pos + length]))
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= len(data):
                    raise ImageRejected("the JPEG is truncated (no end-of-image marker)")
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos += 2
                    continue
                break
    raise ImageRejected("the JPEG is truncated (no end-of-image marker)")


def _gif_sub_blocks(data: bytes, pos: int) -> tuple[int, bytes]:
    parts: list[bytes] = []
    while pos < len(data):
        size = data[pos]
        pos += 1
        if size == 0:
            return pos, b"".join(parts)
        parts.append(data[pos:pos + size])
        pos += size
    raise ImageRejected("the GIF is truncated")


def _gif_segments(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    if len(data) < 13:
        raise ImageRejected("the GIF is truncated")
    pos, segments = 13, list[tuple[bytes, bytes]]()
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 0x07) + 1)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return pos + 1, segments
        if block == 0x21:  # extension: label, sub-blocks
            if pos + 2 > len(data):
                break
            label = data[pos + 1]
            pos, body = _gif_sub_blocks(data, pos + 2)
            if label in (0xFE, 0xFF):  # comment, application (XMP lives there)
                segments.append((bytes([label]), body))
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW size, sub-blocks
            if pos + 10 > len(data):
                break
            packed = data[pos + 9]
            pos += 10 + ((3 << ((packed & 0x07) + 1)) if packed & 0x80 else 0) + 1
            pos, _ = _gif_sub_blocks(data, pos)
        else:
            raise ImageRejected("the GIF is malformed (unknown block)")
    raise ImageRejected("the GIF is truncated (no trailer)")


def _webp_segments(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    (size,) = struct.unpack("<I", data[4:8])
    end = 8 + size
    if end > len(data):
        raise ImageRejected("the WebP is truncated")
    pos, chunks = 12, list[tuple[bytes, bytes]]()
    while pos + 8 <= end:
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return end, chunks


_WALKS = {PNG: _png_segments, JPEG: _jpeg_segments, GIF: _gif_segments, WEBP: _webp_segments}


def _metadata(content_type: str, segments: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Segment kinds that carry metadata (what the re-encoding must have removed)."""
    if content_type == PNG:
        return [kind for kind, _ in segments if kind in _PNG_METADATA]
    if content_type == JPEG:
        return [kind for kind, body in segments
                if kind == b"\xfe" or (kind == b"\xe1" and body[:4] in (b"Exif", b"http"))]
    if content_type == GIF:
        return [kind for kind, body in segments if kind == b"\xfe" or (kind == b"\xff" and body[:8] == b"XMP Data")]
    return [kind for kind, _ in segments if kind in _WEBP_METADATA]


def check_container(data: bytes, content_type: str) -> list[tuple[bytes, bytes]]:
    """Walk the container to its end; refuse trailing bytes and markup hidden in metadata."""
    end, segments = _WALKS[content_type](data)
    if end != len(data):
        extra = sniff(data[end:]) or "unknown data"
        raise ImageRejected(
            f"the file carries {len(data) - end} bytes after the end of the image ({extra}): "
            "polyglot files are not accepted"
        )
    for _kind, body in segments:
        if _MARKUP.search(body):
            raise ImageRejected("the image's metadata contains markup or script: not accepted")
    return segments


# --- decoding and re-encoding ----------------------------------------------------------------------------


def _open(data: bytes, content_type: str) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[content_type]])


def _check_size(image: Image.Image, limits: Limits) -> int:
    width, height = image.size
    frames = int(getattr(image, "n_frames", 1))
    if width < 1 or height < 1:
        raise ImageRejected("the image has no pixels")
    if max(width, height) > limits.max_side:
        raise ImageRejected(f"the image is {width}x{height}; the longest side may be {limits.max_side} pixels")
    if width * height > limits.max_pixels:
        raise ImageRejected(
            f"the image is {width}x{height} ({width * height:,} pixels); at most {limits.max_pixels:,} are accepted"
        )
    if frames > limits.max_frames:
        raise ImageRejected(f"the animation has {frames} frames; at most {limits.max_frames} are accepted")
    if width * height * frames > limits.max_total_pixels:
        raise ImageRejected(
            f"the animation decodes to {width * height * frames:,} pixels; at most {limits.max_total_pixels:,}"
        )
    return frames


def _decode_all(image: Image.Image) -> None:
    for frame in ImageSequence.Iterator(image):
        frame.load()


def _clean(image: Image.Image) -> None:
    for key in _INFO_DROPPED:
        image.info.pop(key, None)


def _frames(image: Image.Image) -> Iterator[Image.Image]:
    for frame in ImageSequence.Iterator(image):
        _clean(frame)
        yield frame.copy()


def _reencode(image: Image.Image, content_type: str, frames: int, source: bytes) -> bytes:
    out = io.BytesIO()
    pillow_format = _PILLOW_FORMAT[content_type]
    icc = image.info.get("icc_profile")  # colour, not privacy: kept so colours stay right
    common: dict[str, object] = {"exif": b"", "xmp": b""}
    if icc:
        common["icc_profile"] = icc
    if content_type == JPEG:
        orientation = image.getexif().get(0x0112, 1)
        if orientation != 1:  # bake the rotation in before the tag that carries it goes
            rotated = ImageOps.exif_transpose(image)
            _clean(rotated)
            rotated.save(out, "JPEG", quality=95, **common)
        else:
            _clean(image)
            image.save(out, "JPEG", quality="keep", subsampling="keep", **common)
        return out.getvalue()
    if content_type == PNG and frames == 1:
        _clean(image)
        image.save(out, "PNG", **common)
        return out.getvalue()
    options: dict[str, object] = dict(common)
    if content_type == WEBP:
        lossless = b"VP8L" in source[12:64]
        options.update(lossless=lossless, quality=100 if lossless else 90, method=4)
    if frames > 1:
        sequence = list(_frames(image))
        durations = [int(frame.info.get("duration", 100)) for frame in sequence]
        options.update(save_all=True, append_images=sequence[1:], duration=durations,
                       loop=int(image.info.get("loop", 0)))
        if content_type == GIF:
            options["disposal"] = [int(getattr(frame, "disposal_method", 0)) for frame in sequence]
        sequence[0].save(out, pillow_format, **options)
    else:
        _clean(image)
        image.save(out, pillow_format, **options)
    return out.getvalue()


def validate_image(data: bytes, claimed_type: str, limits: Limits) -> CheckedImage:
    """Check an uploaded image and return its sanitised re-encoding, or raise ImageRejected."""
    claimed = normalise_type(claimed_type)
    actual = sniff(data)
    if actual == SVG or claimed == SVG:
        raise ImageRejected("SVG is not accepted (it can carry script); upload PNG or WebP instead")
    if actual not in IMAGE_TYPES:
        looks = actual or "unknown data"
        raise ImageRejected(f"the content is not a PNG, JPEG, GIF or WebP image (it looks like {looks})")
    if claimed != actual:
        raise ImageRejected(f"the content is {actual}, not the claimed {claimed or 'type'}")
    check_container(data, actual)
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with _open(data, actual) as probe:
                frames = _check_size(probe, limits)
                probe.verify()
            with _open(data, actual) as image:
                _decode_all(image)
                image.seek(0)
                encoded = _reencode(image, actual, frames, data)
            with _open(encoded, actual) as result:  # our own output must decode, at its final size
                width, height = result.size
                frames = int(getattr(result, "n_frames", 1))
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"the image decodes to too many pixels: {exc}") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            # Pillow reports truncation and corruption as these; the text says which, never a path.
            raise ImageRejected(f"the image cannot be decoded ({exc})") from exc
    leftovers = _metadata(actual, check_container(encoded, actual))
    if leftovers:  # fail closed: never store metadata the uploader expected gone
        raise ImageRejected("the image's metadata could not be removed")
    return CheckedImage(data=encoded, content_type=actual, width=width, height=height, frames=frames)


def first_frame(data: bytes, content_type: str) -> Image.Image:
    """The first frame of already-checked bytes, decoded once for every thumbnail made from it."""
    with _open(data, content_type) as image:
        image.seek(0)
        return image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")


def thumbnail_from(frame: Image.Image, size: int, quality: int) -> tuple[bytes, int, int]:
    """A WebP whose longest side is `size` (never upscaled)."""
    small = frame.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue(), small.width, small.height


def thumbnail_webp(data: bytes, content_type: str, size: int, quality: int) -> tuple[bytes, int, int]:
    return thumbnail_from(first_frame(data, content_type), size, quality)
