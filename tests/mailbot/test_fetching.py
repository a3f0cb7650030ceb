"""The sender's address recorded with a fetched mail is the one email.utils finds."""

from __future__ import annotations

import itertools
import random
from email.utils import parseaddr

from mailbot.fetching import _PLAIN_FROM, sender_address

_NAMES = [
    "",
    "Công đoàn phường Khương Đình ",
    "Nguyen V. A ",
    "\u3000Tên\u00a0lạ ",
    '"Quoted, Name" ',
    "(comment) ",
    "Name, Other ",
    "a@b ",
    "=?utf-8?q?x?= ",
    ". ",
    "\\back ",
]
_ADDRESSES = [
    "cd.khuongdinh@thanhxuan.example.vn",
    "A+tag@X-Y.example",
    "a..b@x",
    "a@b..c",
    "a@b.",
    ".a@b",
    "a@b@c",
    "a @b",
    "\u00a0a@b",
    "user",
    "a@[1.2.3.4]",
    "ngườidùng@x.vn",
    "",
]
_WRAPS = ["<{}>", "< {} >", "{}", " {} ", "<{}>, other@x", "<{}> (note)", "<{}", "{}>"]


def test_sender_address_matches_parseaddr() -> None:
    rng = random.Random(5)
    values = [
        name + wrap.format(addr)
        for name, addr, wrap in itertools.product(_NAMES, _ADDRESSES, _WRAPS)
    ]
    values += ["".join(rng.choice('ab.@<> ,"()\\:;x\t') for _ in range(12)) for _ in range(3000)]
    fast = 0
    for value in values:
        assert sender_address(value) == (parseaddr(value)[1] or None), repr(value)
        fast += _PLAIN_FROM.fullmatch(value) is not None
    assert fast > 20  # the usual shapes are read without the parser
    assert sender_address(None) is None
    assert sender_address("") is None
