"""Zip archives: member names in any code page, encrypted and bomb-shaped archives refused."""

from __future__ import annotations

import io
import unicodedata
import zipfile
import zlib

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

__all__ = ["ZipUnpacker", "zip_member_name"]

_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_READ_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


class ZipUnpacker:
    """.zip files, and zip data declared as such under another name."""

    name = "zip"
    nests = True

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """A .zip name, or zip bytes declared as zip (an .xlsx is a zip too, but a form)."""
        ext = suffix(filename)
        return ext == ".zip" or (
            ext not in FORM_EXTENSIONS
            and data.startswith(b"PK\x03\x04")
            and declared_type in _ZIP_TYPES
        )

    def able_to_run(self) -> bool:
        """The standard library reads zip everywhere."""
        return True

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """Members in order; encrypted members reported once, lying headers stop the archive."""
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            yield unreadable(filename)
            return
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            refused = check_listing(
                filename, ((i.file_size, i.compress_size) for i in infos), limits
            )
            if refused is not None:
                yield refused
                return
            wanted = []
            locked = False
            for info in infos:
                member = zip_member_name(info)
                if junk_member(member):
                    continue
                if info.flag_bits & 0x1:
                    locked = True
                    continue
                wanted.append((info, member))
            if locked:
                yield encrypted(filename)
            if not wanted:
                if not locked:
                    yield empty(filename)
                return
            budget = limits.max_total_uncompressed
            for info, member in wanted:
                try:
                    with zf.open(info) as fh:
                        content = fh.read(min(budget, info.file_size) + 1)
                except _READ_ERRORS:
                    yield unreadable(f"{filename} > {member}")
                    continue
                if len(content) > info.file_size or len(content) > budget:
                    yield bomb(filename, limits)  # the headers lied about the size
                    return
                budget -= len(content)
                yield Member(sanitize_filename(member), content)


_VIETNAMESE_LETTERS = frozenset(
    "ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
)


def _vietnamese_score(text: str) -> int:
    lowered = unicodedata.normalize("NFC", text).lower()
    good = sum(ch in _VIETNAMESE_LETTERS for ch in lowered)
    bad = sum(not (ch.isalnum() or ch in " ._-()[]{},'&+~!@#$%^=") for ch in lowered)
    return good - 3 * bad


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """A member's real name: the Unicode Path extra field, the UTF-8 flag, else a best guess."""
    if info.flag_bits & 0x800:
        return unicodedata.normalize("NFC", info.filename)
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return unicodedata.normalize("NFC", info.filename)
    unicode_path = _unicode_path_extra(info.extra, raw)
    if unicode_path:
        return unicode_path
    if raw.isascii():
        return info.filename
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    candidates = []
    for cs in ("cp1258", "cp1252", "cp437"):
        try:
            candidates.append(unicodedata.normalize("NFC", raw.decode(cs)))
        except UnicodeDecodeError:
            continue
    return max(candidates, key=_vietnamese_score) if candidates else info.filename


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag = int.from_bytes(extra[pos : pos + 2], "little")
        size = int.from_bytes(extra[pos + 2 : pos + 4], "little")
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            if int.from_bytes(body[1:5], "little") != zlib.crc32(raw_name):
                return None  # the name was changed after the field was written
            try:
                return unicodedata.normalize("NFC", body[5:].decode("utf-8"))
            except UnicodeDecodeError:
                return None
    return None
