"""Signed action codes: sign and verify, every field tampered, expiry, a wrong key."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.staff.tokens import (
    KINDS,
    MAC_BYTES,
    PREFIX,
    TokenError,
    find_token,
    sign,
    token_digest,
    verify,
)

KEY = b"k" * 32
NOW = datetime(2022, 2, 15, 2, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=14)


def _bytes(token: str) -> bytearray:
    body = token.removeprefix(PREFIX)
    return bytearray(base64.b32decode(body + "=" * (-len(body) % 8)))


def _text(data: bytes) -> str:
    return PREFIX + base64.b32encode(bytes(data)).decode().rstrip("=")


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_code_verifies_to_what_was_signed(kind: str) -> None:
    token = sign(KEY, kind, 4321, "p-khuong-trung", EXPIRES)  # type: ignore[arg-type]
    assert token.startswith(PREFIX) and len(token) < 80 and token.isascii()
    got = verify(KEY, token, NOW)
    assert (got.kind, got.mail_id, got.unit_code, got.expires) == (
        kind,
        4321,
        "p-khuong-trung",
        EXPIRES.replace(microsecond=0),
    )
    # Case does not matter (base32): a client that lower-cases the subject changes nothing.
    assert verify(KEY, token.lower(), NOW) == got


def test_a_code_without_unit_and_with_a_vietnamese_unit_code() -> None:
    assert verify(KEY, sign(KEY, "assign", 7, None, EXPIRES), NOW).unit_code is None
    assert verify(KEY, sign(KEY, "assign", 7, "đoàn-phường", EXPIRES), NOW).unit_code == (
        "đoàn-phường"
    )


def test_each_field_tampered_is_forged() -> None:
    token = sign(KEY, "confirm", 4321, "mttq", EXPIRES)
    data = _bytes(token)
    # version, kind, mail id (4 bytes), expiry (8 bytes), unit length, unit, MAC
    for index in (0, 1, 2, 5, 6, 13, 14, 15, len(data) - MAC_BYTES, len(data) - 1):
        changed = bytearray(data)
        changed[index] ^= 0x01
        with pytest.raises(TokenError) as caught:
            verify(KEY, _text(changed), NOW)
        assert caught.value.reason == "forged", index


def test_another_action_mail_or_unit_under_the_same_mac_is_forged() -> None:
    mac = _bytes(sign(KEY, "confirm", 4321, "mttq", EXPIRES))[-MAC_BYTES:]
    for other in (
        sign(KEY, "reject", 4321, "mttq", EXPIRES),
        sign(KEY, "confirm", 4322, "mttq", EXPIRES),
        sign(KEY, "confirm", 4321, "quan-doan", EXPIRES),
        sign(KEY, "confirm", 4321, "mttq", EXPIRES + timedelta(days=30)),
    ):
        spliced = _bytes(other)[:-MAC_BYTES] + mac
        with pytest.raises(TokenError, match="forged"):
            verify(KEY, _text(spliced), NOW)


def test_a_wrong_key_is_forged_and_a_short_key_is_refused() -> None:
    token = sign(KEY, "handled", 1, None, EXPIRES)
    with pytest.raises(TokenError, match="forged"):
        verify(b"x" * 32, token, NOW)
    with pytest.raises(ValueError, match="too short"):
        sign(b"short", "handled", 1, None, EXPIRES)


def test_expiry_is_checked_against_the_given_time() -> None:
    token = sign(KEY, "reprocess", 9, None, EXPIRES)
    assert verify(KEY, token, EXPIRES - timedelta(seconds=1)).mail_id == 9
    with pytest.raises(TokenError, match="expired"):
        verify(KEY, token, EXPIRES)


@pytest.mark.parametrize("text", ["MBT-", "MBT-!!!!", "MBT-AAAA", PREFIX + "A" * 41])
def test_malformed_codes(text: str) -> None:
    with pytest.raises(TokenError) as caught:
        verify(KEY, text, NOW)
    assert caught.value.reason in ("malformed", "forged")


def test_find_token_in_a_subject_or_body() -> None:
    token = sign(KEY, "confirm", 12, "mttq", EXPIRES)
    assert find_token(f"Re: Xác nhận người gửi thư số 12 – {token.lower()}") == token
    assert find_token("Không có mã", f"dòng 1\n{token}\n") == token
    assert find_token("Hỏi về biểu mẫu", "MBT-ngắn") is None
    assert token_digest(token) == token_digest(token.lower()) and token not in token_digest(token)
