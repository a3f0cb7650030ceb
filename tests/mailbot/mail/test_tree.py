"""The MIME tree with base64 runs set aside is the standard parser's tree, part for part."""

from __future__ import annotations

import base64
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.headers import raw_get
from mailbot.mail.tree import _set_aside, parse_message_bytes

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
B64 = base64.encodebytes(bytes(range(256)) * 40)  # 136 lines of 76 characters
HTML = b"".join(
    b'<p style=3D"margin:0">d=C3=B2ng %d: K=C3=ADnh g=E1=BB=ADi Ban D=C3=A2n v=E1=BA=ADn=\n' % i
    for i in range(40)
)


def _shape(msg: Message) -> list[Any]:
    """Everything the parser stored, part by part: headers, bodies, preambles, defects."""
    out: list[Any] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        body = part._payload  # type: ignore[attr-defined]
        out.append(
            (
                part._headers,  # type: ignore[attr-defined]
                [type(d).__name__ for d in part.defects],
                part.preamble,
                part.epilogue,
                part.get_unixfrom(),
                part.get_default_type(),
                body if isinstance(body, str) else len(body),
                # What the parser and the walk ask (Part answers from its index).
                [str(part.get(k.upper())) for k, _ in part._headers],  # type: ignore[attr-defined]
                part.get("x-absent", "none"),
                part.get_content_type(),
            )
        )
        if isinstance(body, list):
            stack.extend(body)
    return out


def _same_as_stdlib(raw: bytes) -> None:
    expected = BytesParser(policy=policy.compat32).parsebytes(raw)
    assert _shape(parse_message_bytes(raw)) == _shape(expected)


def _mail(body: bytes, eol: bytes = b"\r\n") -> bytes:
    head = (
        b"From: a@example.org\nTo: b@example.org\nSubject: x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="BB"\n\n'
    )
    return (head + body).replace(b"\n", eol)


def _leaf(data: bytes, ctype: bytes = b"application/octet-stream") -> bytes:
    return b"--BB\nContent-Type: " + ctype + b"\nContent-Transfer-Encoding: base64\n\n" + data


CASES = {
    "one file": _mail(b"preamble\n" + _leaf(B64) + b"--BB--\nepilogue\n"),
    "run in preamble and epilogue": _mail(B64 + _leaf(B64) + b"--BB--\n" + B64),
    "no closing boundary": _mail(_leaf(B64)),
    "no blank line after the part headers": _mail(
        b"--BB\nContent-Type: text/plain\n" + B64 + b"--BB--\n"
    ),
    "a forwarded mail encoded in base64": _mail(
        _leaf(base64.encodebytes(b"Subject: inner\r\n\r\n" + B64), b"message/rfc822") + b"--BB--\n"
    ),
    "8-bit text beside a run": _mail(
        b"--BB\nContent-Type: text/plain; charset=utf-8\n\nch\xe1\xbb\xafa\n" + B64 + b"--BB--\n"
    ),
    "a line with a dash in the run": _mail(_leaf(B64[:770] + b"AB-CD\n" + B64) + b"--BB--\n"),
    "a blank line in the run": _mail(_leaf(B64[:770] + b"\n" + B64) + b"--BB--\n"),
    "the marker in the mail": _mail(_leaf(B64 + b"MBOTRUN0Z\n") + b"--BB--\n"),
    "the run is the mail's end": _mail(_leaf(B64.rstrip())),
    "text bodies": _mail(
        b"--BB\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-p"
        b"rintable\n\n<html><head><style>\np.Mso{margin:0cm;\nfont-size:11pt}\n</style>\n"
        + HTML
        + b"--BB\nContent-Type: text/plain\n\nFrom here on\n>From a quote\nline one\nline two"
        b"\nline three\nline four\n-- \nsignature\n--BB--\n"
    ),
    "text right after the headers": _mail(
        b"--BB\nContent-Type: message/rfc822\nno blank line here\nSubject: not a header now"
        b"\nline\nline\nline\n--BB\nContent-Type: multipart/mixed; boundary=CC\nline\nline"
        b"\nline\nline\n--CC\n\nline\nline\nline\nline\n--CC--\nline\nline\nline\nline\n--BB--\n"
    ),
    "delivery status blocks": _mail(
        b"--BB\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
        + B64
        + b"\nAction: failed\n--BB--\n"
    ),
}


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_tree_is_the_standard_parsers(name: str, eol: bytes) -> None:
    _same_as_stdlib(CASES[name].replace(b"\r\n", b"\n").replace(b"\n", eol))


def test_a_file_body_is_set_aside_whole() -> None:
    text, runs = _set_aside(CASES["one file"])
    assert base64.b64decode(runs[0]) == bytes(range(256)) * 40
    assert len(text) < 600


def test_text_bodies_are_set_aside_between_the_lines_the_parser_reads() -> None:
    text, runs = _set_aside(CASES["text bodies"])
    html = HTML.replace(b"\n", b"\r\n").decode("ascii")
    assert runs[0] == "</style>\r\n" + html.removesuffix("\r\n")
    # Header-shaped lines ("p.Mso{margin:0cm;") and what may be a boundary stay for the parser.
    assert b"p.Mso{margin:0cm;" in text and b"\r\n-- \r\n" in text
    assert b"\r\nFrom here on\r\n" in text  # "From " opens a header block to the parser
    assert runs[1] == ">From a quote\r\nline one\r\nline two\r\nline three\r\nline four"


def test_lines_base64_does_not_use_are_set_aside_as_text() -> None:
    crlf = B64.replace(b"\n", b"\r\n").decode("ascii")
    _text, runs = _set_aside(CASES["a line with a dash in the run"])
    assert runs == [crlf[:780] + "AB-CD\r\n" + crlf.removesuffix("\r\n")]
    _text, runs = _set_aside(CASES["a blank line in the run"])
    assert runs == [crlf.removesuffix("\r\n"), crlf[:778]]
    _text, runs = _set_aside(CASES["the run is the mail's end"])
    assert runs == [crlf.rstrip().rpartition("\r\n")[0]]  # not its last line: no line end


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.eml")), ids=lambda p: p.name)
def test_fixture_mails(path: Path) -> None:
    raw = path.read_bytes()
    _same_as_stdlib(raw)
    _same_as_stdlib(raw.replace(b"\r\n", b"\n"))


_PIECES = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"--BB", b"--BB--", b"-", b" ", b":", b"\xff", b"X-H: v", b"=?"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(CASES["one file"])), _PIECES, st.integers(0, 3)),
        max_size=6,
    )
)
def test_damaged_mails(edits: list[tuple[int, bytes, int]]) -> None:
    raw = CASES["run in preamble and epilogue"]
    for at, piece, drop in edits:
        raw = raw[:at] + piece + raw[at + drop :]
    _same_as_stdlib(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(CASES["text bodies"])), _PIECES, st.integers(0, 3)),
        max_size=6,
    )
)
def test_damaged_text_mails(edits: list[tuple[int, bytes, int]]) -> None:
    raw = CASES["text bodies"]
    for at, piece, drop in edits:
        raw = raw[:at] + piece + raw[at + drop :]
    _same_as_stdlib(raw)


def test_header_lookups_follow_every_change_of_the_headers() -> None:
    part = parse_message_bytes(CASES["one file"])
    plain = BytesParser(policy=policy.compat32).parsebytes(CASES["one file"])
    changes = [
        lambda m: m.set_raw("X-New", "raw"),
        lambda m: m.__setitem__("Subject", "second"),
        lambda m: m.__delitem__("subject"),
        lambda m: m.replace_header("to", "c@example.org"),
        lambda m: m.add_header("Content-Disposition", "attachment", filename="a.xlsx"),
        lambda m: m.set_param("charset", "utf-8"),
        lambda m: m.set_type("multipart/alternative"),
        lambda m: m.set_boundary("CC"),
        lambda m: m.del_param("charset"),
    ]
    names = ["subject", "to", "x-new", "content-type", "content-disposition"]
    for change in changes:
        for m in (part, plain):
            [m.get(n) for n in names]  # index the headers, then change them
            change(m)
        assert [part.get(n) for n in names] == [plain.get(n) for n in names]
        assert [raw_get(part, n) for n in names] == [raw_get(plain, n) for n in names]
        assert part.get_boundary() == plain.get_boundary()
