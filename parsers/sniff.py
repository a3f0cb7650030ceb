"""Recognise an attachment's real format from its bytes, the file name only breaking ties."""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib

import olefile

from parsers.ooxml import open_package

log = logging.getLogger(__name__)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

_EXT_FORMATS = {
    "xlsx": "xlsx",
    "xltx": "xlsx",
    "xlsm": "xlsm",
    "xltm": "xlsm",
    "xls": "xls",
    "xlt": "xls",
    "docx": "docx",
    "dotx": "docx",
    "docm": "docx",
    "dotm": "docx",
    "doc": "doc",
    "dot": "doc",
    "ods": "ods",
    "odt": "odt",
    "pdf": "pdf",
}
_OOXML_TYPES = (
    # (content type fragment, format); the first match wins.
    ("spreadsheetml.sheet.main", "xlsx"),
    ("spreadsheetml.template.main", "xlsx"),
    ("ms-excel.sheet.macroenabled.main", "xlsm"),
    ("ms-excel.template.macroenabled.main", "xlsm"),
    ("wordprocessingml.document.main", "docx"),
    ("wordprocessingml.template.main", "docx"),
    ("ms-word.document.macroenabled.main", "docx"),
    ("ms-word.template.macroenabledtemplate.main", "docx"),
)
_ODF_TYPES = {
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.text-template": "odt",
}
_IMAGE_MAGICS = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|table|meta)\b",
    re.IGNORECASE | re.DOTALL,
)
_XML_SPREADSHEET = b"urn:schemas-microsoft-com:office:spreadsheet"
_SMALL_PART = 1 << 20  # [Content_Types].xml and mimetype are tiny; refuse to inflate big ones


def extension(filename: str) -> str:
    """The lower-case extension of a file name, without the dot ("" when there is none)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _ext_format(filename: str) -> str | None:
    return _EXT_FORMATS.get(extension(filename))


def detect_format(data: bytes, filename: str, *, package: zipfile.ZipFile | None = None) -> str:
    """One of xlsx, xlsm, xls, xlsb, docx, doc, ods, odt, pdf, other: by content first.

    `package`: the zip of `data` when the caller has opened it already.
    """
    ext_fmt = _ext_format(filename)
    head = data[:8]
    if head.startswith(ZIP_MAGICS):
        fmt = _zip_format(data, package)
        if fmt is not None:
            return fmt
        # A damaged zip named like an office file: let the reader report it unreadable.
        return ext_fmt if ext_fmt in ("xlsx", "xlsm", "docx", "ods", "odt") else "other"
    if head == OLE_MAGIC:
        fmt = _ole_format(data, ext_fmt)
        if fmt is not None:
            return fmt
        return ext_fmt if ext_fmt in ("xls", "doc") else "other"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.lstrip()[:5] == b"{\\rtf":
        # Word's "Rich Text Format" saved as .doc: LibreOffice reads it like a .doc.
        return "doc"
    return "other"


def describe_other(data: bytes) -> str | None:
    """For a file detected as "other": "image", "html", "mht", "xml-spreadsheet" or None."""
    head = data[:16]
    if head.startswith(_IMAGE_MAGICS) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    start = data[:4096]
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    if b"MIME-Version:" in start[:1024] and b"multipart/related" in start.lower():
        return "mht"
    if start.lstrip().startswith(b"<?xml") and _XML_SPREADSHEET in start:
        return "xml-spreadsheet"
    if _HTML_START.match(start):
        return "html"
    return None


def _zip_format(data: bytes, package: zipfile.ZipFile | None) -> str | None:
    try:
        with open_package(data, package) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            mime = infos.get("mimetype")
            if mime is not None and mime.file_size <= _SMALL_PART:
                kind = zf.read(mime).decode("ascii", "replace").strip()
                return _ODF_TYPES.get(kind, "other")
            types = infos.get("[Content_Types].xml")
            text = ""
            if types is not None and types.file_size <= _SMALL_PART:
                text = zf.read(types).decode("utf-8", "replace").lower()
                for fragment, fmt in _OOXML_TYPES:
                    if fragment in text:
                        return fmt
            if "sheet.binary.macroenabled.main" in text or "xl/workbook.bin" in infos:
                return "xlsb"  # Excel binary workbook: not OOXML text inside
            if "xl/workbook.xml" in infos:
                return "xlsx"
            if "word/document.xml" in infos:
                return "docx"
            return "other"
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
    ) as exc:
        log.debug("not a readable zip: %s", exc)
        return None


def _ole_streams(data: bytes) -> set[str] | None:
    try:
        with olefile.OleFileIO(data) as ole:
            return {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}
    except Exception as exc:  # olefile raises many types on damaged files
        log.debug("not a readable OLE2 file: %s", exc)
        return None


def _ole_format(data: bytes, ext_fmt: str | None) -> str | None:
    streams = _ole_streams(data)
    if streams is None:
        return None
    lower = {s.lower() for s in streams}
    if "encryptedpackage" in lower or "encryptioninfo" in lower:
        # A password-protected OOXML file: the package inside can be either kind.
        if ext_fmt in ("xlsx", "xlsm", "docx"):
            return ext_fmt
        return {"xls": "xlsx", "doc": "docx"}.get(ext_fmt or "", "other")
    if "workbook" in lower or "book" in lower:
        return "xls"
    if "worddocument" in lower:
        return "doc"
    return "other"


def is_ole_workbook(data: bytes) -> bool:
    """True when the bytes are a readable OLE2 container holding an Excel workbook stream."""
    if data[:8] != OLE_MAGIC:
        return False
    streams = _ole_streams(data)
    return streams is not None and bool({"workbook", "book"} & {s.lower() for s in streams})


def is_encrypted(data: bytes) -> bool:
    """True for a password-protected OOXML, .xls (FILEPASS) or .doc (fEncrypted) file."""
    if data[:8] != OLE_MAGIC:
        return False
    streams = _ole_streams(data)
    if streams is None:
        return False
    lower = {s.lower() for s in streams}
    if "encryptedpackage" in lower or "encryptioninfo" in lower:
        return True
    if not ({"workbook", "worddocument"} & lower):
        return False
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception as exc:  # a damaged file is the reader's to report
        log.debug("encryption check failed: %s", exc)
        return False
