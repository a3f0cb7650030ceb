"""Cheap checks that refuse hostile files (zip bombs, XML bombs, absurd archives) before parsing."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from zipfile import ZIP_DEFLATED, ZIP_STORED

from parsers.model import Problem
from parsers.problems import problem

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what one attachment may cost to read."""

    max_file_bytes: int = 20 * MB  # raw attachment size
    max_total_uncompressed: int = 100 * MB  # sum of zip members' declared sizes
    max_member_ratio: float = 100.0  # uncompressed : compressed, for members over ...
    ratio_min_member: int = 1 * MB
    max_members: int = 10_000
    # One part of the package, whatever its name (a sheet named ".dat" is still read as XML).
    max_xml_part: int = 20 * MB
    # Cells met (kept or not) in one row, and in one sheet or document: beyond either the
    # file is refused, so a row of millions of empty cells cannot exhaust memory or time.
    # A legitimate full-width Excel row has 16384 cells.
    max_row_cells: int = 20_000
    max_sheet_cells: int = 1_000_000
    max_name_length: int = 1024
    max_name_depth: int = 32
    max_rows: int = 5000  # rows read per sheet; the rest is ignored
    max_cols: int = 100
    time_limit: float = 30.0  # seconds per file, checked between rows by the readers
    convert_timeout: float = 60.0  # seconds for one LibreOffice conversion


DEFAULT_LIMITS = Limits()

_PROLOG_SCAN = 64 * 1024
_PROLOG_FIRST = 4096
_TOO_LONG = "phần mở đầu XML quá dài"


class TimeLimitExceeded(Exception):
    """A reader ran past Limits.time_limit."""


class LimitExceeded(Exception):
    """A reader met more than Limits allow (cells per row or sheet); carries the problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def cells_exceeded(row_cells: int, total_cells: int, limits: Limits, where: str) -> None:
    """Raise LimitExceeded when a row or the whole sheet/document holds too many cells."""
    if row_cells > limits.max_row_cells:
        raise LimitExceeded(too_large(f"một hàng có hơn {_vn(limits.max_row_cells)} ô", where))
    if total_cells > limits.max_sheet_cells:
        raise LimitExceeded(too_large(f"hơn {_vn(limits.max_sheet_cells)} ô", where))


def _vn(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def too_large(detail: str, location: str | None = None) -> Problem:
    """The `file-too-large` problem with a Vietnamese explanation."""
    return problem("file-too-large", location, detail=detail)


def strange_structure(detail: str, location: str | None = None) -> Problem:
    """An `unreadable-file` problem for a deliberately odd or hostile structure."""
    return problem("unreadable-file", location, variant="strange", detail=detail)


def _bad_name(name: str, limits: Limits) -> bool:
    if "\x00" in name or len(name) > limits.max_name_length:
        return True
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in parts or len(parts) > limits.max_name_depth


def check_zip(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, package: zipfile.ZipFile | None = None
) -> Problem | None:
    """Refuse a zip-based file whose central directory or XML prologs look dangerous.

    `package`: the zip of `data` when the caller has opened it already (and closes it).
    """
    if package is not None:
        return _check_package(package, data, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return problem("unreadable-file", variant="bad-zip", error=type(exc).__name__)
    with zf:
        return _check_package(zf, data, limits)


def _check_package(zf: zipfile.ZipFile, data: bytes, limits: Limits) -> Problem | None:
    """The members' names, sizes and ratios, then every XML prolog."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        return too_large(f"{len(infos)} thành phần bên trong")
    total = 0
    for info in infos:
        if _bad_name(info.filename, limits):
            return strange_structure("tên thành phần bên trong không hợp lệ")
        if info.flag_bits & 0x1:
            return problem("password-protected", variant="zip")
        size, packed = info.file_size, info.compress_size
        total += size
        if total > limits.max_total_uncompressed:
            cap = limits.max_total_uncompressed // MB
            return too_large(f"dung lượng khi giải nén vượt {cap} MB")
        if size > limits.ratio_min_member and (
            packed <= 0 or size / packed > limits.max_member_ratio
        ):
            return too_large("tỉ lệ nén bất thường")
        if size > limits.max_xml_part:  # every member: parts are found by content type
            return too_large(f"phần nội dung {info.filename} quá lớn")
    for info in infos:
        # Any member may be XML whatever its name (content types and relationships
        # name the parts); a binary member passes the prolog check at once.
        if info.file_size > 0:
            refusal = _check_prolog(zf, info, data)
            if refusal is not None:
                return refusal
    return None


def _check_prolog(zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> Problem | None:
    """Refuse XML with a DOCTYPE: entity declarations (bombs, external entities) live there."""
    head = _plain_head(zf, info, data)
    scanned = None
    if head is not None:
        scanned = _scan_prolog(head)
        if len(head) == _PROLOG_FIRST and scanned[1]:  # the prolog runs on: read further
            head = scanned = None
    if head is None:
        head = _opened_head(zf, info)
        if head is None:
            return problem("unreadable-file", variant="damaged")
    verdict = prolog_verdict(head, scanned)
    if verdict is None:
        return None
    return strange_structure(f"{verdict} trong {info.filename}")


def _opened_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    """The member's prolog bytes read through ZipFile.open, or None when it is damaged."""
    try:
        with zf.open(info) as fh:
            # A small first read settles nearly every part (the root starts in the first
            # hundred bytes); only a prolog that runs past it is read on, to _PROLOG_SCAN.
            head = fh.read(_PROLOG_FIRST)
            if len(head) == _PROLOG_FIRST and _scan_prolog(head)[1]:
                head += fh.read(_PROLOG_SCAN - len(head))
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        zlib.error,
    ):
        return None
    return head


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_ODD_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption


def member_region(zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> memoryview | None:
    """The member's stored bytes in `data` behind a sound local header, or None.

    None whenever ZipFile.open could answer differently (an odd header or flag, a name
    that differs from the directory's, a method other than stored or deflated, bytes
    beyond the end), so the caller then takes the ordinary path and its verdict.
    """
    if info.flag_bits & _ODD_FLAGS or info.compress_type not in (ZIP_STORED, ZIP_DEFLATED):
        return None
    start = info.header_offset
    if start < 0 or start + _LOCAL_HEADER.size > len(data):
        return None
    fields = _LOCAL_HEADER.unpack_from(data, start)
    if fields[0] != b"PK\x03\x04":
        return None
    name_len, extra_len = fields[10], fields[11]
    name_at = start + _LOCAL_HEADER.size
    raw_name = data[name_at : name_at + name_len]
    encoding = "utf-8" if fields[3] & 0x800 else getattr(zf, "metadata_encoding", None) or "cp437"
    try:
        if raw_name.decode(encoding) != info.orig_filename:
            return None
    except UnicodeDecodeError:
        return None
    at = name_at + name_len + extra_len
    packed = info.compress_size
    end_offset = getattr(info, "_end_offset", None)  # newer zipfile refuses overlapped entries
    if at + packed > len(data) or (end_offset is not None and at + packed > end_offset):
        return None
    return memoryview(data)[at : at + packed]


def plain_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> bytes | None:
    """A whole member inflated straight from `data` when that gives exactly what
    ZipFile.read would (a complete stream of the declared size and CRC), else None."""
    region = member_region(zf, info, data)
    if region is None:
        return None
    size = info.file_size
    if info.compress_type == ZIP_STORED:
        content = bytes(region) if len(region) == size else None
    else:
        inflate = zlib.decompressobj(-15)
        try:
            content = inflate.decompress(region, size + 1)
        except zlib.error:
            return None
        if not inflate.eof or len(content) != size:
            return None
    if content is None or zlib.crc32(content) != info.CRC:
        return None
    return content


def feed_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    data: bytes,
    consume: Callable[[bytes], bool],
    chunk: int = 64 * 1024,
) -> bool | None:
    """Hand a member's bytes to `consume` a chunk at a time, inflated straight from `data`.

    For a part only scanned, not kept: the chunks stay in the processor's cache, where the
    whole part would not. True as soon as `consume` answers True (the caller then reads the
    member whole, which checks it); False when it saw every byte of a member that inflated
    to its declared size and CRC; None when the member cannot be read so (see
    member_region), is damaged or differs: the caller then reads it whole, with
    ZipFile.read's verdict.
    """
    region = member_region(zf, info, data)
    if region is None:
        return None
    size = info.file_size
    crc = total = 0
    if info.compress_type == ZIP_STORED:
        if len(region) != size:
            return None
        for at in range(0, size, chunk):
            out = bytes(region[at : at + chunk])
            crc = zlib.crc32(out, crc)
            if consume(out):
                return True
        return False if crc == info.CRC else None
    inflate = zlib.decompressobj(-15)
    pending: bytes | memoryview = region
    try:
        while True:
            out = inflate.decompress(pending, chunk)
            pending = inflate.unconsumed_tail
            if out:
                total += len(out)
                if total > size:
                    return None
                crc = zlib.crc32(out, crc)
                if consume(out):
                    return True
            if inflate.eof:
                break
            if not out and not pending:
                return None  # the stream stops short
    except zlib.error:
        return None
    return False if total == size and crc == info.CRC else None


def _plain_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> bytes | None:
    """A member's first _PROLOG_FIRST bytes, inflated straight from `data`, or None.

    Opening every member through ZipFile.open costs more than the check itself. This reads
    the common case (a stored or deflated member behind a sound local header) directly and
    returns None whenever ZipFile.open could answer differently (see member_region; a
    damaged stream, a CRC to verify that does not match), so the caller then takes the
    ordinary path and its verdict.
    """
    region = member_region(zf, info, data)
    if region is None:
        return None
    size, packed = info.file_size, info.compress_size
    if info.compress_type == ZIP_STORED:
        if packed != size:
            return None
        head = bytes(region[:_PROLOG_FIRST])
        ended = size <= _PROLOG_FIRST
    else:
        inflate = zlib.decompressobj(-15)
        try:
            head = inflate.decompress(region, _PROLOG_FIRST)
        except zlib.error:
            return None
        if inflate.eof:
            ended = True
            if len(head) != size:
                return None
        elif len(head) == _PROLOG_FIRST and size > _PROLOG_FIRST:
            ended = False
        else:
            return None
    # ZipFile.open checks the CRC when a read reaches the end of the member.
    if ended and zlib.crc32(head) != info.CRC:
        return None
    return head


def prolog_verdict(head: bytes, scanned: tuple[str | None, bool] | None = None) -> str | None:
    """None when the XML root starts with no DOCTYPE before it; else why it is refused.

    `scanned`: what _scan_prolog(head) gave, when the caller has it already.
    """
    verdict, ran_out = scanned if scanned is not None else _scan_prolog(head)
    if ran_out:
        text_len = len(head)
        if verdict == "open" or text_len >= _PROLOG_SCAN // 2:
            return _TOO_LONG
        return None
    return verdict


def _scan_prolog(head: bytes) -> tuple[str | None, bool]:
    """(verdict, ran out of bytes) for the prolog in `head`; verdict "open" = cut mid-item."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace")
    elif head[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        text = head.decode("utf-16-le" if head[0] == 0x3C else "utf-16-be", "replace")
    else:
        text = head.decode("latin-1")
    text = text.lstrip("\ufeff\xef\xbb\xbf")
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return None, True
        if text.startswith("<?", pos):
            close, step = text.find("?>", pos + 2), 2
        elif text.startswith("<!--", pos):
            close, step = text.find("-->", pos + 4), 3
        elif end - pos < 4 and "<!--".startswith(text[pos:]):
            return None, True  # cut inside "<!--": the next bytes decide
        elif text.startswith("<!", pos):
            return "khai báo DOCTYPE/ENTITY không được phép", False
        elif end - pos < 2 and text[pos] == "<":
            return None, True  # "<" at the very end: the next byte decides
        else:
            return None, False  # the root element (or text, which the parser will reject)
        if close < 0:
            return "open", True
        pos = close + step
