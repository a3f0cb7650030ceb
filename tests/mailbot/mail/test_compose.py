"""Outgoing mail: parse the composed bytes back and check threading, loop headers, parts, names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.header import Header, decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.compose import (
    Related,
    _break_at_text_spaces,
    _utf8_words,
    compose,
    message_ids,
    new_message_id,
    reply_subject,
)
from outbox_templates import Rendered

FROM = "bdv_quthanhxuan@hanoi.gov.vn"
FROM_NAME = "Ban Dân vận Quận ủy Thanh Xuân"
DOMAIN = "mailbot.thanhxuan.example"
RENDERED = Rendered(
    subject="Xác nhận tiếp nhận hồ sơ – Đảng ủy phường Khương Trung",
    text="Kính gửi: Đảng ủy phường Khương Trung,\nĐã nhận Mẫu số 01 – cấp Quận.\nTrân trọng.\n",
    html='<!DOCTYPE html><html lang="vi"><body><p>Kính gửi: <strong>Đảng ủy phường '
    "Khương Trung</strong></p><p>Trân trọng.</p></body></html>\n",
)
# A Gmail-shaped long Message-ID: the stdlib would RFC 2047-encode it in References.
PARENT = (
    "<CAK9xyzq1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP_1234567890+x@mail.gmail.com>"
)
ROOT = "<root.1@outlook.example>"
MIDDLE = "<abc.2@thanhxuan.example>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _reply(**changes: object) -> tuple[str, bytes]:
    kwargs: dict[str, object] = {
        "rendered": RENDERED,
        "from_addr": FROM,
        "from_name": FROM_NAME,
        "to": ["Nguyễn Văn An <an.nv@gmail.example>"],
        "message_id_domain": DOMAIN,
        "auto_submitted": "auto-replied",
        "in_reply_to": PARENT,
        "references": [f"{ROOT} {MIDDLE}"],
        "original_subject": "RE: Re: TL: Gửi đăng ký mô hình Dân vận khéo",
        "date": datetime(2022, 2, 14, 9, 41, 5, tzinfo=timezone(timedelta(hours=7))),
    }
    kwargs.update(changes)
    return compose(**kwargs)  # type: ignore[arg-type]


def test_reply_headers_thread_and_loop_safety() -> None:
    mid, raw = _reply()
    msg = _parse(raw)
    assert msg["Subject"] == "Re: Gửi đăng ký mô hình Dân vận khéo"
    assert msg["In-Reply-To"] == PARENT
    assert msg["References"].split() == [ROOT, MIDDLE, PARENT]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Loop"] == FROM
    assert msg["Precedence"] == "auto_reply"
    assert msg["Message-ID"] == mid
    assert re.fullmatch(rf"<[^<>@\s]+@{re.escape(DOMAIN)}>", mid)
    assert parsedate_to_datetime(msg["Date"]) == datetime(2022, 2, 14, 2, 41, 5, tzinfo=UTC)
    assert msg["To"].addresses[0].addr_spec == "an.nv@gmail.example"
    assert msg["To"].addresses[0].display_name == "Nguyễn Văn An"


def test_from_display_name_round_trips_and_is_encoded() -> None:
    _, raw = _reply()
    msg = _parse(raw)
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (FROM_NAME, FROM)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.isascii()  # every header RFC 2047-encoded
    assert not body.isascii()  # the text parts are 8bit UTF-8 (RFC 6152)


def test_message_ids_are_never_encoded_words_and_lines_stay_short() -> None:
    _, raw = _reply(references=[" ".join(f"<id{i}.{'x' * 60}@host.example>" for i in range(8))])
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    threading = re.findall(r"^(?:In-Reply-To|References):.*(?:\r\n[ \t].*)*", head, re.M)
    assert len(threading) == 2
    assert all("=?" not in h for h in threading)
    assert f"In-Reply-To: {PARENT}" in head
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere


def test_references_are_deduplicated_and_capped() -> None:
    chain = [f"<m{i}@h.example>" for i in range(30)]
    _, raw = _reply(references=[" ".join(chain), chain[3]], in_reply_to=chain[5])
    refs = _parse(raw)["References"].split()
    assert len(refs) == 20 and len(set(refs)) == 20
    assert refs[0] == chain[0] and refs[-1] == chain[5]


def test_both_alternatives_carry_the_rendered_words() -> None:
    _, raw = _reply()
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # on the wire every line ends in CRLF
    assert plain.get_content().replace("\r\n", "\n") == RENDERED.text
    assert html.get_content().replace("\r\n", "\n") == RENDERED.html
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_attachments_with_vietnamese_names_round_trip() -> None:
    files = [
        ("Mẫu số 01 – Đăng ký mô hình “Dân vận khéo” cấp Quận.xlsx", b"PK\x03\x04xlsx", XLSX),
        (
            "Mẫu số 02.docx",
            b"PK\x03\x04docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("../../ghi chú\r\n.csv", "TT,Tên\n1,Ấp\n".encode(), "text/csv"),
        ("lạ.bin", b"\x00\x01", "not a type"),
    ]
    _, raw = _reply(attachments=files)
    assert b"filename*" in raw  # RFC 2231
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(preferencelist=("html",))
    assert body is not None and "Khương Trung" in body.get_content()
    got = [
        (p.get_filename(), p.get_content(), p.get_content_type()) for p in msg.iter_attachments()
    ]
    assert got[0] == (files[0][0], files[0][1], XLSX)
    assert got[1][:2] == ("Mẫu số 02.docx", b"PK\x03\x04docx")
    assert got[2] == ("ghi chú.csv", "TT,Tên\n1,Ấp\n", "text/csv")
    assert got[3] == ("lạ.bin", b"\x00\x01", "application/octet-stream")


def test_related_image_sits_with_the_html_that_shows_it() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    chart = Related("tien-do.20220214@thanhxuan.example", png, "image/png", "tien-do.png")
    _, raw = _reply(related=[chart])
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/alternative"  # no attachment: no mixed
    [text, related] = msg.iter_parts()
    assert (text.get_content_type(), related.get_content_type()) == (
        "text/plain",
        "multipart/related",
    )
    assert related.get_param("type") == "text/html"
    [html, image] = related.iter_parts()
    assert html.get_content_type() == "text/html" and "Khương Trung" in html.get_content()
    assert image["Content-ID"] == "<tien-do.20220214@thanhxuan.example>"
    assert image.get_content_disposition() == "inline" and image.get_filename() == "tien-do.png"
    assert image.get_content() == png
    assert list(msg.iter_attachments()) == []  # clients show it in the text, not as a file


@pytest.mark.parametrize(
    "related",
    [
        Related("a b@x", b"x", "image/png", "a.png"),
        Related("ảnh@x", b"x", "image/png", "a.png"),
        Related("a@x", b"x", "image/png", "ảnh.png"),
    ],
)
def test_related_part_needs_a_plain_content_id_and_name(related: Related) -> None:
    with pytest.raises(ValueError, match="Content-ID|file name"):
        _reply(related=[related])


def test_new_mail_without_a_thread() -> None:
    mid, raw = compose(
        rendered=RENDERED,
        from_addr=FROM,
        from_name=FROM_NAME,
        to=["hoiphunu@thanhxuan.example", "mttq@thanhxuan.example"],
        message_id_domain=DOMAIN,
        auto_submitted="auto-generated",
    )
    msg = _parse(raw)
    assert msg["Subject"] == RENDERED.subject
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Precedence"] == "bulk"
    assert [a.addr_spec for a in msg["To"].addresses] == [
        "hoiphunu@thanhxuan.example",
        "mttq@thanhxuan.example",
    ]
    sent = parsedate_to_datetime(msg["Date"])
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 120
    assert mid.endswith(f"@{DOMAIN}>")


def test_given_message_id_is_kept_so_a_resend_is_the_same_mail() -> None:
    queued = new_message_id(DOMAIN)
    first_id, first = _reply(message_id=queued)
    second_id, second = _reply(message_id=queued)
    assert first_id == second_id == queued
    assert _parse(first)["Message-ID"] == _parse(second)["Message-ID"] == queued
    with pytest.raises(ValueError):
        _reply(message_id="two <a@b> ids <c@d>")


def test_header_injection_through_the_original_subject_is_flattened() -> None:
    _, raw = _reply(original_subject="Hồ sơ\r\nBcc: attacker@evil.example\r\n\r\nxin chào")
    msg = _parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Re: Hồ sơ Bcc: attacker@evil.example xin chào"


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Gửi mẫu", "Re: Gửi mẫu"),
        ("Re: Gửi mẫu", "Re: Gửi mẫu"),
        ("RE: Re:Re[3]: Gửi mẫu", "Re: Gửi mẫu"),
        ("TL: Trả lời: Gửi mẫu", "Re: Gửi mẫu"),
        ("Fwd: Gửi mẫu", "Re: Fwd: Gửi mẫu"),
        ("Report on Q1", "Re: Report on Q1"),
        ("   ", "Bản tự tạo"),
        (None, "Bản tự tạo"),
    ],
)
def test_reply_subject(original: str | None, expected: str) -> None:
    assert reply_subject(original, "Bản tự tạo") == expected


def test_message_ids_helper() -> None:
    assert message_ids(f"{ROOT}\r\n {MIDDLE}") == [ROOT, MIDDLE]
    assert message_ids("bare@id.example") == ["<bare@id.example>"]
    assert message_ids("<ok@x> <bad\u00e9@x>") == ["<ok@x>"]
    assert message_ids(None) == [] and message_ids("") == []


def test_new_message_id_is_unique_and_in_our_domain() -> None:
    ids = {new_message_id(DOMAIN) for _ in range(200)}
    assert len(ids) == 200 and all(i.endswith(f"@{DOMAIN}>") for i in ids)
    idn = new_message_id("bưu-điện.example")
    assert idn.isascii() and idn.endswith("@" + "bưu-điện.example".encode("idna").decode() + ">")
    with pytest.raises(ValueError):
        new_message_id("bad domain")


@pytest.mark.parametrize(
    "changes",
    [
        {"auto_submitted": "no"},
        {"to": []},
        {"to": ["  "]},
        {"date": datetime(2022, 2, 14, 9, 41)},  # naive
    ],
)
def test_misuse_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _reply(**changes)


_HEADER_TEXT = st.text(
    alphabet=st.sampled_from("aăđêôơư ÀẢẪẬĐỆ–“”😀=?_!*+-/,.:\t\x00\u0301\u2028\x85\n"), min_size=1
)


@settings(max_examples=400, deadline=None)
@given(value=_HEADER_TEXT, name=st.sampled_from(["Subject", "X-Loop", "X-Long-Header-Name-Here"]))
def test_encoded_words_fold_as_the_email_package_does(value: str, name: str) -> None:
    if value.isascii():
        return
    expected = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    assert _utf8_words(name, value) == expected


def test_a_long_vietnamese_subject_takes_several_encoded_words() -> None:
    subject = "Biểu đăng ký mô hình Dân vận khéo của Đảng ủy phường Khương Đình, quận Thanh Xuân"
    folded = _utf8_words("Subject", subject)
    assert folded.count("\r\n ") >= 2
    assert str(make_header(decode_header(folded))) == subject


def _cte(msg: EmailMessage) -> list[tuple[str, str]]:
    return [(p.get_content_type(), p["Content-Transfer-Encoding"]) for p in msg.walk()][1:]


def test_text_parts_go_as_8bit_utf8_when_every_line_fits() -> None:
    _, raw = _reply()
    assert _cte(_parse(raw)) == [("text/plain", "8bit"), ("text/html", "8bit")]
    assert "Đảng ủy phường Khương Trung".encode() in raw  # as it is, not escaped
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def _sent_8bit_html(html: str) -> str:
    """The HTML part of a mail composed with `html`, as it arrives; both parts went 8bit."""
    _, raw = _reply(rendered=Rendered(RENDERED.subject, RENDERED.text, html))
    msg = _parse(raw)
    assert _cte(msg) == [("text/plain", "8bit"), ("text/html", "8bit")]
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    sent = part.get_content().replace("\r\n", "\n")
    assert all(len(line.encode()) <= 998 for line in sent.split("\n"))
    return sent


def test_a_long_table_row_is_broken_between_cells_and_shows_the_same() -> None:
    cells = "".join(f'<td style="padding:5px 7px;font:13px Arial">Ô số {n}</td>' for n in range(30))
    html = f"<table><tr>{cells}</tr><tr>{cells}</tr></table>\n"
    assert len(html.encode()) > 998
    sent = _sent_8bit_html(html)
    assert sent != html and sent.replace("\n", "") == html.replace("\n", "")
    assert re.search(r"</td>\n<td", sent) and re.search(r"</tr>\n<tr>", sent)


def test_a_long_paragraph_is_broken_at_spaces_between_words() -> None:
    units = "; ".join(f"Chi bộ Khu dân cư số {n} phường Hạ Đình" for n in range(60))
    html = f'<p style="margin:0 0 6px 0;font-size:13px">{units}.</p>\n<p>Trân trọng.</p>\n'
    assert len(html.encode()) > 3 * 998
    sent = _sent_8bit_html(html)
    assert len(sent.splitlines()) > 4 and sent.replace("\n", " ") == html.replace("\n", " ")
    assert sent.startswith('<p style="margin:0 0 6px 0;font-size:13px">Chi')  # no tag was cut


@pytest.mark.parametrize(
    "html",
    [
        "<pre>" + "chữ " * 400 + "</pre>\n",  # there a line break shows as one
        '<p style="white-space:pre-wrap">' + "chữ " * 400 + "</p>\n",
        '<p title="' + "x" * 1200 + '">chữ</p>\n',  # one long word inside a tag
    ],
)
def test_a_line_too_long_to_break_safely_goes_quoted_printable(html: str) -> None:
    text = "Nội dung " * 200 + "\n"  # plain text is never re-wrapped: one paragraph
    _, raw = _reply(rendered=Rendered(RENDERED.subject, text, html))
    msg = _parse(raw)
    assert _cte(msg) == [("text/plain", "quoted-printable"), ("text/html", "quoted-printable")]
    plain = msg.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == text
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


@pytest.mark.parametrize("name", ["report.xlsx", "Tổng hợp Mẫu 01 – Dân vận khéo 2022.xlsx"])
def test_every_part_has_its_header_apart_from_its_body(name: str) -> None:
    data = b"PK\x03\x04" + bytes(range(256)) * 4
    image = Related("logo@mailbot", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png", "logo.png")
    html = '<p>Xem <img src="cid:logo@mailbot"></p>\n'
    _, raw = _reply(
        rendered=Rendered(RENDERED.subject, RENDERED.text, html),
        attachments=[(name, data, XLSX)],
        related=[image],
    )
    msg = _parse(raw)
    assert [(p.get_content_type(), p.defects) for p in msg.walk() if p.defects] == []
    files = [p for p in msg.walk() if p.get_content_disposition() == "attachment"]
    assert [(f.get_filename(), f.get_payload(decode=True)) for f in files] == [(name, data)]
    # Strictly: each part's header ends with an empty line before its body.
    for chunk in re.split(rb"(?m)^--=_[0-9a-f]{32}(?:--)?\r\n", raw)[1:]:
        if chunk.strip():
            assert b"\r\n\r\n" in chunk
            head = chunk.split(b"\r\n\r\n", 1)[0]
            assert all(re.match(rb"[\w-]+:|[ \t]", line) for line in head.split(b"\r\n"))


_WORD = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyỳỹ.;,", min_size=1, max_size=30)
_TAG = st.sampled_from(
    ['<b style="font:bold 13px Arial">', "</b>", "<br>", '<a href="x y">', "</a>"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_WORD, _TAG, st.just(" ")), min_size=1, max_size=900))
def test_breaking_at_spaces_only_turns_spaces_outside_tags_into_line_breaks(
    bits: list[str],
) -> None:
    html = "".join(bits)
    out = _break_at_text_spaces(html)
    assert out.replace("\n", " ") == html
    assert out.count("<") == html.count("<") and "\n" not in "".join(
        t for t in re.findall(r"<[^>]*>", out)
    )
    pieces = out.split("\n")
    if len(html.encode()) > 998:
        # Each piece fits unless it holds no space outside a tag to cut at.
        assert all(len(p.encode()) <= 998 or " " not in re.sub(r"<[^>]*>", "", p) for p in pieces)
    else:
        assert out == html
