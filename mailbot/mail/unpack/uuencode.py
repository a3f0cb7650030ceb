"""Files uuencoded inside a plain-text body (Outlook Express, The Bat!, old Unix mailers)."""

from __future__ import annotations

import binascii
import re

from mailbot.mail.headers import decode_bytes, sanitize_filename
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.base import Member, Unpacked, trouble

__all__ = ["UuencodeUnpacker"]

_UU_BLOCK = re.compile(
    rb"^begin[ \t]+[0-7]{3,4}[ \t]+([^\r\n]+?)[ \t]*\r?\n(.*?)^end[ \t]*\r?$", re.M | re.S
)


class UuencodeUnpacker:
    """The begin/end blocks of a text body; the body itself is the (unnamed) container."""

    name = "uuencode"
    nests = False

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """A plain-text body that may hold a begin/end block."""
        return declared_type == "text/plain" and b"begin " in data

    def able_to_run(self) -> bool:
        """binascii decodes uuencode everywhere."""
        return True

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """Each decoded block as a file; a damaged block as a trouble named after its file."""
        if b"begin " not in data:
            return
        for m in _UU_BLOCK.finditer(data):
            name = sanitize_filename(decode_bytes(m.group(1)))
            content = _decode_uu_lines(m.group(2))
            if content is None:
                yield trouble("attachment-unreadable", name)
                continue
            yield Member(name, content)


def _decode_uu_lines(block: bytes) -> bytes | None:
    out = []
    for line in block.splitlines():
        line = line.rstrip(b"\r")
        if not line.strip() or line.strip() == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:  # trailing garbage from broken encoders: trust the length byte
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, IndexError):
                return None
    return b"".join(out)
