"""The message model: one parsed mail, the files found in it and the problems met on the way."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePosixPath

from mailbot.mail.filetypes import IMAGE_EXTENSIONS, suffix
from parsers.model import FORMATS, ParseResult, Problem

__all__ = ["ArchiveLimits", "Attachment", "MailProblem", "ParsedMail"]


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that keep hostile archives and deep forwards from exhausting the machine."""

    max_total_uncompressed: int = 100 * 1024 * 1024  # per archive
    max_members: int = 200
    max_ratio: int = 100  # uncompressed / compressed, judged for members over ratio_floor
    ratio_floor: int = 1024 * 1024
    max_archive_depth: int = 2  # a zip inside a zip, no deeper
    max_forward_depth: int = 5
    max_mail_bytes: int = 200 * 1024 * 1024  # everything extracted from one mail


@dataclass(frozen=True)
class Attachment:
    """One file found in a mail, with a safe name and where it was found.

    `content` is empty in an outcome that came back from a worker (`without_content`): the
    daemon reads what was found in a file, never the file again. `size` stays the file's.
    """

    filename: str
    content: bytes = field(repr=False)
    content_type: str
    origin: str
    content_size: int | None = field(default=None, repr=False)  # set once content is dropped

    @property
    def extension(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()

    @property
    def is_image(self) -> bool:
        return self.extension in IMAGE_EXTENSIONS or self.content_type.startswith("image/")

    @property
    def size(self) -> int:
        return len(self.content) if self.content_size is None else self.content_size

    @property
    def has_content(self) -> bool:
        """False once the bytes were left behind in a worker."""
        return self.content_size is None

    def without_content(self) -> Attachment:
        """The same file without its bytes (an outcome's way back from a worker)."""
        return replace(self, content=b"", content_size=self.size)


@dataclass(frozen=True)
class MailProblem:
    """A file that was found but could not be used, explained to the unit in Vietnamese."""

    code: str
    filename: str
    origin: str
    message: str
    severity: str = "error"

    def as_result(self) -> ParseResult:
        """The problem as a file-level parse result, so receipts list it like any file."""
        ext = suffix(self.filename).lstrip(".")
        return ParseResult(
            file=self.filename,
            format=ext if ext in FORMATS else "other",
            problems=[Problem(self.severity, self.code, self.origin, self.message)],  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ParsedMail:
    """What one raw mail says: who, when, which thread, what text and which files."""

    message_id: str | None
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    body_text: str
    attachments: tuple[Attachment, ...]
    problems: tuple[MailProblem, ...]
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    content_type: str = "text/plain"
    # Empty in an outcome that came back from a worker: the daemon holds the raw mail itself.
    raw: bytes = field(default=b"", repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """The first header of that name (decoded, unfolded), or None."""
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every header of that name, top first."""
        key = name.lower()
        return tuple(v for k, v in self.headers if k.lower() == key)

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None
