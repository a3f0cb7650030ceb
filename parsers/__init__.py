"""Pure parsers: attachment bytes and a file name in, typed form records out."""

from parsers.model import Entry, Form, ParseResult, Problem, Totals

__all__ = ["Entry", "Form", "ParseResult", "Problem", "Totals", "parse_file"]


def parse_file(data: bytes, filename: str) -> ParseResult:
    """Read one attachment: detect its format, read its grids, find the forms in them."""
    from parsers.dispatch import parse_file as _parse

    return _parse(data, filename)
