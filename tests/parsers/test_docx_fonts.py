"""The legacy-font scan of a Word styles part: the same answer whatever the chunks."""

from __future__ import annotations

import random

from parsers.docx_fonts import LegacyFontScan


def test_legacy_font_scan_gives_the_same_answer_whatever_the_chunks() -> None:
    """The styles part is scanned in chunks; every cut gives the answer of the whole part."""
    rng = random.Random(3)
    pieces = [
        b'<w:rFonts w:ascii="Times New Roman" w:hAnsi="Arial"/>',
        b'<w:rFonts w:ascii=".VnTime"/>',
        b'<w:rFonts w:hAnsi="VNI-Times"/>',
        b'<w:rFonts w:ascii="&#46;VnTime"/>',
        b'<w:style w:styleId="vn"/>',  # "vn" outside rFonts names no font
        b"<w:rPr><w:b/></w:rPr>",
        b'<w:rFonts w:ascii="Times"',  # cut before its ">"
        b' w:eastAsia="vNx">',
        b"rFonts v",
        b"n>",
        b"\x00",
        b"x" * 300,
    ]
    for _ in range(400):
        part = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12)))
        if rng.random() < 0.1:
            part = rng.choice((b"\xff\xfe", b"\xfe\xff")) + part
        whole = LegacyFontScan()(part)
        scan = LegacyFontScan()
        cuts = sorted(rng.sample(range(1, len(part)), min(len(part) - 1, rng.randrange(1, 8))))
        bounds = [0, *cuts, len(part)]
        chunks = [part[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        assert any(scan(chunk) for chunk in chunks) == whole, part
    assert LegacyFontScan()(b'<w:rFonts w:ascii=".VnTime"/>')
    assert not LegacyFontScan()(b'<w:rFonts w:ascii="Times New Roman"/><w:name w:val="vn"/>')
