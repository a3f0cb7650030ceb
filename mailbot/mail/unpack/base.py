"""The one protocol every container reader follows, and the limit checks they all share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from mailbot.mail.filetypes import IGNORED_NAMES
from mailbot.mail.message import ArchiveLimits
from parsers.problems import spec

__all__ = [
    "Member",
    "Trouble",
    "Unpacked",
    "Unpacker",
    "bomb",
    "check_listing",
    "empty",
    "encrypted",
    "junk_member",
    "mb",
    "ratio_bad",
    "too_deep",
    "too_many",
    "unreadable",
    "unsupported",
]


@dataclass(frozen=True)
class Member:
    """One thing found inside a container: a file, or (`message`) a whole MIME entity."""

    name: str
    data: bytes
    message: bool = False


@dataclass(frozen=True)
class Trouble:
    """Something in a container that could not be used, explained to the unit in Vietnamese."""

    code: str
    filename: str
    message: str
    severity: str = "error"


Unpacked = Iterator[Member | Trouble]


class Unpacker(Protocol):
    """A container reader (zip, rar, tar, winmail.dat, S/MIME, uuencode).

    `nests` containers count as one archive level (zip inside zip); the walk checks that
    depth and `able_to_run` before calling `unpack`, which yields members and troubles
    lazily, in order, so a bad member does not hide the good ones read before it.
    """

    name: str
    nests: bool

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """Whether this file is a container of this kind (by name, type or magic bytes)."""
        ...

    def able_to_run(self) -> bool:
        """Whether this machine (as the context describes it) can open such containers."""
        ...

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """The members of the container, and the troubles met reading it."""
        ...


def mb(size: int) -> str:
    """A size in megabytes the Vietnamese way ("1,5 MB")."""
    return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")


def ratio_bad(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    """A member whose compression ratio only a bomb would have."""
    if size <= limits.ratio_floor:
        return False
    return compressed <= 0 or size / compressed > limits.max_ratio


def junk_member(member: str) -> bool:
    """Members that are never a submission: folders, hidden and OS files, Office lock files."""
    parts = [p for p in member.replace("\\", "/").split("/") if p]
    if not parts:
        return True
    if any(p == "__MACOSX" or p.startswith(".") for p in parts):
        return True
    base = parts[-1]
    return base.casefold() in IGNORED_NAMES or base.startswith("~$")


def check_listing(
    filename: str, sizes: Iterable[tuple[int, int]], limits: ArchiveLimits
) -> Trouble | None:
    """Member count, declared total and ratios of a listing of (size, compressed size)."""
    listed = list(sizes)
    if len(listed) > limits.max_members:
        return too_many(filename, limits)
    declared = sum(size for size, _ in listed)
    if declared > limits.max_total_uncompressed or any(
        ratio_bad(size, packed, limits) for size, packed in listed
    ):
        return bomb(filename, limits)
    return None


def trouble(code: str, filename: str, *, variant: str | None = None, **fmt: object) -> Trouble:
    """A container problem worded by the problem catalogue (`parsers.problems`)."""
    entry = spec(code)
    return Trouble(code, filename, entry.text(variant).format(name=filename, **fmt), entry.severity)


def too_deep(filename: str) -> Trouble:
    """An archive nested deeper than the limits allow."""
    return trouble("archive-too-deep", filename)


def bomb(filename: str, limits: ArchiveLimits) -> Trouble:
    """An archive that would inflate beyond the limits."""
    return trouble("archive-too-large", filename, limit=mb(limits.max_total_uncompressed))


def encrypted(filename: str) -> Trouble:
    """A password-protected archive."""
    return trouble("archive-encrypted", filename)


def unreadable(filename: str) -> Trouble:
    """A damaged archive (or member)."""
    return trouble("archive-unreadable", filename)


def empty(filename: str) -> Trouble:
    """An archive with nothing worth reading."""
    return trouble("archive-empty", filename)


def too_many(filename: str, limits: ArchiveLimits) -> Trouble:
    """An archive with more members than the limits allow."""
    return trouble("archive-too-many-files", filename, limit=limits.max_members)


def unsupported(filename: str, kind: str = "") -> Trouble:
    """An archive this machine cannot open (`kind` such as ".rar" names its type)."""
    return trouble("archive-unsupported", filename, variant="rar" if kind == ".rar" else None)
