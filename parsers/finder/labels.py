"""Label recognition on accent-folded text: field names, TT/name/total labels, sections."""

from __future__ import annotations

import functools
import re

from parsers.grid import Cell
from parsers.vntext import fold_accents


class Guarded:
    """Alternatives of a label regex, each tried only on text holding a word it needs.

    The regex engine cannot scan an alternation of `\\s*`-joined words for a literal prefix,
    so it tries every branch at every position of every cell. Here each branch comes with
    the words one of which it contains literally (or, for a branch anchored at the start,
    the words the text must start with): a substring test first is exact and settles nearly
    every cell that names nothing. `search` finds whether any branch matches (a match of
    the first that does, or None), which is what the whole alternation answers.
    """

    __slots__ = ("branches",)

    def __init__(self, *branches: tuple[str, tuple[str, ...]]) -> None:
        """Each branch: (regex, words); a regex starting with "^" needs the text to start
        with one of its words, any other regex holds one of them somewhere."""
        self.branches = tuple(
            (re.compile(pattern), words, pattern.startswith("^")) for pattern, words in branches
        )

    def search(self, text: str) -> re.Match[str] | None:
        for pattern, words, anchored in self.branches:
            if anchored:
                if not text.startswith(words):
                    continue
            else:
                for word in words:  # a plain loop: a generator costs more than the tests
                    if word in text:
                        break
                else:
                    continue
            found = pattern.search(text)
            if found is not None:
                return found
        return None


_SEPARATORS = ("-", "–", "/", ",")
_FIELD_PATTERNS: tuple[tuple[str, Guarded], ...] = (
    ("economy", Guarded((r"kinh\s*te", ("kinh",)), (r"\bkt\b", ("kt",)))),
    (
        "culture_society",
        Guarded(
            (r"van\s*hoa", ("van",)),
            (r"\bvh\s*[-–/,]?\s*xh\b", ("vh",)),
            (r"\bvhxh\b", ("vhxh",)),
            (r"xa\s*hoi", ("xa",)),
        ),
    ),
    (
        "security_defense",
        Guarded(
            (r"an\s*ninh", ("ninh",)),
            (r"quoc\s*phong", ("quoc",)),
            (r"\banqp\b", ("anqp",)),
            (r"\bqpan\b", ("qpan",)),
            (r"\b(an|qp)\s*[-–/,]\s*(qp|an)\b", _SEPARATORS),
        ),
    ),
    (
        "political_system",
        # "XDHTCT" is typed as one word as often as "XD HTCT"; "XD Đảng" is the party part.
        Guarded(
            (r"he\s*thong\s*chinh\s*tri", ("chinh",)),
            (r"\b(xd\s*)?htct\b", ("htct",)),
            (r"\bxdhtct\b", ("xdhtct",)),
            (r"chinh\s*tri", ("chinh",)),
            (r"xay\s*dung\s*dang", ("xay",)),
            (r"\bxd\s*dang\b", ("xd",)),
        ),
    ),
)


# "TT", "STT", "S.TT", "Số TT", "Số thứ tự", "T/T".
_TT_LABEL = re.compile(r"^(?:s\s*\.?\s*)?t\s*[./]?\s*t$|^so\s*(?:tt|thu\s*tu)$")


NAME_LABEL = Guarded(
    (r"ten\s*tap\s*the", ("ten",)),
    (r"tap\s*the\s*[,/;-]?\s*(va\s*|hoac\s*)?ca\s*nhan", ("tap",)),
    (r"ho\s*(va)?\s*ten", ("ten",)),
    (r"ten\s*(don\s*vi|co\s*quan|to\s*chuc)", ("ten",)),
    (r"ten\s*ca\s*nhan", ("ten",)),
)


NOTE_LABEL = re.compile(r"^ghi\s*chu\b")


FIELD_COLUMN_LABEL = re.compile(r"^linh\s*vuc\b")


MODEL_COLUMN_LABEL = Guarded(
    (r"ten\s*(cac\s*)?mo\s*hinh", ("ten",)), (r"mo\s*hinh\s*dang\s*ky", ("dang",))
)


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
    (r"^ghi\s*chu\s*:", ("ghi",)),
    (r"thu\s*truong\s*(don\s*vi|co\s*quan)", ("truong",)),
    (r"nguoi\s*lap\s*bieu", ("nguoi",)),
    (r"^\(?ky\s*,?\s*(ten|dong)", ("ky", "(ky")),
    (r"^t/?m\.?\s", ("t",)),
    (r"^xac\s*nhan", ("xac",)),
    (r"^noi\s*nhan", ("noi",)),
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


@functools.lru_cache(maxsize=4096)
def field_of(text: str) -> str | None:
    """The one field a header label names, or None if it names none or several."""
    folded = fold_accents(text)
    hits = [name for name, pat in _FIELD_PATTERNS if pat.search(folded)]
    if len(hits) == 2 and "culture_society" in hits and "political_system" in hits:
        # "chính trị - xã hội" names neither field precisely; never a field header alone.
        return None
    return hits[0] if len(hits) == 1 else None


def is_tt_label(folded: str) -> bool:
    label = folded.strip(" .:")
    # Every spelling starts with "s" or "t": most cells are settled without the regex.
    return label[:1] in ("s", "t") and _TT_LABEL.match(label) is not None


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
