"""The digest's actions, chart and mail: one-click links, likely units, the inline image."""

from __future__ import annotations

import io
import json
from datetime import date

from PIL import Image

from mailbot import db as dbm
from mailbot.campaign.attention import needs_attention
from mailbot.campaign.chart import DayCount, StateBar, progress_png
from mailbot.campaign.digest import build_digest, per_day, queue_digest
from tests.mailbot.campaign.support import CAMPAIGN, CONFIG, add_form, at, outbox, parse


def fake_link(kind: str, mail_id: int, unit: str | None) -> str | None:
    """What C2's signed links look like, without the signature; no link for 'reject'."""
    if kind == "reject":
        return None
    return f"mailto:robot@x.example?subject=T-{kind}-{mail_id}-{unit or ''}"


def _held(
    database: dbm.Database, sender: str, subject: str, n: int = 1, reason: str = "unknown-unit"
) -> int:
    with database.session() as s:
        mail, _ = dbm.record_received(
            s,
            source="test",
            uidvalidity=None,
            uid=None,
            message_id=f"<held-{n}@x.example>",
            sha256=f"{n:064d}",
            raw_path=f"raw/held-{n}",
            size=10,
            from_addr=sender,
            subject=subject,
            received_at=at(12, 10),
        )
        dbm.quarantine(s, mail, reason, at(12, 10))
        return mail.id


def test_unknown_sender_offers_the_likely_units_then_any_unit(database) -> None:
    held = _held(database, "dangbo.khuongtrung@gmail.example", "Gửi biểu mẫu")
    with database.session(write=False) as s:
        [item] = needs_attention(s, None, at(13), CAMPAIGN, {}, fake_link)
    assert item.kind_label == "Người gửi không xác định"
    assert f"Thư số {held} của dangbo.khuongtrung@gmail.example" in item.detail
    assert [(a.kind, a.label, a.href) for a in item.actions] == [
        (
            "assign",
            "Tính cho Đảng ủy phường Khương Trung",
            f"mailto:robot@x.example?subject=T-assign-{held}-p-khuong-trung",
        ),
        ("assign", "Tính cho đơn vị khác", f"mailto:robot@x.example?subject=T-assign-{held}-"),
        ("reject", "Từ chối", None),
    ]
    # The link that is missing is said in words; the others are not repeated.
    assert item.todo == f"Đề nghị đồng chí quản trị hệ thống thực hiện với thư số {held}: từ chối."


def test_unit_named_in_the_subject_is_a_candidate(database) -> None:
    _held(database, "ai.do@gmail.example", "Biểu mẫu của Đảng ủy phường Kim Giang")
    with database.session(write=False) as s:
        [item] = needs_attention(s, None, at(13), CAMPAIGN, {}, district="Thanh Xuân")
    assert [a.label for a in item.actions] == [
        "Tính cho Đảng ủy phường Kim Giang",
        "Tính cho đơn vị khác",
        "Từ chối",
    ]
    assert all(a.href is None for a in item.actions)


def test_a_shared_domain_names_no_unit(database) -> None:
    # Every unit writes from thanhxuan.example: the domain says nothing about who this is.
    _held(database, "nguoi.la@thanhxuan.example", "Gửi biểu")
    with database.session(write=False) as s:
        [item] = needs_attention(s, None, at(13), CAMPAIGN, {})
    assert [a.label for a in item.actions] == ["Tính cho đơn vị khác", "Từ chối"]


def test_forged_looking_mail_offers_the_unit_it_claims(database) -> None:
    _held(database, "ldld@thanhxuan.example", "Biểu", reason="dmarc-fail")
    with database.session(write=False) as s:
        [item] = needs_attention(s, None, at(13), CAMPAIGN, {})
    assert item.kind_label == "Thư bị giữ lại"
    assert "không qua kiểm tra xác thực người gửi" in item.detail and "DMARC" not in item.detail
    assert [a.label for a in item.actions] == [
        "Tính cho Liên đoàn Lao động quận Thanh Xuân",
        "Tính cho đơn vị khác",
        "Từ chối",
    ]


def test_confirm_and_handled_links_carry_mail_and_unit(database) -> None:
    mail_id = add_form(
        database, "quan-doan", "M1", at(12), awaiting=True, sender="bt@gmail.example"
    )
    with database.session(write=False) as s:
        plan = build_digest(s, CAMPAIGN, CONFIG, at(13, 7, 30), b"x", link_for=fake_link)
    [item] = plan.view.needs_attention
    assert item.detail.startswith("bt@gmail.example gửi biểu thay cho Quận đoàn Thanh Xuân")
    assert (item.actions[0].label, item.actions[0].href) == (
        "Xác nhận người gửi",
        f"mailto:robot@x.example?subject=T-confirm-{mail_id}-quan-doan",
    )


def test_old_mail_offers_reprocess_not_a_command(database) -> None:
    with database.session() as s:
        mail, _ = dbm.record_received(
            s,
            source="test",
            uidvalidity=None,
            uid=None,
            message_id="<old@x.example>",
            sha256="a" * 64,
            raw_path="raw/old",
            size=10,
            from_addr="mttq@thanhxuan.example",
            subject="Biểu",
            received_at=at(1, month=1),
        )
        info = {"arrived_at": at(1, month=1).isoformat(), "from": "mttq@thanhxuan.example"}
        dbm.add_event(
            s,
            "reply-withheld-old",
            at=at(12),
            mail_id=mail.id,
            detail=json.dumps(info | {"max_days": 14}),
        )
    with database.session(write=False) as s:
        [item] = needs_attention(s, None, at(13), CAMPAIGN, {})
    assert "đã quá 14 ngày" in item.detail and "mailbot" not in item.detail
    assert [a.kind for a in item.actions] == ["reprocess"]


def test_submissions_per_day_reach_the_deadline(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    add_form(database, "mttq", "M2", at(10, 15))  # another mail, same unit, same day
    add_form(database, "ldld", "M1", at(12))
    with database.session(write=False) as s:
        days = per_day(s, at(13), CAMPAIGN, date(2022, 2, 19))
    assert days[0] == DayCount(date(2022, 2, 10), 2)
    assert days[2] == DayCount(date(2022, 2, 12), 1)
    assert days[-1].day == date(2022, 2, 19) and len(days) == 10


def test_chart_is_a_small_deterministic_png() -> None:
    bars = (StateBar("complete", "Đã gửi đủ", 12), StateBar("missing", "Chưa gửi", 32))
    days = [DayCount(date(2022, 2, d), d % 3) for d in range(7, 21)]
    png = progress_png(bars, days, date(2022, 2, 19))
    assert png == progress_png(bars, days, date(2022, 2, 19))
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (600, 260)
        assert "Software" not in image.info
    other = progress_png(bars[:1], days, date(2022, 2, 19))
    assert other != png


def test_digest_mail_carries_the_chart_as_related_image(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    with database.session() as s:
        assert queue_digest(s, CAMPAIGN, CONFIG, at(14, 7, 30))
    [row] = outbox(database, "digest")  # the bytes the sender delivers later, image included
    msg = parse(row.raw)
    assert msg.get_content_type() == "multipart/mixed"
    [alternative, workbook] = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert workbook.get_filename().endswith(".xlsx")
    [text, related] = alternative.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    [html, image] = related.iter_parts()
    assert image.get_content_type() == "image/png"
    assert image["Content-Disposition"].startswith("inline")
    cid = image["Content-ID"].strip("<>")
    assert cid == "tien-do.20220214@mailbot.invalid"
    assert f'src="cid:{cid}"' in html.get_content()
    with Image.open(io.BytesIO(image.get_content())) as png:
        assert png.size == (600, 260)
    assert "Số lượt gửi biểu theo ngày: 10/02: 1" in text.get_content()


def test_events_are_said_in_words_without_machine_text(database) -> None:
    with database.session() as s:
        for kind, detail, unit in (
            ("send-failed", "reminder <r1@x> to ldld@thanhxuan.example: 550 no such user", None),
            ("send-delayed", "receipt <r2@x> to mttq@thanhxuan.example: 8 attempts, 421", None),
            ("oversize", f"{30 * 2**20} bytes from a@b.example", None),
            ("unreadable-file", "Mẫu 01.xlsx", "ldld"),
            ("disk-low", "80 MB", None),
        ):
            dbm.add_event(s, kind, at=at(12), detail=detail, unit_code=unit)
    names = {"ldld": "Liên đoàn Lao động quận Thanh Xuân"}
    with database.session(write=False) as s:
        items = needs_attention(s, None, at(13), CAMPAIGN, names)
    said = {i.kind_label: i.detail for i in items}
    assert said["Gửi thư thất bại"].startswith(
        "Thư nhắc hạn gửi ldld@thanhxuan.example không gửi được."
    )
    assert said["Thư gửi đi bị chậm"].startswith("Thư xác nhận gửi mttq@thanhxuan.example")
    assert said["Thư quá lớn"].startswith("Thư của a@b.example (30.0 MB) quá lớn")
    assert "Mẫu 01.xlsx của Liên đoàn Lao động quận Thanh Xuân" in said["Tệp không đọc được"]
    assert "còn 80 MB trống" in said["Ổ đĩa sắp đầy"]
    for detail in said.values():
        for machine in ("<r", "bytes", "attempts", "reminder", "receipt", "mailbot"):
            assert machine not in detail, (machine, detail)


def test_queued_digest_carries_signed_links_that_verify(database, tmp_path) -> None:
    """The digest as the scheduler builds it: real key file, real links, tokens that verify."""
    from dataclasses import replace
    from urllib.parse import parse_qs, urlsplit

    from mailbot.config import StaffConfig
    from mailbot.staff.links import digest_links
    from mailbot.staff.tokens import find_token, verify

    key = bytes(range(32))
    (tmp_path / "staff-token-key").write_bytes(key)
    config = replace(CONFIG, staff=StaffConfig(token_key_file=str(tmp_path / "staff-token-key")))
    held = _held(database, "dangbo.khuongtrung@gmail.example", "Gửi biểu mẫu")
    now = at(14, 7, 30)
    with database.session() as s:
        assert queue_digest(s, CAMPAIGN, config, now, link_for=digest_links(config, now, s))
    [row] = outbox(database, "digest")
    html = next(p for p in parse(row.raw).walk() if p.get_content_type() == "text/html")
    hrefs = [h for h in html.get_content().split('href="')[1:] if h.startswith("mailto:")]
    assert hrefs, "the digest offers one-click actions"
    got = set()
    for href in hrefs:
        link = href.split('"', 1)[0].replace("&amp;", "&")
        subject = parse_qs(urlsplit(link).query)["subject"][0]
        token = find_token(subject)
        assert token is not None
        action = verify(key, token, now)
        assert action.mail_id == held
        got.add((action.kind, action.unit_code))
    assert ("assign", "p-khuong-trung") in got and ("assign", None) in got
