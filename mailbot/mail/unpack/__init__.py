"""Container readers behind one protocol: zip, rar, tar (gz/bz2/xz), TNEF, S/MIME, uuencode."""

from __future__ import annotations

from mailbot.mail.unpack.base import Member, Trouble, Unpacker
from mailbot.mail.unpack.rar import RarUnpacker
from mailbot.mail.unpack.smime import SmimeUnpacker
from mailbot.mail.unpack.tar import TarUnpacker
from mailbot.mail.unpack.tnef import TnefUnpacker
from mailbot.mail.unpack.uuencode import UuencodeUnpacker
from mailbot.mail.unpack.zip import ZipUnpacker

__all__ = [
    "Member",
    "SmimeUnpacker",
    "Trouble",
    "Unpacker",
    "UuencodeUnpacker",
    "file_unpackers",
]


def file_unpackers(rar: bool) -> tuple[Unpacker, ...]:
    """The readers tried, in order, on every attached file; `rar`: a RAR tool is available."""
    return (TnefUnpacker(), ZipUnpacker(), RarUnpacker(rar), TarUnpacker())
