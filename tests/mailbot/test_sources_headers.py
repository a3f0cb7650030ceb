"""The fast header reading gives exactly what the email package gives, whatever the block."""

from __future__ import annotations

import email.errors
import email.header
import email.parser
import email.policy
import itertools
import random

from mailbot.sources.headers import _fields, decode_header, parse_headers


def _reference_decode(value: str | None) -> str | None:
    """The email package's reading, as mailbot did it before the fast path."""
    if value is None:
        return None
    try:
        text = str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        text = value
    return " ".join(text.split())


def _reference_parse(block: bytes) -> tuple[str | None, str | None, str | None]:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    mid = msg.get("Message-ID")
    if mid is not None:
        mid = " ".join(str(mid).split()) or None
    return mid, _reference_decode(msg.get("From")), _reference_decode(msg.get("Subject"))


_WORDS = [
    "=?utf-8?b?Q8O0bmcgxJFvw6BuIHBoxrDhu51uZw==?=",
    "=?UTF-8?B?Q8O0bmcgxJFvw6Bu?=",
    "=?utf-8?q?Bi=E1=BB=83u_=C4=91=C4=83ng_k=C3=BD?=",
    "=?utf-8?Q?Ph=C6=B0=E1=BB=9Dng?=",
    "=?utf-8?b?xJE?=",  # padding missing
    "=?utf-8?b?/w==?=",  # not UTF-8
    "=?iso-8859-1?q?caf=E9?=",
    "=?us-ascii?q?plain?=",
    "=?windows-1258?q?T=EAn?=",
    "=?x-unknown?q?abc?=",
    "=?utf-8?b?###?=",
    "=?utf-8?x?abc?=",
    "=?",
    "<a.b@donvi.example.vn>",
    "(chú thích)",
    "Ban Dân vận",
    "plain",
    "\\x",
    "",
]
_SEPARATORS = ["", " ", "  ", "\t", "\r\n ", "\r\n\t", "\n "]


def test_decode_header_matches_the_email_package() -> None:
    rng = random.Random(12)
    values = [a + s + b for a, s, b in itertools.product(_WORDS, _SEPARATORS, _WORDS)]
    for _ in range(3000):
        parts = [rng.choice(_WORDS) + rng.choice(_SEPARATORS) for _ in range(rng.randint(1, 5))]
        values.append(rng.choice(["", " ", "\t"]) + "".join(parts))
    for value in values:
        assert decode_header(value) == _reference_decode(value), repr(value)
    assert decode_header(None) is None


def test_parse_headers_matches_the_email_package() -> None:
    rng = random.Random(7)
    lines = [
        b"Message-ID: <m1@donvi.example.vn>\r\n",
        b"Message-Id:\r\n <m2@donvi.example.vn>\r\n",
        b"message-id:   <m3@x>  \r\n",
        b"Message-ID:\r\n",
        b"From: =?utf-8?b?Q8O0bmcgxJFvw6Bu?= <cd@x.example.vn>\r\n",
        b"From: plain@x.example.vn\n",
        b"FROM: =?utf-8?q?Ph=C6=B0=E1=BB=9Dng?=\r\n\t<p@x>\r\n",
        b"Subject: =?utf-8?q?Bi=E1=BB=83u_=C4=91=C4=83ng_k=C3=BD?=\r\n",
        b"Subject: Re: =?utf-8?b?xJFvw6Bu?= and more\r\n",
        b"Subject: Bi\xe1\xbb\x83u raw UTF-8\r\n",
        b"Subject:no space\r",
        b"X-Other: value\r\n",
        b" continued\r\n",
        b"\tcontinued\r\n",
        b"From sender@x Sat Feb 19 2022\r\n",
        b": no name\r\n",
        b"not a header line\r\n",
        b"Received: from x; Sat, 19 Feb 2022 23:50:00 +0700\r\n",
    ]
    blocks = [b"", b"\r\n", b"Subject: unended", b"Subject: a\r\n\r\nFrom: body@x\r\n"]
    blocks += [a + b for a, b in itertools.product(lines, lines)]
    for _ in range(3000):
        picked = [rng.choice(lines) for _ in range(rng.randint(1, 6))]
        blocks.append(b"".join(picked) + rng.choice([b"", b"\r\n", b"\n", b"\r\nbody\r\n"]))
    fast = 0
    for block in blocks:
        assert parse_headers(block) == _reference_parse(block), block
        fast += _fields(block) is not None
    assert fast > len(blocks) // 4  # the usual blocks do take the fast reading


def test_the_usual_listing_is_read_without_the_parser() -> None:
    block = (
        b"Message-ID: <abc.123@donvi.example.vn>\r\n"
        b"From: =?utf-8?b?Q8O0bmcgxJFvw6BuIHBoxrDhu51uZyBLaMawxqFuZyDEkMOsbmg=?=\r\n"
        b" <cd.khuongdinh@thanhxuan.example.vn>\r\n"
        b"Subject: =?utf-8?q?Bi=E1=BB=83u_=C4=91=C4=83ng_k=C3=BD?=\r\n\r\n"
    )
    assert _fields(block) is not None
    assert parse_headers(block) == (
        "<abc.123@donvi.example.vn>",
        "Công đoàn phường Khương Đình <cd.khuongdinh@thanhxuan.example.vn>",
        "Biểu đăng ký",
    )
