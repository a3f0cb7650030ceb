"""Tar archives and gzip/bzip2/xz data: .tar, .tgz, .tar.gz/.bz2/.xz or one compressed file."""

from __future__ import annotations

import bz2
import io
import lzma
import re
import tarfile
import unicodedata
import zlib
from pathlib import PurePosixPath

from mailbot.mail.filetypes import FORM_EXTENSIONS, sniff_extension, suffix
from mailbot.mail.headers import decode_bytes, sanitize_filename
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.base import (
    Member,
    Unpacked,
    bomb,
    empty,
    junk_member,
    ratio_bad,
    too_many,
    unreadable,
)

__all__ = ["TarUnpacker"]

_EXTENSIONS = frozenset({".tar", ".gz", ".tgz", ".bz2", ".xz", ".tbz2", ".txz"})


class TarUnpacker:
    """.tar, .tar.gz/.tgz/.bz2/.xz, or one compressed file ("Mẫu 01.xlsx.gz")."""

    name = "tar"
    nests = True

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """A tar or compression extension, or gzip/tar bytes under a name that is not a form."""
        ext = suffix(filename)
        return ext in _EXTENSIONS or (
            ext not in FORM_EXTENSIONS and sniff_extension(data, "") in (".gz", ".tar")
        )

    def able_to_run(self) -> bool:
        """The standard library reads these everywhere."""
        return True

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """The single decompressed file, or the regular files of the tar (never links)."""
        limit = limits.max_total_uncompressed
        plain = _decompress(data, limit)
        if plain is None:
            yield unreadable(filename)
            return
        if len(plain) > limit or ratio_bad(len(plain), len(data), limits):
            yield bomb(filename, limits)
            return
        if plain is not data and plain[257:262] != b"ustar" and not _is_old_tar(plain):
            # One compressed file: its name is the archive's without the compression suffix.
            inner = re.sub(r"\.(gz|bz2|xz)$", "", filename, flags=re.I)
            if inner == filename or not suffix(inner):
                inner = f"{PurePosixPath(filename).stem or filename}{sniff_extension(plain, '')}"
            yield Member(sanitize_filename(inner), plain)
            return
        entries: list[tuple[str, bytes]] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tf:
                files = [m for m in tf.getmembers() if m.isreg()]  # never links or devices
                if len(files) > limits.max_members:
                    yield too_many(filename, limits)
                    return
                for member in files:
                    member_name = decode_bytes(member.name.encode("utf-8", "surrogateescape"))
                    member_name = unicodedata.normalize("NFC", member_name)
                    if junk_member(member_name):
                        continue
                    fh = tf.extractfile(member)
                    entries.append((member_name, fh.read() if fh is not None else b""))
        except (tarfile.TarError, OSError, ValueError, EOFError):
            yield unreadable(filename)
            return
        if not entries:
            yield empty(filename)
        for member_name, content in entries:
            yield Member(sanitize_filename(member_name), content)


def _decompress(data: bytes, limit: int) -> bytes | None:
    """gzip/bzip2/xz data inflated to at most limit+1 bytes; plain data as is; None if broken."""
    try:
        if data.startswith(b"\x1f\x8b"):
            out = bytearray()
            rest = data
            while rest.startswith(b"\x1f\x8b") and len(out) <= limit:  # concatenated members
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out += inflater.decompress(rest, limit + 1 - len(out))
                if not inflater.eof:
                    return bytes(out) if len(out) > limit else None  # a bomb, or truncated
                rest = inflater.unused_data
            return bytes(out)
        if data.startswith(b"BZh"):
            unpacker: bz2.BZ2Decompressor | lzma.LZMADecompressor = bz2.BZ2Decompressor()
        elif data.startswith(b"\xfd7zXZ\x00"):
            unpacker = lzma.LZMADecompressor()
        else:
            return data
        plain = unpacker.decompress(data, max_length=limit + 1)
        return plain if unpacker.eof or len(plain) > limit else None
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
        return None


def _is_old_tar(data: bytes) -> bool:
    """A pre-POSIX tar header: a valid octal checksum over the first 512 bytes."""
    if len(data) < 512:
        return False
    try:
        stored = int(data[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(data[:148]) + 32 * 8 + sum(data[156:512])
