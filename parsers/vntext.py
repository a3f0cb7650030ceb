"""Vietnamese text normalisation: NFC, white space, accent folding, legacy font encodings."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


def fold_ws(text: str) -> str:
    """Collapse every run of white space to one space and trim."""
    return _WS.sub(" ", text).strip()


def normalize(text: str) -> str:
    """NFC and folded white space: the form every string leaves the parsers in."""
    return fold_ws(unicodedata.normalize("NFC", text.replace("\u00a0", " ")))


def fold_accents(text: str) -> str:
    """Lower-case, strip tone and vowel marks, `đ` to `d`: the fallback matching key."""
    text = unicodedata.normalize("NFD", normalize(text).casefold())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return text.replace("đ", "d")


def legacy_encoding_for_font(font_name: str | None) -> str | None:
    """The legacy encoding a font name implies: "tcvn3", "tcvn3-caps", "vni" or None."""
    return None  # filled in by the legacy-encoding work


def detect_legacy(text: str) -> str | None:
    """Guess a legacy encoding from telltale characters when no font says so."""
    return None


def convert_legacy(text: str, encoding: str) -> str:
    """Convert TCVN3/ABC or VNI text to Unicode (NFC)."""
    return text
