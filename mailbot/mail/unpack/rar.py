"""RAR archives, read through rarfile with an external tool (unrar, unar, 7z or bsdtar)."""

from __future__ import annotations

import io
import unicodedata

from mailbot.mail.filetypes import FORM_EXTENSIONS, suffix
from mailbot.mail.headers import sanitize_filename
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.base import (
    Member,
    Unpacked,
    bomb,
    check_listing,
    empty,
    encrypted,
    junk_member,
    unreadable,
)

__all__ = ["RarUnpacker"]


class RarUnpacker:
    """.rar files; `available` says whether the context found an extraction tool."""

    name = "rar"
    nests = True

    def __init__(self, available: bool) -> None:
        self.available = available

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """A .rar name, or RAR magic bytes under a name that is not a form."""
        ext = suffix(filename)
        return ext == ".rar" or (ext not in FORM_EXTENSIONS and data.startswith(b"Rar!\x1a\x07"))

    def able_to_run(self) -> bool:
        """Only with a tool: rarfile itself cannot decompress."""
        return self.available

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """Members in order; a damaged member or lying header stops the archive."""
        import rarfile

        try:
            rf = rarfile.RarFile(io.BytesIO(data))
        except Exception:
            yield unreadable(filename)
            return
        with rf:
            try:
                if rf.needs_password():
                    yield encrypted(filename)
                    return
                infos = [i for i in rf.infolist() if not i.is_dir()]
            except Exception:
                yield unreadable(filename)
                return
            listing = ((i.file_size or 0, i.compress_size or 0) for i in infos)
            refused = check_listing(filename, listing, limits)
            if refused is not None:
                yield refused
                return
            budget = limits.max_total_uncompressed
            found = False
            for info in infos:
                member = unicodedata.normalize("NFC", info.filename or "")
                if junk_member(member):
                    continue
                try:
                    with rf.open(info) as fh:
                        content = fh.read(min(budget, info.file_size or 0) + 1)
                except Exception:
                    yield unreadable(filename)
                    return
                if len(content) > (info.file_size or 0) or len(content) > budget:
                    yield bomb(filename, limits)
                    return
                budget -= len(content)
                found = True
                yield Member(sanitize_filename(member), content)
            if not found:
                yield empty(filename)
