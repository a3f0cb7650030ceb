"""The digest's mailto: links: encoded per RFC 6068, short enough, off without key or staff."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from mailbot.config import Config, DigestConfig, StaffConfig
from mailbot.staff.commands import UNIT_LINE_LABEL
from mailbot.staff.links import MAX_LINK_CHARS, link_factory, mailto
from mailbot.staff.tokens import KINDS, find_token, verify

KEY = bytes(range(32))
NOW = datetime(2022, 2, 15, 2, 0, tzinfo=UTC)
CONFIG = Config(digest=DigestConfig(recipients=("lanhdao@thanhxuan.example",)))
LONG_NAME = "Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân"


def test_mailto_percent_encodes_utf8_and_crlf() -> None:
    link = mailto("bdv@hanoi.gov.vn", "Xác nhận & loại?", "dòng 1\ndòng 2")
    assert link.startswith("mailto:bdv@hanoi.gov.vn?subject=")
    assert link.isascii() and " " not in link and "\n" not in link
    assert "X%C3%A1c%20nh%E1%BA%ADn%20%26%20lo%E1%BA%A1i%3F" in link
    assert "%0D%0A" in link
    query = parse_qs(urlsplit(link).query)
    assert query["subject"] == ["Xác nhận & loại?"] and query["body"] == ["dòng 1\r\ndòng 2"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_link_carries_a_code_for_its_action(kind: str) -> None:
    link_for = link_factory(CONFIG, KEY, NOW, {"mttq": LONG_NAME})
    assert link_for is not None
    link = link_for(kind, 123456, "mttq")
    assert link is not None and len(link) <= MAX_LINK_CHARS
    parts = urlsplit(link)
    assert parts.path == CONFIG.outgoing.from_address
    subject = parse_qs(parts.query)["subject"][0]
    token = find_token(subject)
    assert token is not None
    got = verify(KEY, token, NOW)
    assert (got.kind, got.mail_id, got.unit_code) == (kind, 123456, "mttq")
    assert "thư số 123456" in subject and "mttq" not in subject.replace(token, "")
    assert (got.expires - NOW).days == 14


def test_assign_without_unit_asks_for_it_on_the_first_line() -> None:
    link_for = link_factory(CONFIG, KEY, NOW)
    assert link_for is not None
    link = link_for("assign", 5, None)
    assert link is not None
    body = parse_qs(urlsplit(link).query)["body"][0]
    assert body.splitlines()[0].strip() == UNIT_LINE_LABEL
    assert "đến hết ngày 01/03/2022" in body


def test_no_links_without_a_key_or_without_staff() -> None:
    assert link_factory(CONFIG, None, NOW) is None
    assert link_factory(Config(), KEY, NOW) is None
    staff_only = Config(staff=StaffConfig(addresses=("a@thanhxuan.example",), token_days=3))
    link_for = link_factory(staff_only, KEY, NOW)
    assert link_for is not None
    with pytest.raises(ValueError, match="unknown staff action"):
        link_for("delete", 1, None)


def test_digest_links_read_the_key_file_and_name_the_units(tmp_path) -> None:
    from mailbot.staff.links import digest_links
    from tests.mailbot.campaign.support import open_seeded

    database = open_seeded(tmp_path / "data")
    key = tmp_path / "staff-token-key"
    config = Config(
        digest=CONFIG.digest,
        staff=StaffConfig(token_key_file=str(key)),
        base_dir=str(tmp_path),
    )
    try:
        with database.session(write=False) as s:
            assert digest_links(config, NOW, s) is None  # no key file yet: no links
            key.write_bytes(KEY)
            link_for = digest_links(config, NOW, s)
        assert link_for is not None
        link = link_for("assign", 3, "hoi-ccb")
        assert link is not None
        subject = parse_qs(urlsplit(link).query)["subject"][0]
        assert subject.startswith("Giao thư số 3 cho Hội Cựu chiến binh quận Thanh Xuân – MBT-")
    finally:
        database.dispose()
