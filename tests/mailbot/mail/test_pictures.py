"""A photo of a page told apart from a signature logo by its header (pixels) or its weight."""

from __future__ import annotations

import pytest

from mailbot.mail.pictures import DOCUMENT_MIN_BYTES, is_document_picture, picture_size
from tests.mailbot.mail.pictures_support import bmp, gif, heic, jpeg, png, webp_vp8l, webp_vp8x


@pytest.mark.parametrize("make", [png, jpeg, gif, bmp, webp_vp8x, webp_vp8l, heic])
def test_picture_size_from_the_header(make) -> None:
    assert picture_size(make(1200, 700)) == (1200, 700)


def test_jpeg_size_skips_exif_and_its_thumbnail() -> None:
    thumbnail = jpeg(160, 120)
    photo = jpeg(3024, 4032, sof=0xC2, exif=b"Exif\x00\x00" + thumbnail)
    assert picture_size(photo) == (3024, 4032)


def test_unknown_or_damaged_headers_give_none() -> None:
    assert picture_size(b"") is None
    assert picture_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) is None
    assert picture_size(b"\xff\xd8\xff\xe0\x00") is None
    assert picture_size(b"II*\x00" + b"\x00" * 100) is None  # TIFF: judged by weight


@pytest.mark.parametrize(
    ("size", "document"),
    [
        ((1200, 1600), True),  # a phone's photo of a page
        ((1654, 2339), True),  # an A4 scan at 200 dpi
        ((600, 800), True),
        ((1200, 400), False),  # a wide signature banner
        ((180, 60), False),  # a logo
        ((599, 2000), False),
    ],
)
def test_document_picture_by_pixels(size: tuple[int, int], document: bool) -> None:
    assert is_document_picture(png(*size)) is document
    assert is_document_picture(jpeg(*size)) is document


def test_document_picture_by_weight_when_pixels_are_unknown() -> None:
    tiff_head = b"II*\x00"
    assert is_document_picture(tiff_head + b"\x00" * DOCUMENT_MIN_BYTES)
    assert not is_document_picture(tiff_head + b"\x00" * 1000)
