"""Pure parsers: attachment bytes and a file name in, typed form records out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.model import Entry, Form, ParseResult, Problem, Totals

if TYPE_CHECKING:
    from parsers.convert import OfficeConverter

__all__ = ["Entry", "Form", "ParseResult", "Problem", "Totals", "parse_file"]


def parse_file(data: bytes, filename: str, *, office: OfficeConverter | None = None) -> ParseResult:
    """Read one attachment: detect its format, read its grids, find the forms in them.

    `office` converts .doc/.odt/.ods to OOXML (see parsers.convert); None: not available.
    """
    from parsers.dispatch import parse_file as _parse

    return _parse(data, filename, office=office)
