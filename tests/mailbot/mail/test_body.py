"""Decoded part contents: a clean base64 body read at once gives the email package's bytes."""

from __future__ import annotations

import base64
from email import policy
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.body import _clean_base64, payload
from mailbot.mail.tree import parse_message_bytes


def _part(body: bytes, cte: bytes = b"base64") -> bytes:
    return (
        b"From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body
    )


def _stdlib(raw: bytes) -> bytes:
    decoded = BytesParser(policy=policy.compat32).parsebytes(raw).get_payload(decode=True)
    assert isinstance(decoded, bytes)
    return decoded


def test_a_clean_body_is_decoded_directly() -> None:
    data = bytes(range(256)) * 50
    raw = _part(base64.encodebytes(data).replace(b"\n", b"\r\n"))
    assert _clean_base64(parse_message_bytes(raw)) == data
    assert payload(parse_message_bytes(raw)) == data == _stdlib(raw)


def test_bodies_the_email_package_repairs_are_left_to_it() -> None:
    for body in (b"QUJD\r\nRA\r\n", b"QU-JD\r\n", b"QQ==QUJD\r\n", b"\xc3\xa9QUJD\r\n"):
        raw = _part(body)
        assert _clean_base64(parse_message_bytes(raw)) is None
        assert payload(parse_message_bytes(raw)) == _stdlib(raw)
    raw = _part(b"QUJD\r\n", b"base64 ")
    assert _clean_base64(parse_message_bytes(raw)) is None


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    edits=st.lists(
        st.tuples(
            st.integers(0, 500),
            st.sampled_from([b"=", b"==", b"\r\n", b"\n", b"\r", b" ", b"-", b"A", b"\xff", b""]),
            st.integers(0, 2),
        ),
        max_size=4,
    ),
)
def test_any_body_decodes_as_the_email_package_decodes_it(
    data: bytes, edits: list[tuple[int, bytes, int]]
) -> None:
    body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    for at, piece, drop in edits:
        body = body[:at] + piece + body[at + drop :]
    raw = _part(body)
    assert payload(parse_message_bytes(raw)) == _stdlib(raw)
