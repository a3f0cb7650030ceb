"""Outlook's winmail.dat (TNEF): the files a Rich Text mail carries inside it."""

from __future__ import annotations

from mailbot.mail.filetypes import IMAGE_EXTENSIONS, suffix
from mailbot.mail.headers import decode_bytes, sanitize_filename
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.base import Member, Unpacked, trouble

__all__ = ["TnefUnpacker"]

# Pictures Outlook renders next to the real files (icons of the attachments).
_RENDERING_EXTENSIONS = IMAGE_EXTENSIONS | {".wmf", ".emf"}


class TnefUnpacker:
    """winmail.dat / win.dat, or any part declared application/ms-tnef."""

    name = "tnef"
    nests = False

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """By declared type or Outlook's fixed file names."""
        return declared_type == "application/ms-tnef" or filename.casefold() in (
            "winmail.dat",
            "win.dat",
        )

    def able_to_run(self) -> bool:
        """tnefparse is pure Python: always."""
        return True

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """The attached files (rendering pictures dropped when real files sit beside them)."""
        try:
            from tnefparse import TNEF

            tnef = TNEF(data, do_checksum=False)
            found = []
            for att in tnef.attachments:
                att_name = _tnef_name(att)
                att_data = att.data if isinstance(att.data, bytes) else b""
                if att_data:
                    found.append((att_name, att_data))
        except Exception:
            yield trouble("tnef-unreadable", filename)
            return
        for index, (att_name, att_data) in enumerate(found, 1):
            safe = sanitize_filename(att_name, f"Tệp đính kèm {index}")
            if suffix(safe) in _RENDERING_EXTENSIONS and len(found) > 1:
                continue
            yield Member(safe, att_data)


def _tnef_name(att: object) -> str:
    for getter in ("long_filename", "name"):
        try:
            value = getattr(att, getter)
            value = value() if callable(value) else value
        except Exception:
            continue
        if isinstance(value, list):
            value = value[0] if value else ""
        if isinstance(value, bytes):
            value = decode_bytes(value.rstrip(b"\x00"))
        if isinstance(value, str) and value.strip("\x00 "):
            return value.strip("\x00 ")
    raw = getattr(att, "_name", b"")  # the 8.3 title, in the sender's code page
    if isinstance(raw, bytes) and raw.strip(b"\x00 "):
        return decode_bytes(raw.strip(b"\x00 "))
    return ""
