"""Label recognition on accent-folded text: field names, TT/name/total labels, sections."""

from __future__ import annotations

import re

from parsers.grid import Cell
from parsers.vntext import fold_accents


class Guarded:
    """A regex tried only on text holding a word every match needs (or starting as one must).

    An alternation of `\\s*`-joined words cannot be scanned for a literal prefix, so the
    regex engine tries every branch at every position; a substring test first is exact (each
    branch contains one of `needles`, or is anchored at the start and begins with one of
    `prefixes`) and turns nearly every search of a cell that names nothing into a few
    substring tests.
    """

    __slots__ = ("pattern", "needles", "prefixes")

    def __init__(
        self, pattern: str, needles: tuple[str, ...], prefixes: tuple[str, ...] = ()
    ) -> None:
        self.pattern = re.compile(pattern)
        self.needles = needles
        self.prefixes = prefixes

    def search(self, text: str) -> re.Match[str] | None:
        if text.startswith(self.prefixes):
            return self.pattern.search(text)
        for needle in self.needles:  # a plain loop: a generator costs more than the tests
            if needle in text:
                return self.pattern.search(text)
        return None


_FIELD_PATTERNS: tuple[tuple[str, Guarded], ...] = (
    ("economy", Guarded(r"kinh\s*te|\bkt\b", ("kinh", "kt"))),
    (
        "culture_society",
        Guarded(r"van\s*hoa|\bvh\s*[-–/,]?\s*xh\b|\bvhxh\b|xa\s*hoi", ("van", "vh", "xa")),
    ),
    (
        "security_defense",
        Guarded(
            r"an\s*ninh|quoc\s*phong|\banqp\b|\bqpan\b|\b(an|qp)\s*[-–/,]\s*(qp|an)\b",
            ("ninh", "quoc", "qp"),
        ),
    ),
    (
        "political_system",
        # "XDHTCT" is typed as one word as often as "XD HTCT"; "XD Đảng" is the party part.
        Guarded(
            r"he\s*thong\s*chinh\s*tri|\b(xd\s*)?htct\b|\bxdhtct\b|chinh\s*tri|xay\s*dung\s*dang|"
            r"\bxd\s*dang\b",
            ("chinh", "htct", "dung", "xd"),
        ),
    ),
)


# "TT", "STT", "S.TT", "Số TT", "Số thứ tự", "T/T".
_TT_LABEL = re.compile(r"^(?:s\s*\.?\s*)?t\s*[./]?\s*t$|^so\s*(?:tt|thu\s*tu)$")


NAME_LABEL = Guarded(
    r"ten\s*tap\s*the|tap\s*the\s*[,/;-]?\s*(va\s*|hoac\s*)?ca\s*nhan|ho\s*(va)?\s*ten|"
    r"ten\s*(don\s*vi|co\s*quan|to\s*chuc)|ten\s*ca\s*nhan",
    ("ten", "tap"),
)


NOTE_LABEL = re.compile(r"^ghi\s*chu\b")


FIELD_COLUMN_LABEL = re.compile(r"^linh\s*vuc\b")


MODEL_COLUMN_LABEL = Guarded(r"ten\s*(cac\s*)?mo\s*hinh|mo\s*hinh\s*dang\s*ky", ("hinh",))


MARKER = re.compile(
    r"^\(?\s*(?:bieu\s*)?(?:mau|m)\s*(?:so)?\s*[:.]?\s*0?([12])\b(?:\s*[/-]\s*[a-z]+)?\s*[.)]?$"
)


MARKER_IN_NAME = re.compile(r"(?:\bmau\s*(?:so)?|\bm)[\s_.-]*0?([12])(?![0-9])")


LEVEL = re.compile(r"cap\s*(quan|co\s*so)")


PLACEHOLDER_UNIT = re.compile(r"^ten\s*(don\s*vi|co\s*quan)\s*[:.]*$")


_TOTAL_WORD = re.compile(r"^(?:tong\s*(?:cong|so)?|cong)\b")


# What may follow the TỔNG word: "(I + II)", "số mô hình đăng ký", ":", a count "05 mô hình"
# or "5 (năm) mô hình".
_TOTAL_REST = re.compile(
    r"^[\s:.\-–]*(?:\([^)]*\))?[\s:.\-–]*(?:so\b\s*)?(?:mo\s*hinh\s*)?(?:dang\s*ky\s*)?"
    r"[\s:.\-–]*(?:\d{1,4}\s*(?:\([^)\d]{1,20}\)\s*)?(?:mo\s*hinh|mh)?)?[\s.]*$"
)


STOP = Guarded(
    r"^ghi\s*chu\s*:|thu\s*truong\s*(don\s*vi|co\s*quan)|nguoi\s*lap\s*bieu|^\(?ky\s*,?\s*(ten|dong)|"
    r"^t/?m\.?\s|^xac\s*nhan|^noi\s*nhan",
    ("truong", "nguoi"),
    ("ghi", "ky", "(ky", "t", "xac", "noi"),
)


# A section row: "I. Tập thể", "A- TẬP THỂ:", "Phần II: Cá nhân", "1. Tập thể", "Các cá nhân",
# optionally with a parenthesis or a few words such as "tiêu biểu" after it, nothing else.
_SECTION = re.compile(
    r"^(?:(?:phan|muc)\s*)?(?:(?:[ivx]{1,4}|[a-c]|\d{1,2})\s*[.):\-–]?\s*)?[-:]?\s*"
    r"(?:cac\s*|danh\s*sach\s*)?(tap\s*the|ca\s*nhan)\s*(?:tieu\s*bieu|dien\s*hinh|dang\s*ky)?"
    r"\s*[:.]?\s*(?:\(.*\))?\s*[:.]?$"
)


_PLACEHOLDER_ROW = re.compile(r"^[.…\s_-]*$")


# Word's prompt in an empty content control, left as plain text where the control is gone
# (a .doc keeps it so): "Bấm hoặc gõ nhẹ vào đây để nhập văn bản.", "Nhấp vào đây để nhập
# văn bản.", "Click or tap here to enter text.", "Choose an item.", the date pickers' prompts.
_WORD_PROMPT = re.compile(
    r"^(?:(?:click|tap|bam|nhap|nhan|cham|go)\b.{0,40}?\b(?:to\s*enter|de\s*nhap)\s*"
    r"(?:(?:a\s*)?(?:text|date)|van\s*ban|ngay)|choose\s*an\s*item|chon\s*mot\s*muc)\s*\.?$"
)


_NUMBER = re.compile(r"^\(?\s*(\d{1,4})\s*\)?")


def field_of(text: str) -> str | None:
    """The one field a header label names, or None if it names none or several."""
    folded = fold_accents(text)
    hits = [name for name, pat in _FIELD_PATTERNS if pat.search(folded)]
    if len(hits) == 2 and "culture_society" in hits and "political_system" in hits:
        # "chính trị - xã hội" names neither field precisely; never a field header alone.
        return None
    return hits[0] if len(hits) == 1 else None


def is_tt_label(folded: str) -> bool:
    return bool(_TT_LABEL.match(folded.strip(" .:")))


def is_placeholder(text: str) -> bool:
    """Dots or dashes left from the template, or Word's prompt in an unfilled control."""
    if _PLACEHOLDER_ROW.match(text):
        return True
    return len(text) < 60 and bool(_WORD_PROMPT.match(fold_accents(text)))


def is_total_label(folded: str) -> bool:
    """ "TỔNG", "Tổng cộng", "Cộng", "Tổng số: 05 mô hình" - but not "Công an phường"."""
    m = _TOTAL_WORD.match(folded)
    return m is not None and bool(_TOTAL_REST.match(folded[m.end() :]))


def section_label(folded: str) -> str | None:
    """The kind a section row opens ("collective"/"individual"), or None if it is no section."""
    m = _SECTION.match(folded)
    if not m:
        return None
    return "collective" if m.group(1).startswith("tap") else "individual"


def to_int(cell: Cell | None) -> int | None:
    if cell is None:
        return None
    if cell.number is not None and not cell.merged:
        try:
            return int(round(cell.number))
        except (OverflowError, ValueError):
            return None
    m = _NUMBER.match(cell.text)
    return int(m.group(1)) if m and not cell.merged else None


def clean_no(tt: str) -> str | None:
    """The TT cell as the entry's number: "1." / "1)" / "(1)" give "1"; "-" or "..." give None."""
    no = tt.strip().strip("()").rstrip(".):").strip()
    return None if not no or is_placeholder(no) else no
