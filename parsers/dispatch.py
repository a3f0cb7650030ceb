"""Turn one attachment into a ParseResult: size and safety checks, format routing, form finding."""

from __future__ import annotations

import io
import logging
import unicodedata
import zipfile

from parsers.convert import ConversionFailed, ConversionUnavailable, OfficeConverter
from parsers.finder import find_forms
from parsers.grid import Cell, Extracted
from parsers.model import ParseResult, Problem
from parsers.ooxml import Package
from parsers.problems import problem as problem_for
from parsers.safety import (
    DEFAULT_LIMITS,
    MB,
    LimitExceeded,
    Limits,
    TimeLimitExceeded,
    check_zip,
    too_large,
)
from parsers.sniff import ZIP_MAGICS, describe_other, detect_format, is_encrypted, is_ole_workbook

log = logging.getLogger(__name__)

_ZIP_FORMATS = ("xlsx", "xlsm", "docx", "ods", "odt")
# Excel's documented default for "encrypted" .xls files that open without asking.
_EXCEL_BUILTIN_KEY = "VelvetSweatshop"


def parse_file(
    data: bytes,
    filename: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    office: OfficeConverter | None = None,
) -> ParseResult:
    """Read one attachment: detect its format, read its grids, find the forms in them.

    `office` converts .doc/.odt/.ods (and .xls that xlrd cannot read) to OOXML; None means
    no converter is available, and such files get an `unsupported-format` problem.
    """
    label = unicodedata.normalize("NFC", filename)
    # The zip directory is read once for detection, the safety check and the reader.
    package = _package(data)
    try:
        return _parse(data, label, limits, office, package)
    finally:
        if package is not None:
            package.close()


def _package(data: bytes) -> zipfile.ZipFile | None:
    """The zip of `data`; None when it is none or unreadable (each step then reports that)."""
    if not data.startswith(ZIP_MAGICS):
        return None
    try:
        return Package(data)
    except Exception:
        return None


def _parse(
    data: bytes,
    label: str,
    limits: Limits,
    office: OfficeConverter | None,
    package: zipfile.ZipFile | None,
) -> ParseResult:
    try:
        fmt = detect_format(data, label, package=package)
    except Exception:  # detection is best effort; never let it escape
        log.debug("format detection failed for %r", label, exc_info=True)
        fmt = "other"
    # "xlsb" is recognised only to give the right advice; the contract has no such format.
    result = ParseResult(file=label, format="other" if fmt == "xlsb" else fmt)
    problem = _check_size(data, label, limits)
    if problem is None and is_encrypted(data):
        decrypted = _try_default_password(data)
        if decrypted is None:
            problem = problem_for("password-protected")
        else:
            data, package = decrypted, None  # the decrypted file is read on its own
            fmt = result.format = detect_format(data, label)
    if problem is None:
        problem = _check_supported(data, label, fmt)
        if problem is not None and problem.code == "unreadable-file":
            result.format = _format_from_name(label)
    if problem is not None:
        result.problems.append(problem)
        return result
    if fmt in _ZIP_FORMATS:
        problem = check_zip(data, limits, package=package)
        if problem is not None:
            result.problems.append(problem)
            return result
    try:
        extracted = _read(data, fmt, label, limits, office, package)
    except _Refused as refused:
        result.problems.append(refused.problem)
        return result
    except TimeLimitExceeded:
        log.debug("time limit reading %r", label, exc_info=True)
        result.problems.append(
            problem_for("file-too-large", variant="too-slow", name=_quoted(label))
        )
        return result
    except LimitExceeded as exceeded:
        result.problems.append(exceeded.problem)
        return result
    except MemoryError:
        # The worker's memory limit: the file, not the mail, is at fault.
        log.warning("out of memory reading %r", label)
        result.problems.append(too_large("cần quá nhiều bộ nhớ để đọc"))
        return result
    except Exception:
        log.debug("reader failed on %r (%s)", label, fmt, exc_info=True)
        result.problems.append(_unreadable(label))
        return result
    result.problems.extend(extracted.problems)
    legacy = legacy_warning(extracted)
    if legacy is not None:
        result.problems.append(legacy)
    try:
        forms, problems = find_forms(extracted, label)
    except Exception:
        log.warning("form finder failed on %r", label, exc_info=True)
        result.problems.append(_unreadable(label))
        return result
    result.forms = list(forms)
    result.problems.extend(problems)
    return result


def _format_from_name(label: str) -> str:
    ext = label.rsplit(".", 1)[-1].lower() if "." in label else ""
    return {"docm": "docx"}.get(ext, ext) if ext in _OFFICE_EXTENSIONS else "other"


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.code)
        self.problem = problem


def _quoted(label: str) -> str:
    base = label.replace("\\", "/").rsplit("/", 1)[-1]
    return f"“{base}”" if base else ""


def _unreadable(label: str) -> Problem:
    return problem_for("unreadable-file", name=_quoted(label))


def _check_size(data: bytes, label: str, limits: Limits) -> Problem | None:
    if len(data) > limits.max_file_bytes:
        return too_large(f"{len(data) / MB:.1f} MB, tối đa {limits.max_file_bytes // MB} MB")
    if not data.strip():
        return problem_for("unreadable-file", variant="empty", name=_quoted(label))
    return None


_OFFICE_EXTENSIONS = frozenset({"xlsx", "xlsm", "xls", "docx", "docm", "doc", "ods", "odt"})


def _check_supported(data: bytes, label: str, fmt: str) -> Problem | None:
    name = _quoted(label)
    if fmt == "pdf":
        return problem_for("unsupported-format", variant="pdf", name=name)
    if fmt == "xlsb":
        return problem_for("unsupported-format", variant="xlsb", name=name)
    if fmt == "other":
        kind = describe_other(data)
        ext = label.rsplit(".", 1)[-1].lower() if "." in label else ""
        if kind is None and ext in _OFFICE_EXTENSIONS:
            # Named as an office file but holding nothing we recognise: a damaged file.
            return _unreadable(label)
        variant = {"image": "image", "html": "web", "mht": "web", "xml-spreadsheet": "web"}
        return problem_for("unsupported-format", variant=variant.get(kind or ""), name=name)
    return None


def _try_default_password(data: bytes) -> bytes | None:
    """Files "encrypted" with Excel's default password open without asking; so do we."""
    try:
        import msoffcrypto

        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=_EXCEL_BUILTIN_KEY, verify_password=True)
        out = io.BytesIO()
        office.decrypt(out)
        plain = out.getvalue()
    except Exception:
        return None
    return plain if plain and not is_encrypted(plain) else None


def _convert(
    data: bytes, src: str, target: str, limits: Limits, office: OfficeConverter | None
) -> bytes:
    try:
        if office is None:
            raise ConversionUnavailable("no office converter given")
        return office(data, src, target, limits.convert_timeout)
    except ConversionUnavailable as exc:
        raise _Refused(problem_for("unsupported-format", variant="no-office", ext=src)) from exc


def _read(
    data: bytes,
    fmt: str,
    label: str,
    limits: Limits,
    office: OfficeConverter | None,
    package: zipfile.ZipFile | None = None,
) -> Extracted:
    from parsers.docx import read_docx
    from parsers.xls import read_xls
    from parsers.xlsx import read_xlsx

    if fmt in ("xlsx", "xlsm"):
        return read_xlsx(data, limits, package=package)
    if fmt == "docx":
        return read_docx(data, limits, package=package)
    if fmt == "xls":
        try:
            return read_xls(data, limits)
        except TimeLimitExceeded:
            raise
        except Exception:
            log.debug("xlrd failed on %r", label, exc_info=True)
            if not is_ole_workbook(data):  # damaged container: LibreOffice would guess
                raise
            if office is None:
                raise _Refused(_unreadable(label)) from None
            try:
                converted = office(data, "xls", "xlsx", limits.convert_timeout)
            except (ConversionUnavailable, ConversionFailed):
                raise _Refused(_unreadable(label)) from None
            return _read_converted(converted, "xlsx", limits)
    if fmt in ("doc", "odt"):
        return _read_converted(_convert(data, fmt, "docx", limits, office), "docx", limits)
    if fmt == "ods":
        return _read_converted(_convert(data, fmt, "xlsx", limits, office), "xlsx", limits)
    raise _Refused(problem_for("unsupported-format", name=_quoted(label)))


def _read_converted(data: bytes, fmt: str, limits: Limits) -> Extracted:
    from parsers.docx import read_docx
    from parsers.xlsx import read_xlsx

    problem = check_zip(data, limits)
    if problem is not None:
        raise _Refused(problem)
    return read_docx(data, limits) if fmt == "docx" else read_xlsx(data, limits)


def first_legacy_cell(extracted: Extracted) -> Cell | None:
    """The first cell whose text was converted from a legacy font encoding."""
    for grid in extracted.grids:
        for row in grid.rows:
            for cell in row.cells:
                if cell is not None and cell.legacy and not cell.merged:
                    return cell
    return None


def legacy_warning(extracted: Extracted) -> Problem | None:
    """One `legacy-encoding-converted` warning at the first converted cell, if any."""
    cell = first_legacy_cell(extracted)
    if cell is None:
        return None
    return problem_for("legacy-encoding-converted", cell.location)
