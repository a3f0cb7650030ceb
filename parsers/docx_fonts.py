"""Whether a Word styles part can name a legacy Vietnamese font, read in chunks as inflated."""

from __future__ import annotations

_HEAD = 200  # bytes in which a NUL or a byte-order mark shows a UTF-16 part
_TOKEN = b"rFonts"
_TOKEN_STARTS = tuple(_TOKEN[:n] for n in range(1, len(_TOKEN)))


def _names_font(attrs: bytes) -> bool:
    attrs = attrs.lower()
    return b"vn" in attrs or b"&#" in attrs


class LegacyFontScan:
    """Whether a styles part can name a legacy font (.VnTime, VnTime, VNI-Times).

    Style fonts only matter for legacy-encoding detection, and every such name holds "vn"
    in some case inside a w:rFonts element. Parts with none (nearly all; Word's styles.xml
    is ~350 KB) are not parsed. Character references or a UTF-16 part could hide the name
    from this byte scan, so those are parsed.

    Called with the part's bytes in chunks, in order (the same answer whatever the cuts);
    True as soon as the answer is yes.
    """

    def __init__(self) -> None:
        self.head = b""
        self.carry = b""  # the end of the last chunk: a token or a pair cut in two
        self.inside = False  # in an rFonts element whose ">" has not come yet

    def __call__(self, chunk: bytes) -> bool:
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
            if self.head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in self.head:
                return True
        data = self.carry + chunk if self.carry else chunk
        pos = 0
        if self.inside:
            end = data.find(b">")
            if _names_font(data[: end if end >= 0 else len(data)]):
                return True
            if end < 0:
                self.carry = _pair_start(data)
                return False
            self.inside = False
            pos = end
        pos = data.find(_TOKEN, pos)
        while pos >= 0:  # only w:rFonts attributes name fonts; a styles part has a few dozen
            end = data.find(b">", pos)
            if _names_font(data[pos : end if end >= 0 else len(data)]):
                return True
            if end < 0:
                self.inside, self.carry = True, _pair_start(data)
                return False
            pos = data.find(_TOKEN, end)
        # Only a token cut in two is carried over (copying every chunk would cost more).
        tail = data[1 - len(_TOKEN) :]
        self.carry = tail if tail.endswith(_TOKEN_STARTS) else b""
        return False


def _pair_start(data: bytes) -> bytes:
    """The last byte of `data` when it can start a "vn" or "&#" that the next chunk ends."""
    last = data[-1:]
    return last if last in (b"v", b"V", b"&") else b""
