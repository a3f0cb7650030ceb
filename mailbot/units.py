"""The unit register: reading it from CSV/XLSX and finding a unit by address or by name."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import lru_cache
from pathlib import PurePosixPath
from types import MappingProxyType

from parsers.vntext import fold_accents

__all__ = [
    "OPTIONAL_COLUMNS",
    "UNIT_GROUPS",
    "Register",
    "Unit",
    "UnitsFileError",
    "check_parents",
    "group_label",
    "guess_group",
    "name_key",
    "parse_forms",
    "parse_group",
    "read_units",
    "register_rank",
]


@dataclass(frozen=True)
class Unit:
    """One organisation that must register: a stable code, its name, addresses and aliases."""

    code: str
    name: str
    emails: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # The forms this unit must send ("M1", "M2"); empty: what the campaign requires.
    forms: tuple[str, ...] = ()
    # The code of the unit directly above it (a ward party committee above its school and
    # residential party cells): forms of this unit sent from the parent's address are trusted.
    parent: str | None = None
    # Its group in the register's order (a key of UNIT_GROUPS) and its place in the group;
    # None: guessed from the name, then ordered by name.
    group: str | None = None
    order: int | None = None
    # The row of the register file it was read from (for messages); not part of its identity.
    line: int | None = field(default=None, compare=False, repr=False)
    # The optional columns the file had: an import leaves the others as the database has them.
    columns: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


class UnitsFileError(ValueError):
    """The register file cannot be used; the message (Vietnamese) names the line."""


# ---------------------------------------------------------------------------
# Groups: the order of the register in documents the board signs

# (key, heading in documents, words staff may write in the register's `group` column)
UNIT_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mat-tran", "Mặt trận Tổ quốc", ("mặt trận", "mặt trận tổ quốc", "mttq")),
    (
        "chinh-tri-xa-hoi",
        "Các tổ chức chính trị - xã hội",
        ("chính trị - xã hội", "chính trị xã hội", "tổ chức chính trị - xã hội", "đoàn thể"),
    ),
    ("hoi", "Các hội quần chúng", ("hội", "hội quần chúng", "các hội")),
    (
        "co-so-dang",
        "Các tổ chức cơ sở đảng",
        ("cơ sở đảng", "tổ chức cơ sở đảng", "đảng bộ", "chi bộ", "đảng ủy"),
    ),
    ("khac", "Các đơn vị khác", ("khác", "đơn vị khác")),
)
_GROUP_RANK = {key: i for i, (key, _label, _words) in enumerate(UNIT_GROUPS)}
# Name starts that make a unit a socio-political organisation rather than an association.
_SOCIO_POLITICAL = (
    "quan doan",
    "doan thanh nien",
    "doan tncs",
    "hoi lien hiep phu nu",
    "hoi lhpn",
    "hoi phu nu",
    "hoi cuu chien binh",
    "hoi ccb",
    "hoi nong dan",
    "lien doan lao dong",
    "cong doan",
)


def _folded(text: str) -> str:
    return " ".join(fold_accents(text).casefold().replace("-", " - ").split())


def parse_group(value: str) -> str | None:
    """The group key a `group` cell names ("Hội", "co-so-dang", "Mặt trận"); None if unknown."""
    wanted = _folded(value)
    for key, label, words in UNIT_GROUPS:
        if wanted in {_folded(key), _folded(label), *(_folded(w) for w in words)}:
            return key
    return None


def guess_group(name: str) -> str:
    """The group a unit's name suggests, for a register without a `group` column."""
    folded = _folded(name)
    if "mat tran" in folded:
        return "mat-tran"
    if folded.startswith(_SOCIO_POLITICAL):
        return "chinh-tri-xa-hoi"
    if folded.startswith("hoi "):
        return "hoi"
    if folded.startswith(("dang uy", "dang bo", "chi bo")):
        return "co-so-dang"
    return "khac"


def group_label(key: str) -> str:
    """The heading of a group in documents ("Các hội quần chúng")."""
    for k, label, _words in UNIT_GROUPS:
        if k == key:
            return label
    return key


def register_rank(name: str, group: str | None, order: int | None) -> tuple[int, int, str]:
    """The sort key of a unit in the register's order: group, place in the group, name."""
    key = group if group in _GROUP_RANK else guess_group(name)
    place = order if order is not None else 1 << 30
    return (_GROUP_RANK[key], place, _folded(name))


# ---------------------------------------------------------------------------
# Name keys

_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền sắc ngã hỏi nặng
# Leading titles that name a body of the unit rather than the unit itself.
_PREFIXES = (
    "ban thường vụ",
    "ban thường trực",
    "ban chấp hành",
    "thường trực",
    "thường vụ",
    "btv",
    "bch",
    "tt",
)
# Abbreviations → words, on whole (tone-normalised, case-folded) tokens.
_ABBREVIATIONS = {
    "ubmttq": "ủy ban mặt trận tổ quốc",
    "ubmt": "ủy ban mặt trận",
    "mttq": "mặt trận tổ quốc",
    "ub": "ủy ban",
    "lhpn": "liên hiệp phụ nữ",
    "ccb": "cựu chiến binh",
    "lđlđ": "liên đoàn lao động",
    "ldld": "liên đoàn lao động",
    "tnxp": "thanh niên xung phong",
    "ctđ": "chữ thập đỏ",
    "nct": "người cao tuổi",
    "đu": "đảng ủy",
    "đb": "đảng bộ",
    "vn": "việt nam",
    "mttqvn": "mặt trận tổ quốc việt nam",
    "ubmttqvn": "ủy ban mặt trận tổ quốc việt nam",
    "hlhpn": "hội liên hiệp phụ nữ",
    "tncs": "thanh niên cộng sản",
    "hcm": "hồ chí minh",
    "tn": "thanh niên",
    "đtn": "đoàn thanh niên",
    "p": "phường",
    "q": "quận",
    "tp": "thành phố",
}
_NOISE = ("việt nam", "thành phố hà nội", "hà nội")


# Names are made of a small vocabulary ("phường", "đảng", "ủy", ...) met over and over.
@lru_cache(maxsize=4096)
def _canon_word(word: str) -> str:
    """A word with its tone mark moved to the end, so "hoà" and "hòa" give the same key."""
    decomposed = unicodedata.normalize("NFD", word)
    tones = "".join(sorted(ch for ch in decomposed if ch in _TONES))
    base = "".join(ch for ch in decomposed if ch not in _TONES)
    return unicodedata.normalize("NFC", base) + tones


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.replace("\u00a0", " ")).casefold()
    text = re.sub(r"[^\w]+", " ", text)
    return [_canon_word(w) for w in text.split()]


_CANON_ABBR = {
    _canon_word(k): [_canon_word(w) for w in v.split()] for k, v in _ABBREVIATIONS.items()
}
_CANON_PREFIXES = sorted(
    ([_canon_word(w) for w in p.split()] for p in _PREFIXES), key=len, reverse=True
)
_CANON_NOISE = [[_canon_word(w) for w in n.split()] for n in _NOISE]


def _remove_run(words: list[str], run: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(words):
        if words[i : i + len(run)] == run:
            i += len(run)
        else:
            out.append(words[i])
            i += 1
    return out


def _key_words(text: str, district: list[str] | None = None) -> tuple[str, ...]:
    words: list[str] = []
    for w in _tokens(text):
        words.extend(_CANON_ABBR.get(w, [w]))
    changed = True
    while changed and words:
        changed = False
        for prefix in _CANON_PREFIXES:
            if words[: len(prefix)] == prefix and len(words) > len(prefix):
                words = words[len(prefix) :]
                changed = True
                break
    for noise in _CANON_NOISE:
        words = _remove_run(words, noise)
    if district:
        # "quận Thanh Xuân" (or "Q. TX") says no more than "quận" in one district's register.
        quan = _canon_word("quận")
        initials = "".join(fold_accents(w)[:1] for w in district)
        out, i = [], 0
        while i < len(words):
            if words[i : i + 1 + len(district)] == [quan, *district]:
                out.append(quan)
                i += 1 + len(district)
            elif (
                len(district) > 1
                and words[i] == quan
                and i + 1 < len(words)
                and fold_accents(words[i + 1]) == initials
            ):
                out.append(quan)
                i += 2
            else:
                out.append(words[i])
                i += 1
        words = out
    return tuple(words)


def _initial_variants(key: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The key with one run of words written as initials: "phường Khương Trung" → "phường kt".

    Offices shorten proper names this way ("ĐU phường KT", "Đảng bộ CA quận"); the variants
    are folded (no accents, đ → d) and only tried when nothing else matched.
    """
    folded = [fold_accents(w) for w in key]
    out: set[tuple[str, ...]] = set()
    for i in range(len(key)):
        for j in range(i + 2, len(key) + 1):
            if j - i == len(key):
                continue  # the whole name as initials is too short to trust
            initials = "".join(w[:1] for w in folded[i:j])
            out.add((*folded[:i], initials, *folded[j:]))
    return out


def name_key(text: str) -> str:
    """The exact matching key of a unit name: NFC, case-folded, tone placement normalised."""
    return " ".join(_key_words(text))


def _folded_key(key: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fold_accents(w) for w in key)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


# ---------------------------------------------------------------------------
# The register

# A bare address of dot-atoms (nearly every sender): parseaddr gives it back unchanged.
_ATOM = r"[A-Za-z0-9_+-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


class Register:
    """An immutable set of units, looked up by address, code or the name on a form."""

    def __init__(self, units: Iterable[Unit], district: str | None = None) -> None:
        self._units: tuple[Unit, ...] = tuple(units)
        self._district_name = district
        self._district = [_canon_word(w) for w in _tokens(district)] if district else None
        by_email: dict[str, Unit] = {}
        by_code: dict[str, Unit] = {}
        for unit in self._units:
            by_code[unit.code] = unit
            for addr in unit.emails:
                by_email.setdefault(addr.lower(), unit)
        self._by_email: Mapping[str, Unit] = MappingProxyType(by_email)
        self._by_code: Mapping[str, Unit] = MappingProxyType(by_code)
        self._names = tuple((u, self._key(u.name)) for u in self._units)
        self._aliases = tuple((u, self._key(a)) for u in self._units for a in u.aliases)
        self._initials = tuple(
            (u, v) for u, k in (*self._names, *self._aliases) for v in _initial_variants(k)
        )
        # The keys by_name compares a query with, as is and accent-folded, built once.
        self._candidates = tuple(
            [(u, f(k)) for u, k in keyed if k]
            for keyed in (self._names, self._aliases)
            for f in (tuple, _folded_key)
        )

    def __reduce__(self) -> tuple[type[Register], tuple[tuple[Unit, ...], str | None]]:
        # Rebuilt from its units, so it can travel to the worker processes.
        return (Register, (self._units, self._district_name))

    def _key(self, text: str) -> tuple[str, ...]:
        return _key_words(text, self._district)

    @property
    def units(self) -> tuple[Unit, ...]:
        return self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units)

    def __len__(self) -> int:
        return len(self._units)

    def by_code(self, code: str) -> Unit | None:
        return self._by_code.get(code)

    def is_under(self, code: str, ancestor: str) -> bool:
        """True when `ancestor` is above the unit `code` in the register (at any level)."""
        seen: set[str] = set()
        unit = self._by_code.get(code)
        while unit is not None and unit.parent and unit.parent not in seen:
            if unit.parent == ancestor:
                return True
            seen.add(unit.parent)
            unit = self._by_code.get(unit.parent)
        return False

    def by_email(self, addr: str) -> Unit | None:
        """The unit that owns this address (case-insensitive), or None."""
        if addr and _PLAIN_ADDRESS.fullmatch(addr):
            return self._by_email.get(addr.lower())  # what parseaddr would give back
        _, parsed = parseaddr(addr or "")
        return self._by_email.get((parsed or addr or "").strip().strip("<>").lower())

    def by_name(self, name: str) -> Unit | None:
        """The unit a written name means: exact, accent-insensitive, aliases, initials; or None."""
        query = self._key(name or "")
        if not query:
            return None
        folded_query = _folded_key(query)
        for index, pairs in enumerate(self._candidates):
            found, code = _match(folded_query if index % 2 else query, pairs)
            if found:
                return self._by_code[code] if code else None
        # Last: a proper name written as its initials ("ĐU phường TXB").
        found, code = _match(folded_query, list(self._initials))
        return self._by_code[code] if found and code else None


def _match(
    q: tuple[str, ...], pairs: list[tuple[Unit, tuple[str, ...]]]
) -> tuple[bool, str | None]:
    """(decided, unit code): equal, else the longest name inside the query, else the query
    inside exactly one name; decided with no code when the best candidates disagree."""
    equal = {u.code for u, k in pairs if k == q}
    if equal:
        return True, (equal.pop() if len(equal) == 1 else None)
    contained = [(len(k), u.code) for u, k in pairs if len(k) >= 2 and _contains(q, k)]
    if contained:
        best = max(n for n, _ in contained)
        codes = {c for n, c in contained if n == best}
        return True, (codes.pop() if len(codes) == 1 else None)
    # A shortened name ("Hội Người cao tuổi") inside exactly one registered name.
    within = {u.code for u, k in pairs if len(q) >= 2 and _contains(k, q)}
    if within:
        return True, (within.pop() if len(within) == 1 else None)
    return False, None


# ---------------------------------------------------------------------------
# Reading the register file

_COLUMNS = {
    "code": "code",
    "mã": "code",
    "ma": "code",
    "mã đơn vị": "code",
    "name": "name",
    "tên": "name",
    "ten": "name",
    "tên đơn vị": "name",
    "đơn vị": "name",
    "emails": "emails",
    "email": "emails",
    "e-mail": "emails",
    "thư điện tử": "emails",
    "aliases": "aliases",
    "alias": "aliases",
    "tên khác": "aliases",
    "parent": "parent",
    "cấp trên": "parent",
    "đơn vị cấp trên": "parent",
    "mã đơn vị cấp trên": "parent",
    "trực thuộc": "parent",
    "forms": "forms",
    "biểu mẫu": "forms",
    "mẫu phải nộp": "forms",
    "biểu mẫu phải nộp": "forms",
    "group": "group",
    "nhóm": "group",
    "khối": "group",
    "nhóm đơn vị": "group",
    "order": "order",
    "thứ tự": "order",
    "số thứ tự": "order",
}
# Columns a register may leave out; an import then keeps what the database has for them.
OPTIONAL_COLUMNS: tuple[str, ...] = ("parent", "group", "order")
_EMAIL = re.compile(r"^[^@\s<>;,]+@[^@\s<>;,]+\.[^@\s<>;,]+$")


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFC", str(value).replace("\u00a0", " "))
    return re.sub(r"\s+", " ", text).strip()


def _decode_csv(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's "CSV" on Vietnamese Windows is in the ANSI code page, cp1258.
        return unicodedata.normalize("NFC", data.decode("cp1258", errors="replace"))


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    text = _decode_csv(data)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield reader.line_num, [_clean(c) for c in row]
    except csv.Error as exc:
        raise UnitsFileError(
            f"Dòng {reader.line_num}: tệp CSV không đúng định dạng ({exc})."
        ) from exc


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise UnitsFileError(
            "Không đọc được tệp Excel danh sách đơn vị. Vui lòng lưu lại dưới dạng .xlsx "
            "hoặc .csv (UTF-8)."
        ) from exc
    try:
        ws = wb.worksheets[0]
        rows = [
            (index, [_clean(c) for c in row])
            for index, row in enumerate(ws.iter_rows(values_only=True), 1)
        ]
    except Exception as exc:
        raise UnitsFileError("Tệp Excel danh sách đơn vị bị lỗi, không đọc được.") from exc
    finally:
        wb.close()
    yield from rows


# How staff write a form in the register's `forms` column: "M1", "Mẫu 01", "Mẫu số 02", "01".
_FORM_WORD = re.compile(r"^(?:m|mau|mau so)?\s*0?([12])$")


def parse_forms(value: str) -> tuple[str, ...] | None:
    """The form codes of a `forms` cell ("M1;M2", "Mẫu số 02"), in order; None if unreadable."""
    out: list[str] = []
    for item in _split_list(value):
        m = _FORM_WORD.match(" ".join(fold_accents(item).lower().replace(".", " ").split()))
        if m is None:
            return None
        code = f"M{m.group(1)}"
        if code not in out:
            out.append(code)
    return tuple(sorted(out))


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in re.split(r"[;,\n]", value) if p.strip())


REQUIRED_COLUMNS: tuple[str, ...] = ("code", "name", "emails")
# More problems than this in one file: the first ones are shown, then a count.
MAX_REPORTED_PROBLEMS = 20


def _units_error(problems: list[str]) -> UnitsFileError:
    shown = problems[:MAX_REPORTED_PROBLEMS]
    more = len(problems) - len(shown)
    if more:
        shown.append(f"… và {more} lỗi khác.")
    if len(shown) == 1:
        return UnitsFileError(f"{shown[0]} Không nhập đơn vị nào.")
    return UnitsFileError(f"{len(problems)} lỗi, không nhập đơn vị nào:\n  " + "\n  ".join(shown))


def _header_columns(row: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, cell_text in enumerate(row):
        col = _COLUMNS.get(cell_text.casefold().strip(" *:"))
        if col and col not in found:
            found[col] = i
    return found


def _missing_columns_error(line: int, row: list[str], found: dict[str, int]) -> UnitsFileError:
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    present = ", ".join(f"“{c}”" for c in row if c) or "(không có)"
    return UnitsFileError(
        f"Dòng {line} (dòng tiêu đề): thiếu cột {', '.join(missing)}. Các cột có trong tệp: "
        f"{present}. Tệp danh sách đơn vị phải có các cột code, name, emails (các cột aliases, "
        "forms, parent, group, order không bắt buộc). Không nhập đơn vị nào."
    )


def read_units(data: bytes, filename: str) -> list[Unit]:
    """Read a register from CSV or XLSX bytes; raise UnitsFileError naming every bad line.

    Required columns: code, name, emails (aliases, forms, parent, group, order optional). A
    unit may have no address yet, but a code, a name, valid addresses, codes unique and an
    address for one unit only.
    """
    ext = PurePosixPath(filename).suffix.lower()
    if ext in (".xlsx", ".xlsm") or data.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(data)
    elif ext in (".csv", ".txt", ""):
        rows = _csv_rows(data)
    else:
        raise UnitsFileError(
            f"Tệp “{filename}” không phải CSV hoặc XLSX. Vui lòng lưu danh sách đơn vị dưới "
            "dạng .xlsx hoặc .csv (UTF-8)."
        )
    header: dict[str, int] | None = None
    units: list[Unit] = []
    problems: list[str] = []
    codes: dict[str, int] = {}
    owners: dict[str, tuple[str, int]] = {}
    preamble: list[int] = []
    for line, row in rows:
        if not any(row):
            continue
        if header is None:
            found = _header_columns(row)
            if all(c in found for c in REQUIRED_COLUMNS):
                header = found
                continue
            preamble.append(line)
            if len(found) >= 2 or "code" in found or len(preamble) >= 10:
                raise _missing_columns_error(line, row, found)
            continue  # a title above the header row

        def cell(col: str, row: list[str] = row, header: dict[str, int] = header) -> str:
            i = header.get(col)
            return row[i] if i is not None and i < len(row) else ""

        code, name = cell("code"), cell("name")
        row_problems = []
        if not code:
            row_problems.append(f"Dòng {line}: thiếu mã đơn vị (cột code).")
        if not name:
            row_problems.append(
                f"Dòng {line}: thiếu tên đơn vị (cột name)"
                + (f" cho mã “{code}”." if code else ".")
            )
        if code and code in codes:
            row_problems.append(f"Dòng {line}: mã đơn vị “{code}” bị trùng với dòng {codes[code]}.")
        elif code:
            codes[code] = line
        emails: list[str] = []
        for item in _split_list(cell("emails")):
            addr = (parseaddr(item)[1] or item).strip().lower()
            if not _EMAIL.match(addr):
                row_problems.append(f"Dòng {line}: địa chỉ thư “{item}” không hợp lệ.")
                continue
            if addr in owners and owners[addr][0] != code:
                other, other_line = owners[addr]
                row_problems.append(
                    f"Dòng {line}: địa chỉ thư “{addr}” đã ghi cho đơn vị “{other}” ở dòng "
                    f"{other_line}; một địa chỉ chỉ thuộc một đơn vị."
                )
                continue
            owners.setdefault(addr, (code, line))
            if addr not in emails:
                emails.append(addr)
        problems.extend(row_problems)
        aliases = tuple(a for a in (a.strip() for a in cell("aliases").split(";")) if a)
        forms = parse_forms(cell("forms"))
        if forms is None:
            problems.append(
                f"Dòng {line}: cột forms “{cell('forms')}” không hợp lệ; ghi M1, M2 hoặc "
                "M1;M2 (để trống: đơn vị gửi các biểu mẫu theo đợt thi đua)."
            )
            forms = ()
        parent = cell("parent") or None
        if parent and parent == code:
            problems.append(f"Dòng {line}: đơn vị “{code}” không thể là cấp trên của chính nó.")
        group = parse_group(cell("group")) if cell("group") else None
        if cell("group") and group is None:
            words = ", ".join(f"“{label}”" for _k, label, _w in UNIT_GROUPS)
            problems.append(
                f"Dòng {line}: cột group “{cell('group')}” không rõ; ghi một trong: {words}."
            )
        order: int | None = None
        if cell("order"):
            try:
                order = int(cell("order"))
            except ValueError:
                problems.append(
                    f"Dòng {line}: cột order “{cell('order')}” phải là một số (1, 2, 3…)."
                )
        units.append(
            Unit(
                code,
                name,
                tuple(emails),
                aliases,
                forms,
                parent,
                group,
                order,
                line=line,
                columns=frozenset(c for c in OPTIONAL_COLUMNS if c in header),
            )
        )
    if header is None:
        if preamble:
            raise UnitsFileError(
                f"Dòng {preamble[0]}: không tìm thấy dòng tiêu đề có các cột code, name, "
                "emails (và aliases nếu có). Không nhập đơn vị nào."
            )
        raise UnitsFileError("Tệp danh sách đơn vị trống (không có dòng tiêu đề).")
    if problems:
        raise _units_error(problems)
    if not units:
        raise UnitsFileError(
            "Tệp danh sách đơn vị chỉ có dòng tiêu đề, không có đơn vị nào: danh sách đơn vị "
            "không được để trống. Không nhập đơn vị nào."
        )
    _check_parents(units, codes, None)
    return units


def _check_parents(
    units: list[Unit], lines: Mapping[str, int], known: Iterable[str] | None
) -> None:
    """No unit is its own ancestor; with `known`, every parent names a unit of the file or it."""
    codes = None if known is None else set(lines) | set(known)
    parents = {u.code: u.parent for u in units if u.parent}
    for unit in units:
        if codes is not None and unit.parent and unit.parent not in codes:
            raise UnitsFileError(
                f"Dòng {lines.get(unit.code, '?')}: mã đơn vị cấp trên “{unit.parent}” "
                "không có trong danh sách đơn vị."
            )
        seen = {unit.code}
        up = parents.get(unit.code)
        while up:
            if up in seen:
                raise UnitsFileError(
                    f"Dòng {lines.get(unit.code, '?')}: quan hệ cấp trên của đơn vị “{unit.code}” "
                    "bị vòng lặp."
                )
            seen.add(up)
            up = parents.get(up)


def check_parents(units: list[Unit], known: Iterable[str]) -> None:
    """Refuse a register whose parents name units neither in it nor already `known`."""
    _check_parents(units, {u.code: i for i, u in enumerate(units, 2)}, known)
