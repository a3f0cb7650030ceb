"""The MIME tree of a raw mail: the standard parser, with runs of body lines set aside."""

from __future__ import annotations

import re
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

__all__ = ["Part", "parse_message_bytes"]

# A run of base64 lines (an attachment's body): every line starts with a base64 character
# and holds nothing else, so it is never a header, a header's continuation, a "From " line,
# a boundary or a blank separator. To the standard parser such a run is plain body text; it
# is set aside while the parser reads the mail line by line (most of its time on a mail
# with files) and put back, unchanged, into the tree it built.
_RUN_START = re.compile(rb"\n(?=[A-Za-z0-9+/=]{40,}\r?\n)")
_RUN_END = re.compile(rb"\n(?![A-Za-z0-9+/=])")
_RUN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n"
_MIN_RUN_BYTES = 1024  # shorter runs cost the parser little
# Then, in what is left, any run of lines none of which the parser reads as anything but
# text: not a header or its continuation or "From " (its headerRE), not a possible boundary
# (which starts with "--"), not blank. Text bodies (quoted-printable HTML, often hundreds of
# lines) are such runs; so is the token of a base64 run. The line end before the run is
# matched (and put back), not looked behind at: a pattern starting with a plain character
# is searched for that character, instead of being tried at every position of the mail.
_TEXT_RUN = re.compile(
    rb"\n((?:(?![\t ]|From |[\x21-\x39\x3b-\x7e]*:|-)[^\r\n]+(?:\r\n|\r|\n)){4,})"
)
_RUN_MARK = "MBOTRUN"
_RUN_TOKEN = re.compile(_RUN_MARK + r"(\d+)Z")


class Part(Message):
    """A compat32 message part whose set-aside runs can be put back into its body, and
    whose headers are indexed by name when one is first asked for: the parser asks each
    part for its type a dozen times and the walk for a dozen headers, each time a scan of
    every header. Whatever changes the headers drops the index."""

    # Lower-case name -> (name as written, raw value) of its first occurrence.
    _index: dict[str, tuple[str, Any]] | None = None

    def _first(self) -> dict[str, tuple[str, Any]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._headers:  # type: ignore[attr-defined]
                index.setdefault(name.lower(), (name, value))
            self._index = index
        return index

    def first_header(self, key: str) -> str | None:
        """The first raw value of the header named `key` (lower case), or None."""
        found = self._first().get(key)
        return None if found is None else str(found[1])

    def get(self, name: str, failobj: Any = None) -> Any:
        """As Message.get: the first value of that header, as the policy fetches it."""
        found = self._first().get(name.lower())
        if found is None:
            return failobj
        return self.policy.header_fetch_parse(*found)

    # Every way the headers change (Message's other setters go through these). The index
    # is dropped after the change, which may itself have read the headers.
    def set_raw(self, name: str, value: Any) -> None:
        """As Message.set_raw, dropping the index."""
        try:
            super().set_raw(name, value)
        finally:
            self._index = None

    def __setitem__(self, name: str, val: Any) -> None:
        try:
            super().__setitem__(name, val)
        finally:
            self._index = None

    def __delitem__(self, name: str) -> None:
        try:
            super().__delitem__(name)
        finally:
            self._index = None

    def replace_header(self, _name: str, _value: Any) -> None:
        """As Message.replace_header, dropping the index."""
        try:
            super().replace_header(_name, _value)
        finally:
            self._index = None

    def set_boundary(self, boundary: str) -> None:
        """As Message.set_boundary, dropping the index."""
        try:
            super().set_boundary(boundary)
        finally:
            self._index = None

    def put_back(self, runs: list[str]) -> None:
        """Replace every run token in this tree's bodies, preambles and epilogues."""

        def restore(text: str) -> str:
            # A text run may hold a base64 run's token: put back until no token is left.
            while _RUN_MARK in text:
                text = _RUN_TOKEN.sub(lambda m: runs[int(m.group(1))], text)
            return text

        stack: list[Message] = [self]  # iterative: a deeply nested mail must not fail here
        while stack:
            part = stack.pop()
            if not isinstance(part, Part):
                continue
            # The body as the parser stored it (get_payload() would decode 8-bit text).
            body = part._payload  # type: ignore[attr-defined]
            if isinstance(body, list):
                stack.extend(body)
            elif isinstance(body, str):
                part._payload = restore(body)  # type: ignore[attr-defined]
            if part.preamble:
                part.preamble = restore(part.preamble)
            if part.epilogue:
                part.epilogue = restore(part.epilogue)


def _set_aside(raw: bytes) -> tuple[bytes, list[str]]:
    """The mail with each run of base64, then of text lines replaced by a token line; the runs.

    A token stands for its run without the run's last line end, which follows the token:
    the parser may strip a part's last line end, and then strips the same one.
    """
    pieces: list[bytes] = []
    runs: list[str] = []
    done = pos = 0
    while (start := _RUN_START.search(raw, pos)) is not None:
        begin = start.end()
        stop = _RUN_END.search(raw, begin)
        if stop is None:
            break  # the mail's last line: it may have no line end
        end = stop.start() + 1  # just after the line end of the run's last line
        pos = stop.start()
        run = raw[begin:end]
        if (
            end - begin < _MIN_RUN_BYTES
            or run.translate(None, _RUN_BYTES)  # a character base64 does not use
            or b"\r\r" in run  # a blank line (after a bare CR line end)
        ):
            continue
        cut = end - (2 if run.endswith(b"\r\n") else 1)
        runs.append(raw[begin:cut].decode("ascii"))
        pieces += (raw[done:begin], f"{_RUN_MARK}{len(runs) - 1}Z".encode("ascii"))
        done = cut
    pieces.append(raw[done:])
    return _set_aside_text(b"".join(pieces), runs), runs


def _set_aside_text(text: bytes, runs: list[str]) -> bytes:
    """`text` with each run of plain text lines replaced by a token line (added to `runs`)."""

    def token(m: re.Match[bytes]) -> bytes:
        run = m.group(1)
        cut = len(run) - (2 if run.endswith(b"\r\n") else 1)
        runs.append(run[:cut].decode("ascii", "surrogateescape"))
        return b"\n" + f"{_RUN_MARK}{len(runs) - 1}Z".encode("ascii") + run[cut:]

    return _TEXT_RUN.sub(token, text)


def parse_message_bytes(raw: bytes) -> Message:
    """The MIME tree of a raw mail (compat32: lenient, never raises on malformed headers)."""
    parser = BytesParser(Part, policy=email_policy.compat32)
    if _RUN_MARK.encode("ascii") in raw:
        return parser.parsebytes(raw)  # a mail holding the marker is read the plain way
    text, runs = _set_aside(raw)
    msg = parser.parsebytes(text)
    if runs and isinstance(msg, Part):
        msg.put_back(runs)
    return msg
