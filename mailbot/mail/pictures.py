"""Pictures in mail: a photo or scan of a document told apart from a signature logo, cheaply."""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["DOCUMENT_MIN_BYTES", "DOCUMENT_MIN_PIXELS", "is_document_picture", "picture_size"]

# A photo or scan of a page is at least this many pixels on its shorter side; signature logos
# and banners (even wide ones, 1200x400) are not.
DOCUMENT_MIN_PIXELS: Final = 600
# When the size in pixels cannot be read (TIFF, an odd file), a picture this heavy is a photo.
DOCUMENT_MIN_BYTES: Final = 100 * 1024
_HEAD: Final = 512 * 1024  # no header we read lies further in
_JPEG_SOF: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    end = min(len(data), _HEAD)
    while i + 9 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _heif_size(data: bytes) -> tuple[int, int] | None:
    # The "ispe" property box: version/flags, then width and height (ISO/IEC 23008-12).
    at = data.find(b"ispe", 0, _HEAD)
    if at < 4 or at + 16 > len(data):
        return None
    width, height = struct.unpack(">II", data[at + 8 : at + 16])
    return width, height


def picture_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels read from the header of a PNG/JPEG/GIF/BMP/WebP/HEIC, or None."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if data.startswith(b"BM") and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
            return _heif_size(data)
    except struct.error:
        return None
    return None


def is_document_picture(data: bytes) -> bool:
    """Whether a picture is big enough to be a photo or scan of a page (not a logo or icon).

    By its pixel size when the header says it (both sides at least DOCUMENT_MIN_PIXELS),
    else by its weight in bytes.
    """
    size = picture_size(data)
    if size is not None and all(size):
        return min(size) >= DOCUMENT_MIN_PIXELS
    return len(data) > DOCUMENT_MIN_BYTES
