"""What kind of file a part or member is: known extensions, content types and magic bytes."""

from __future__ import annotations

import io
import mimetypes
import zipfile
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "FORM_EXTENSIONS",
    "IGNORED_NAMES",
    "IMAGE_EXTENSIONS",
    "SNIFFED_KEEP",
    "TYPE_EXTENSIONS",
    "content_type_for",
    "sniff_extension",
    "suffix",
]

# Extensions of files that can hold a form (or that we must at least name in the receipt).
FORM_EXTENSIONS = frozenset(
    {".xlsx", ".xlsm", ".xls", ".docx", ".doc", ".ods", ".odt", ".pdf", ".csv", ".rtf"}
)
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".webp"}
)
ARCHIVE_EXTENSIONS = frozenset({".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
# Files that are never a submission: OS junk and detached signatures (Office lock files: "~$").
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "smime.p7s"})

# Declared content types and the extension they stand for.
TYPE_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
        "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
        "application/vnd.ms-excel": ".xls",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
        "application/msword": ".doc",
        "application/vnd.oasis.opendocument.spreadsheet": ".ods",
        "application/vnd.oasis.opendocument.text": ".odt",
        "application/pdf": ".pdf",
        "text/csv": ".csv",
        "application/rtf": ".rtf",
        "text/rtf": ".rtf",
        "application/zip": ".zip",
        "application/x-zip-compressed": ".zip",
        "application/x-rar-compressed": ".rar",
        "application/vnd.rar": ".rar",
        "application/x-7z-compressed": ".7z",
        "application/x-tar": ".tar",
        "application/gzip": ".gz",
        "application/x-gzip": ".gz",
        "application/x-compressed-tar": ".tgz",
        # Samsung phones (Hancom Office) and Kingsoft WPS label Office files with their own types.
        "application/haansoftxlsx": ".xlsx",
        "application/haansoftdocx": ".docx",
        "application/haansoftxls": ".xls",
        "application/haansoftdoc": ".doc",
        "application/kswps": ".doc",
        "application/kset": ".xls",
        "application/excel": ".xls",
        "application/x-excel": ".xls",
        "application/x-msexcel": ".xls",
        "application/vnd.ms-word": ".doc",
    }
)
SNIFFED_KEEP = FORM_EXTENSIONS | ARCHIVE_EXTENSIONS | {".eml"}


def suffix(name: str) -> str:
    """The lower-case extension of a file name, with its dot ("" when none)."""
    # As PurePosixPath(name).suffix, without building a path: the last component that is
    # neither empty nor ".", its extension when the dot neither starts nor ends it.
    base = next((p for p in reversed(name.split("/")) if p and p != "."), "")
    dot = base.rfind(".")
    return base[dot:].lower() if 0 < dot < len(base) - 1 else ""


def sniff_extension(data: bytes, content_type: str) -> str:
    """An extension for a nameless part: by content type, else by the bytes themselves."""
    if content_type in TYPE_EXTENSIONS:
        return TYPE_EXTENSIONS[content_type]
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return ".zip"
        if "xl/workbook.xml" in names:
            return ".xlsx"
        if "word/document.xml" in names:
            return ".docx"
        if "mimetype" in names:
            return ".ods"
        return ".zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        if b"W\x00o\x00r\x00k\x00b\x00o\x00o\x00k" in data[:1_000_000]:
            return ".xls"
        if b"W\x00o\x00r\x00d\x00D\x00o\x00c" in data[:1_000_000]:
            return ".doc"
        return ".xls"
    if data.startswith(b"%PDF"):
        return ".pdf"
    if data.startswith(b"{\\rtf"):
        return ".rtf"
    if data.startswith(b"Rar!\x1a\x07"):
        return ".rar"
    if data.startswith(b"7z\xbc\xaf\x27\x1c"):
        return ".7z"
    if data.startswith(b"\x1f\x8b"):
        return ".gz"
    if data[257:262] == b"ustar":
        return ".tar"
    if data.startswith((b"From: ", b"Received: ", b"Return-Path: ", b"MIME-Version: ")):
        return ".eml"
    return mimetypes.guess_extension(content_type) or ".bin"


def content_type_for(name: str, declared: str = "application/octet-stream") -> str:
    guessed = mimetypes.guess_type(name, strict=False)[0]
    if declared in ("application/octet-stream", "application/x-download", "") and guessed:
        return guessed
    ext = suffix(name)
    for ctype, type_ext in TYPE_EXTENSIONS.items():
        if type_ext == ext:
            return ctype
    return guessed or declared or "application/octet-stream"
