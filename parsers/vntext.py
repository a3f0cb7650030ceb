"""Vietnamese text normalisation: NFC, white space, accent folding, legacy font encodings."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "LEGACY_ENCODINGS",
    "convert_legacy",
    "detect_legacy",
    "fold_accents",
    "fold_ws",
    "is_vietnamese_syllable",
    "legacy_encoding_for_font",
    "normalize",
    "smart_text",
]

LEGACY_ENCODINGS: tuple[str, ...] = ("tcvn3", "tcvn3-caps", "vni")

# Invisible characters pasted from web pages and chat apps: zero-width space, non-joiner and
# joiner, word joiner, BOM / zero-width no-break space. Dropped before anything else looks.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# After a legacy conversion (where U+00AD is TCVN3's "ư"): the soft hyphen, an invisible
# hyphenation hint, goes too, and the no-break space is a space.
_INVISIBLE_TEXT = {**_INVISIBLE, 0xAD: None, 0xA0: " "}
# Searching first is several times cheaper than translating every string.
_HAS_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff]")
_HAS_INVISIBLE_TEXT = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad\u00a0]")
_MARKS = re.compile("[\u0300-\u036f]")

# Tone marks in UniKey's table order: none, sắc, huyền, hỏi, ngã, nặng.
_TONES: tuple[str, ...] = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")
_TONE_SET = frozenset(_TONES[1:])
# Marks that shape the vowel itself (circumflex, breve, horn): they belong before the tone.
_SHAPE_MARKS = frozenset("\u0302\u0306\u031b")

# --- Legacy tables --------------------------------------------------------------------------
# Transcribed from UniKey's VnConv charset tables (unikey/data.cpp: SingleByteTables "TCVN3"
# and DoubleByteTables "VNI-WIN"), one row per vowel in _TONES order, codes in hex.
# TCVN3 rows were cross-checked against glibc's TCVN5712-1 (whose 0xA1-0xFF half is the ABC
# lower-case set) and the VNI rows against xvnkb's vni.h; all agree.
#
# TCVN3 (ABC, ".VnTime"): one byte per letter. The ABC set has no upper-case toned letters;
# UniKey types them with the lower-case codes, and the ".Vn...H" fonts draw those as capitals.
_TCVN3_ROWS: tuple[tuple[str, str], ...] = (
    ("a", "61 b8 b5 b6 b7 b9"),
    ("ă", "a8 be bb bc bd c6"),
    ("â", "a9 ca c7 c8 c9 cb"),
    ("e", "65 d0 cc ce cf d1"),
    ("ê", "aa d5 d2 d3 d4 d6"),
    ("i", "69 dd d7 d8 dc de"),
    ("o", "6f e3 df e1 e2 e4"),
    ("ô", "ab e8 e5 e6 e7 e9"),
    ("ơ", "ac ed ea eb ec ee"),
    ("u", "75 f3 ef f1 f2 f4"),
    ("ư", "ad f8 f5 f6 f7 f9"),
    ("y", "79 fd fa fb fc fe"),
)
_TCVN3_SINGLES: tuple[tuple[str, str], ...] = (
    ("Ă", "a1"),
    ("Â", "a2"),
    ("Ê", "a3"),
    ("Ô", "a4"),
    ("Ơ", "a5"),
    ("Ư", "a6"),
    ("Đ", "a7"),
    ("đ", "ae"),
)

# VNI Windows ("VNI-Times"): base letter followed by a mark byte, except i, ỵ, đ (one byte)
# and the horn bases ơ/ư (Ô/ô, Ö/ö). Columns: vowel, upper-case codes, lower-case codes.
_VNI_ROWS: tuple[tuple[str, str, str], ...] = (
    ("a", "41 41d9 41d8 41db 41d5 41cf", "61 61f9 61f8 61fb 61f5 61ef"),
    ("ă", "41ca 41c9 41c8 41da 41dc 41cb", "61ea 61e9 61e8 61fa 61fc 61eb"),
    ("â", "41c2 41c1 41c0 41c5 41c3 41c4", "61e2 61e1 61e0 61e5 61e3 61e4"),
    ("e", "45 45d9 45d8 45db 45d5 45cf", "65 65f9 65f8 65fb 65f5 65ef"),
    ("ê", "45c2 45c1 45c0 45c5 45c3 45c4", "65e2 65e1 65e0 65e5 65e3 65e4"),
    ("i", "49 cd cc c6 d3 d2", "69 ed ec e6 f3 f2"),
    ("o", "4f 4fd9 4fd8 4fdb 4fd5 4fcf", "6f 6ff9 6ff8 6ffb 6ff5 6fef"),
    ("ô", "4fc2 4fc1 4fc0 4fc5 4fc3 4fc4", "6fe2 6fe1 6fe0 6fe5 6fe3 6fe4"),
    ("ơ", "d4 d4d9 d4d8 d4db d4d5 d4cf", "f4 f4f9 f4f8 f4fb f4f5 f4ef"),
    ("u", "55 55d9 55d8 55db 55d5 55cf", "75 75f9 75f8 75fb 75f5 75ef"),
    ("ư", "d6 d6d9 d6d8 d6db d6d5 d6cf", "f6 f6f9 f6f8 f6fb f6f5 f6ef"),
    ("y", "59 59d9 59d8 59db 59d5 ce", "79 79f9 79f8 79fb 79f5 ee"),
)
_VNI_SINGLES: tuple[tuple[str, str], ...] = (("Đ", "d1"), ("đ", "f1"))

# VNI codes outside the Vietnamese alphabet: the marks ø û ï å ä ü ë, đ as ñ, ư as ö.
_VNI_FOREIGN = frozenset("øûïåäüëØÛÏÅÄÜËñÑöÖ")


def _code(hex_codes: str) -> str:
    """Legacy code bytes as the Latin-1 characters Office stores for them."""
    return bytes.fromhex(hex_codes).decode("latin-1")


def _c1_to_cp1252() -> dict[str, str]:
    """Neither table puts a letter in 0x80-0x9F: those bytes are the fonts' Windows symbols."""
    table: dict[str, str] = {}
    for byte in range(0x80, 0xA0):
        try:
            table[chr(byte)] = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in Windows-1252
            continue
    return table


def _build_tcvn3() -> dict[str, str]:
    table = _c1_to_cp1252()
    for vowel, codes in _TCVN3_ROWS:
        for tone, code in zip(_TONES, codes.split(), strict=True):
            letter = unicodedata.normalize("NFC", vowel + tone)
            if _code(code) != letter:
                table[_code(code)] = letter
    for letter, code in _TCVN3_SINGLES:
        table[_code(code)] = letter
    return table


def _build_vni() -> dict[str, str]:
    table = _c1_to_cp1252()
    for vowel, upper_codes, lower_codes in _VNI_ROWS:
        for base, codes in ((vowel.upper(), upper_codes), (vowel, lower_codes)):
            for tone, code in zip(_TONES, codes.split(), strict=True):
                letter = unicodedata.normalize("NFC", base + tone)
                if _code(code) != letter:
                    table[_code(code)] = letter
    for letter, code in _VNI_SINGLES:
        table[_code(code)] = letter
    # A mark of the other case after a base (e.g. "A" + "ù") still means the same letter;
    # upper- and lower-case mark bytes differ by 0x20. The base decides the case.
    for key, letter in list(table.items()):
        if len(key) == 2:
            table.setdefault(key[0] + chr(ord(key[1]) ^ 0x20), letter)
    return table


_DECODE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"tcvn3": MappingProxyType(_build_tcvn3()), "vni": MappingProxyType(_build_vni())}
)


def _longest_match(table: Mapping[str, str]) -> re.Pattern[str]:
    keys = sorted(table, key=lambda k: (-len(k), k))
    return re.compile("|".join(re.escape(k) for k in keys))


_PATTERN: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {name: _longest_match(table) for name, table in _DECODE.items()}
)

# Word fonts with a symbol charset keep their byte codes as U+F000 + byte.
_PUA_TO_BYTE: Mapping[int, str] = MappingProxyType({0xF000 + b: chr(b) for b in range(0x20, 0x100)})

# TCVN3 codes that are symbols (or never-used letters ª µ) in Latin-1: in a word they betray
# ABC text shown in a Unicode font ("§¶ng", "Lª", "ph\xadêng").
_TCVN3_TELLTALES = frozenset(
    ch
    for ch in _DECODE["tcvn3"]
    if ch >= "\u00a1" and (unicodedata.category(ch) not in ("Ll", "Lu") or ch in "ªµ")
)

# Every letter of the Vietnamese alphabet, upper and lower case, with every tone.
_VN_ALPHABET = frozenset(
    [
        unicodedata.normalize("NFC", base + tone)
        for vowel in "aăâeêioôơuưy"
        for base in (vowel, vowel.upper())
        for tone in _TONES
    ]
    + list("bcdđghklmnpqrstvxBCDĐGHKLMNPQRSTVX")
)
# Letters that exist only in Vietnamese (outside Latin-1) and combining marks (NFD text).
_VN_ONLY = re.compile("[ăĂđĐĩĨũŨơƠưƯ\u1ea0-\u1ef9]")
_GENUINE = re.compile("[ăĂđĐĩĨũŨơƠưƯ\u1ea0-\u1ef9\u0300-\u036f]")
# Tokens for detection: split on white space and ASCII / general punctuation only, because
# every Latin-1 character above 0xA0 may be a letter in a legacy font.
_TOKEN_SPLIT = re.compile(r"[\s!-/:-@\[-`{-~\u2010-\u205e]+")
_CP1252_SYMBOLS = frozenset(_c1_to_cp1252().values())

# --- Vietnamese syllable shape (used to judge whether a conversion is plausible) -------------
_NUCLEI: tuple[str, ...] = (
    "uyê",
    "uya",
    "uyu",
    "iêu",
    "yêu",
    "oai",
    "oay",
    "oao",
    "oeo",
    "uây",
    "uôi",
    "ươi",
    "ươu",
    "ai",
    "ao",
    "au",
    "ay",
    "âu",
    "ây",
    "eo",
    "êu",
    "ia",
    "iê",
    "iu",
    "oa",
    "oă",
    "oe",
    "oi",
    "ôi",
    "ơi",
    "oo",
    "ua",
    "uâ",
    "uê",
    "ui",
    "uô",
    "uơ",
    "uy",
    "ưa",
    "ưi",
    "ươ",
    "ưu",
    "yê",
    "a",
    "ă",
    "â",
    "e",
    "ê",
    "i",
    "o",
    "ô",
    "ơ",
    "u",
    "ư",
    "y",
)
# Rhymes that need a final consonant, and rhymes that end in a glide or are open (no final).
_NEEDS_FINAL = frozenset(("ă", "â", "oă", "uâ", "iê", "yê", "uô", "ươ", "uyê", "oo"))
_NO_FINAL = frozenset(
    n
    for n in _NUCLEI
    if (len(n) > 1 and n[-1] in "iyou" and n not in ("uy", "oo")) or n in ("ia", "ua", "ưa", "uya")
)
_SYLLABLE = re.compile(
    "(?P<initial>ngh|ng|nh|ch|gh|gi|kh|ph|th|tr|qu|[bcdđghklmnprstvx])?"
    "(?P<nucleus>" + "|".join(_NUCLEI) + ")"
    "(?P<final>ch|ng|nh|[cmnpt])?"
)


def fold_ws(text: str) -> str:
    """Collapse every run of white space to one space and trim."""
    # str.split() knows the same white space as the regex \s and is several times faster.
    return " ".join(text.split())


def _order_marks(text: str) -> str:
    """Put vowel-shape marks before tone marks in each combining sequence (NFD in, NFD out)."""
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if unicodedata.combining(ch):
            run.append(ch)
            continue
        if run:
            out.extend(sorted(run, key=lambda c: c not in _SHAPE_MARKS))
            run = []
        out.append(ch)
    out.extend(sorted(run, key=lambda c: c not in _SHAPE_MARKS))
    return "".join(out)


def normalize(text: str) -> str:
    """NFC and folded white space, invisible characters dropped: how strings leave the parsers.

    Zero-width characters, BOMs and soft hyphens are removed; a no-break space is a space.

    Decomposed input ("Unicode tổ hợp", NFD) is composed; a tone typed before the vowel's own
    mark (a + acute + breve), which NFC alone cannot compose, is reordered first.
    """
    if not text.isascii():
        if _HAS_INVISIBLE_TEXT.search(text):
            text = text.translate(_INVISIBLE_TEXT)
        if unicodedata.is_normalized("NFC", text) and not _MARKS.search(text):
            # Already composed with no stray combining mark: NFD + reorder + NFC is a no-op.
            return fold_ws(text)
        nfd = unicodedata.normalize("NFD", text)
        if any(ch in _TONE_SET for ch in nfd):
            nfd = _order_marks(nfd)
        text = unicodedata.normalize("NFC", nfd)
    return fold_ws(text)


# Characters below this fold by one table lookup; rarer ones by a full decomposition.
_FOLD_TABLE_END = 0x2100


def _fold_char(ch: str) -> str:
    """One case-folded character without its combining marks, `đ` as `d`."""
    bare = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    return bare.replace("đ", "d")


def _fold_table() -> dict[int, str]:
    """The str.translate table for every character below _FOLD_TABLE_END that folds."""
    table: dict[int, str] = {}
    for code in range(0x80, _FOLD_TABLE_END):
        folded = _fold_char(chr(code))
        if folded != chr(code):
            table[code] = folded
    table.update({code: "" for code in (*_INVISIBLE, 0xAD)})  # as normalize() drops them
    return table


_FOLD_TABLE = _fold_table()


@functools.lru_cache(maxsize=8192)
def fold_accents(text: str) -> str:
    """Case-fold, strip tone and vowel marks, `đ` to `d`: the fallback matching key.

    This is lossy on purpose: "Đảng" and "Đăng" share the key "dang". Match on normalize()
    first and use this key only as a fallback. The form finder folds every cell of every
    sheet, so the common characters go by one str.translate (decomposed input folds the same,
    as its marks are dropped one by one).
    """
    folded = text.casefold().translate(_FOLD_TABLE)
    if not folded.isascii() and max(folded) >= chr(_FOLD_TABLE_END):
        folded = "".join(_fold_char(ch) for ch in folded)
    return " ".join(folded.split())


_VNI_FONT = re.compile(r"vni[-_ ]", re.IGNORECASE)
_STYLE_SUFFIX = re.compile(r"(?:[\s,-]+(?:bold|italic|regular|oblique|normal))+$", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def legacy_encoding_for_font(font_name: str | None) -> str | None:
    """The legacy encoding a font name implies: "tcvn3", "tcvn3-caps", "vni" or None."""
    if not font_name:
        return None
    name = font_name.strip().strip("'\"").strip()
    if _VNI_FONT.match(name):
        return "vni"
    # ".VnTime" family (any case); without the dot only the usual "VnTime" spelling counts.
    if name[:3].lower() == ".vn" or re.match(r"Vn[A-Z]", name):
        family = _STYLE_SUFFIX.sub("", name)
        # The ".Vn...H" fonts (".VnTimeH", ".VnArialH") draw every code as a capital.
        return "tcvn3-caps" if family.endswith("H") else "tcvn3"
    return None


def _upper_each(text: str) -> str:
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in text)


def convert_legacy(text: str, encoding: str) -> str:
    """Convert TCVN3/ABC or VNI text to Unicode (NFC).

    `text` holds the font's byte codes as Office keeps them: U+00A0-U+00FF, U+0080-U+009F or
    their Windows-1252 symbols ('€', 'ƒ', '“' ...), or U+F0xx. Characters outside those
    ranges are kept. "tcvn3-caps" converts like "tcvn3", then upper-cases every letter.
    """
    key = encoding.strip().lower()
    if key not in LEGACY_ENCODINGS:
        raise ValueError(f"unknown legacy encoding: {encoding!r}")
    table_name = "vni" if key == "vni" else "tcvn3"
    table = _DECODE[table_name]
    text = text.translate(_PUA_TO_BYTE)
    out = _PATTERN[table_name].sub(lambda m: table[m.group()], text)
    out = unicodedata.normalize("NFC", out)
    return _upper_each(out) if key == "tcvn3-caps" else out


def is_vietnamese_syllable(word: str) -> bool:
    """Whether `word` has the shape of one Vietnamese syllable (initial, rhyme, one tone)."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    tones = [ch for ch in decomposed if ch in _TONE_SET]
    if len(tones) > 1:
        return False
    bare = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONE_SET))
    match = _SYLLABLE.fullmatch(bare)
    if match is None:
        return False
    final = match.group("final") or ""
    if final in ("c", "ch", "p", "t") and (not tones or tones[0] not in ("\u0301", "\u0323")):
        return False  # stop finals take only sắc or nặng
    nucleus = match.group("nucleus")
    if final:
        return nucleus not in _NO_FINAL
    return nucleus not in _NEEDS_FINAL


class _Evidence(NamedTuple):
    telltales: int  # codes genuine Unicode Vietnamese never contains
    changed: int  # words the conversion changes
    plausible: int  # ... that become one well-formed Vietnamese syllable
    vietnamese: int  # ... of those, with a letter only Vietnamese has (ă đ ơ ư ạ ...)
    words: int  # words with letters (ASCII abbreviations and words with digits left out)
    words_plausible: int  # ... that are well-formed syllables after conversion
    already_plausible: int  # changed words that were well-formed Vietnamese before conversion
    foreign: int  # changed words holding a character outside the Vietnamese alphabet


def _evidence(tokens: list[str], encoding: str) -> _Evidence:
    """Weigh the case for `encoding`.

    Telltales: for TCVN3 the Latin-1 symbols that are ABC letters, inside a word with ASCII
    letters ("§¶ng"); for VNI a code holding a character outside the Vietnamese alphabet
    ("Vieät", "Ñaøo", "döï").
    """
    telltales = changed = plausible = vietnamese = words = words_plausible = already = foreign = 0
    table = _DECODE[encoding]
    pattern = _PATTERN[encoding]
    for token in tokens:
        ascii_only = token.isascii()
        if ascii_only:
            if token.isalpha() and not token.isupper():
                words += 1
                words_plausible += is_vietnamese_syllable(token)
            continue
        if encoding == "tcvn3":
            if any(ch.isascii() and ch.isalpha() for ch in token):
                telltales += sum(ch in _TCVN3_TELLTALES for ch in token)
        else:
            telltales += sum(
                any(ch in _VNI_FOREIGN for ch in m.group()) for m in pattern.finditer(token)
            )
        converted = unicodedata.normalize("NFC", pattern.sub(lambda m: table[m.group()], token))
        ok = is_vietnamese_syllable(converted)
        words += 1
        words_plausible += ok
        if converted != token:
            changed += 1
            plausible += ok
            vietnamese += ok and _VN_ONLY.search(converted) is not None
            already += is_vietnamese_syllable(token)
            foreign += any(not ch.isascii() and ch not in _VN_ALPHABET for ch in token)
    return _Evidence(
        telltales, changed, plausible, vietnamese, words, words_plausible, already, foreign
    )


def _confident(ev: _Evidence) -> bool:
    if ev.vietnamese < 1 or ev.plausible < 0.8 * ev.changed:
        return False
    if ev.telltales >= 2:
        return True
    reads_as_vietnamese = ev.words >= 2 and ev.words_plausible == ev.words
    if ev.telltales == 1:
        return reads_as_vietnamese
    # No telltale ("MÆt trËn Tæ quèc"): the whole phrase must read as Vietnamese once converted,
    # with three words gaining ă/đ/ơ/ư/ạ..., must not have read as Vietnamese before, and must
    # hold a letter outside the Vietnamese alphabet (Æ, Ë, Ö ...).
    return (
        reads_as_vietnamese
        and ev.vietnamese >= 3
        and ev.foreign >= 1
        and 4 * ev.already_plausible < ev.changed
    )


def detect_legacy(text: str) -> str | None:
    """Guess a legacy encoding from telltale characters when no font says so.

    Conservative: None unless the text holds no genuine Vietnamese Unicode (ă đ ơ ư ạ ả ...,
    combining marks), at least 80% of the words it changes become well-formed Vietnamese
    syllables, one of them with a letter only Vietnamese has, and there are two telltales.
    With one telltale, or none, every word of the phrase must then read as Vietnamese (and,
    with none, three words gain Vietnamese-only letters and did not read as Vietnamese before).
    """
    if text.isascii() or _GENUINE.search(text):
        return None
    text = text.translate(_PUA_TO_BYTE)
    if any(ord(ch) > 0xFF and ch not in _CP1252_SYMBOLS for ch in text):
        return None  # other scripts or symbols: not a legacy Vietnamese font's output
    if all(ch.isascii() or ch in _VN_ALPHABET or ch in _CP1252_SYMBOLS for ch in text):
        return None  # every kind of evidence needs a code outside the Vietnamese alphabet
    tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
    evidence = {encoding: _evidence(tokens, encoding) for encoding in ("tcvn3", "vni")}
    found = sorted(
        ((ev.vietnamese, encoding) for encoding, ev in evidence.items() if _confident(ev)),
        reverse=True,
    )
    if not found or (len(found) == 2 and found[0][0] == found[1][0]):
        return None  # nothing fits, or both fit equally well
    winner = found[0][1]
    other = evidence["vni" if winner == "tcvn3" else "tcvn3"]
    if other.changed and _reads_as_vietnamese(other):
        return None  # the other encoding reads just as well ("Ño Ño": "Đo Đo" or "ẹo ẹo")
    return winner


def _reads_as_vietnamese(ev: _Evidence) -> bool:
    return ev.plausible == ev.changed and ev.words_plausible == ev.words


def smart_text(text: str, font_name: str | None = None) -> tuple[str, str | None]:
    """Normalised Unicode text and the legacy encoding converted from (None if none was).

    The font decides first; text already holding genuine Vietnamese Unicode is never
    converted, whatever its font says. Without a legacy font, telltales decide.
    """
    if not text.isascii() and _HAS_INVISIBLE.search(text):
        text = text.translate(_INVISIBLE)  # a zero-width space must not hide legacy text
    encoding = legacy_encoding_for_font(font_name)
    if encoding is None:
        encoding = detect_legacy(text)
    elif _GENUINE.search(text):
        encoding = None
    if encoding is not None:
        converted = convert_legacy(text, encoding)
        if converted != unicodedata.normalize("NFC", text):
            return normalize(converted), encoding
    return normalize(text), None
