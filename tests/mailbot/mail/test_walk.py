"""Reading real-client-shaped mails: headers, bodies and attachments wherever they hide."""

from __future__ import annotations

import importlib.util
import io
import unicodedata
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from mailbot.mail.body import html_to_text
from mailbot.mail.headers import decode_bytes, decode_header_text, header_param, sanitize_filename
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.zip import zip_member_name
from mailbot.mail.walk import parse_mail
from tests.mailbot.mail.pictures_support import jpeg

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


def _load_maker():
    spec = importlib.util.spec_from_file_location("make_mail", MAIL / "make_mail.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


make_mail = _load_maker()


def load(name: str):
    return parse_mail((MAIL / name).read_bytes())


def names(mail) -> list[str]:
    return [a.filename for a in mail.attachments]


def is_nfc(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)


def test_fixtures_are_what_the_generator_writes():
    for name, build in make_mail.FIXTURES.items():
        assert (MAIL / name).read_bytes() == build(), name


def test_gmail_rfc2231_filename_and_headers():
    mail = load("gmail_rfc2231.eml")
    assert mail.from_addr == "dangbo.khuongtrung@thanhxuan.example"  # lowercased
    assert mail.from_name == "Đảng ủy phường Khương Trung"
    assert mail.to == ("bdv_quthanhxuan@hanoi.gov.vn",)
    assert mail.subject == "Đăng ký mô hình Dân vận khéo 2022 - phường Khương Trung"
    assert mail.message_id == "<CAJx8Yk1=abc123+XYZ@mail.gmail.com>"
    assert mail.date == datetime(2022, 2, 14, 9, 12, 33, tzinfo=timezone(timedelta(hours=7)))
    assert names(mail) == ["Mẫu 01 - Đảng ủy phường Khương Trung.xlsx"]
    att = mail.attachments[0]
    assert att.content == make_mail.stand_in("Mẫu 01 - Đảng ủy phường Khương Trung.xlsx")
    assert att.content_type.endswith("spreadsheetml.sheet")
    assert att.origin == att.filename
    # multipart/alternative: the plain part is the body, not the HTML.
    assert mail.body_text.startswith("Kính gửi Ban Dân vận Quận ủy,")
    assert "<p>" not in mail.body_text
    assert mail.problems == ()
    assert mail.header("Authentication-Results").startswith("mx.hanoi.gov.vn;")


def test_outlook_rfc2047_split_multibyte_words():
    mail = load("outlook_rfc2047.eml")
    # The subject is two encoded-words cut inside one UTF-8 character.
    assert mail.subject == "Gửi biểu mẫu số 02 đăng ký Dân vận khéo"
    assert names(mail) == ["Mẫu số 02 - Hội Cựu chiến binh quận.docx"]
    assert mail.from_name == "Hội CCB quận Thanh Xuân"
    assert all(is_nfc(n) for n in names(mail))


def test_outlook_winmail_dat_is_unpacked():
    mail = load("outlook_winmail.eml")
    assert names(mail) == ["Mẫu 01 - Hội Liên hiệp Phụ nữ.xlsx", "Mẫu 02 - Chi hội Phụ nữ.docx"]
    assert mail.attachments[0].origin == "winmail.dat > Mẫu 01 - Hội Liên hiệp Phụ nữ.xlsx"
    assert mail.attachments[1].content == make_mail.stand_in("Mẫu 02.docx")
    assert not any(n.lower() == "winmail.dat" for n in names(mail))


def test_tnef_builder_round_trips_through_tnefparse():
    from tnefparse import TNEF

    tnef = TNEF(make_mail.build_tnef([("A.XLS", "Ắ.xlsx", b"x")]), do_checksum=True)
    assert [a.data for a in tnef.attachments] == [b"x"]


def test_broken_winmail_dat_is_a_problem_not_a_crash():
    raw = (MAIL / "outlook_winmail.eml").read_bytes()
    marker = b'filename="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    bad = raw.split(marker)[0] + marker
    bad += b"AAAAAAAAAAAA\r\n------=_NextPart_000_0001_01D82214.1A2B3C40--\r\n"
    mail = parse_mail(bad)
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["tnef-unreadable"]
    assert mail.problems[0].filename == "winmail.dat"
    assert "Outlook" in mail.problems[0].message


def test_thunderbird_rfc2231_continuations_and_octet_stream():
    mail = load("thunderbird_continuations.eml")
    assert names(mail) == [
        "Biểu tổng hợp đăng ký mô hình điển hình cấp Quận - Hội Người cao tuổi.docx",
        "Mau 01 (ban in).xls",
    ]
    assert mail.attachments[1].content_type == "application/vnd.ms-excel"
    assert "Hội Người cao tuổi quận gửi biểu đăng ký." in mail.body_text


def test_forwarded_mail_attachment_is_found():
    mail = load("forwarded.eml")
    assert names(mail) == ["Mẫu 01 - Phường Kim Giang.xlsx"]
    assert mail.attachments[0].origin == "Thư chuyển tiếp > Mẫu 01 - Phường Kim Giang.xlsx"
    # The outer mail is the one we answer.
    assert mail.from_addr == "dangbo.kimgiang@thanhxuan.example"
    assert mail.body_text == "Chuyển tiếp biểu đăng ký của Đảng ủy phường Kim Giang."


def test_forward_of_forward():
    mail = load("forward_of_forward.eml")
    assert [a.origin for a in mail.attachments] == [
        "Thư chuyển tiếp > Thư chuyển tiếp > Mẫu 01 - Phường Kim Giang.xlsx"
    ]


def test_base64_encoded_forward_is_still_read():
    inner = make_mail._forwardable_inner().encode()
    part = (
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="fw.eml"\r\n\r\n' + make_mail.b64(inner)
    )
    top = make_mail.headers([("From", "a@x.example"), ("MIME-Version", "1.0")])
    mail = parse_mail((top + make_mail.multipart("mixed", "z", [part])).encode())
    assert [a.origin for a in mail.attachments] == [
        "Thư chuyển tiếp > Mẫu 01 - Phường Kim Giang.xlsx"
    ]


def test_eml_file_attachment_is_read_as_a_forward():
    inner = make_mail._forwardable_inner().encode()
    mail = parse_mail(_mail_with("Thu goc.eml", inner, "application/octet-stream"))
    assert names(mail) == ["Mẫu 01 - Phường Kim Giang.xlsx"]


def test_multipart_without_boundary_keeps_its_text():
    raw = b"From: a@x.example\r\nContent-Type: multipart/mixed\r\n\r\nJust text.\r\n"
    assert parse_mail(raw).body_text == "Just text."


def test_forward_depth_is_bounded():
    inner = make_mail._forwardable_inner()
    for i in range(4):
        inner = make_mail.headers(
            [("From", f"f{i}@thanhxuan.example"), ("Subject", "Fwd"), ("MIME-Version", "1.0")]
        ) + make_mail.multipart("mixed", f"b{i}", ["Content-Type: message/rfc822\r\n\r\n" + inner])
    assert len(parse_mail(inner.encode()).attachments) == 1  # depth 4: read
    limited = parse_mail(inner.encode(), limits=ArchiveLimits(max_forward_depth=2))
    assert limited.attachments == ()
    assert [p.code for p in limited.problems] == ["forward-too-deep"]


def test_windows_1258_body_subject_and_filename():
    mail = load("windows1258_body.eml")
    assert mail.subject == "Đăng ký mô hình"
    assert mail.from_name == "Đảng bộ Công an quận"
    assert "Đảng bộ Công an quận gửi biểu đăng ký mô hình." in mail.body_text
    assert is_nfc(mail.body_text)
    assert names(mail) == ["Mẫu 01 Công an.xls"]


def test_html_only_body_in_windows_1258_from_meta():
    mail = load("html_only_cp1258.eml")
    assert "Hội Luật gia quận" in mail.body_text
    assert "Mẫu" in mail.body_text and "01" in mail.body_text
    assert "alert" not in mail.body_text and "<" not in mail.body_text
    assert "& tiếp" in mail.body_text


def test_zip_member_names_cp1258_and_mangled_utf8_and_junk_skipped():
    mail = load("zip_cp437.eml")
    assert names(mail) == [
        "Mẫu 01 - Khương Trung.xlsx",
        "Biểu đăng ký cơ sở.xlsx",
        "Mau 02 - To dan pho 5.docx",
    ]
    assert mail.attachments[0].origin == "HoSo.zip > Mẫu 01 - Khương Trung.xlsx"
    assert mail.attachments[2].origin == "HoSo.zip > them.zip > Mau 02 - To dan pho 5.docx"
    assert mail.problems == ()


def test_zip_unicode_path_extra_field():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x", b"data")
    info = zipfile.ZipInfo("MAU01~1.XLS")
    real = "Mẫu 01.xlsx".encode()
    import struct
    import zlib

    body = b"\x01" + struct.pack("<I", zlib.crc32(b"MAU01~1.XLS")) + real
    info.extra = struct.pack("<HH", 0x7075, len(body)) + body
    assert zip_member_name(info) == "Mẫu 01.xlsx"
    info.extra = struct.pack("<HH", 0x7075, len(body)) + b"\x01\x00\x00\x00\x00" + real
    assert zip_member_name(info) == "MAU01~1.XLS"  # stale field (CRC mismatch) ignored


def _mail_with(filename: str, data: bytes, ctype: str = "application/zip") -> bytes:
    att = make_mail.file_part(
        f'{ctype}; name="{filename}"', f'attachment; filename="{filename}"', data
    )
    top = make_mail.headers(
        [
            ("From", "a@thanhxuan.example"),
            ("To", "b@x.example"),
            ("Subject", "s"),
            ("MIME-Version", "1.0"),
        ]
    )
    return (top + make_mail.multipart("mixed", "bb", [make_mail.text_part("x"), att])).encode()


def test_zip_bomb_by_ratio_is_refused_without_expanding():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Mau 01.xlsx", b"\x00" * (30 * 1024 * 1024))
    data = buf.getvalue()
    assert len(data) < 100_000
    mail = parse_mail(_mail_with("bom.zip", data))
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["archive-too-large"]
    assert mail.problems[0].filename == "bom.zip"
    assert "bom.zip" in mail.problems[0].message


def test_zip_total_size_and_member_count_limits():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(5):
            zf.writestr(f"Mau {i}.xlsx", bytes(range(256)) * 40 + bytes([i]))
    data = buf.getvalue()
    assert len(parse_mail(_mail_with("ok.zip", data)).attachments) == 5
    small = ArchiveLimits(max_total_uncompressed=20_000)
    assert [p.code for p in parse_mail(_mail_with("a.zip", data), limits=small).problems] == [
        "archive-too-large"
    ]
    few = ArchiveLimits(max_members=3)
    assert [p.code for p in parse_mail(_mail_with("a.zip", data), limits=few).problems] == [
        "archive-too-many-files"
    ]


def test_zip_lying_about_sizes_is_caught():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Mau.xlsx", b"A" * 5000)
    data = bytearray(buf.getvalue())
    # Rewrite the declared uncompressed size (local header and central directory) to 10.
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    mail = parse_mail(_mail_with("liar.zip", bytes(data)))
    assert mail.attachments == ()
    assert mail.problems and mail.problems[0].code in ("archive-too-large", "archive-unreadable")


def test_nested_zip_depth_limit():
    def wrap(name: str, payload: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, payload)
        return buf.getvalue()

    three = wrap("b.zip", wrap("c.zip", wrap("Mau 01.xlsx", b"x")))
    mail = parse_mail(_mail_with("a.zip", three))
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["archive-too-deep"]
    assert mail.problems[0].origin == "a.zip > b.zip > c.zip"


def test_encrypted_zip_is_a_problem():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Mau 01.xlsx", b"secret")
    data = bytearray(buf.getvalue())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.index(sig)
        data[pos + off] |= 0x01  # the "encrypted" general purpose flag
    mail = parse_mail(_mail_with("mk.zip", bytes(data)))
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["archive-encrypted"]
    assert "mật khẩu" in mail.problems[0].message


def test_corrupt_zip_is_a_problem():
    mail = parse_mail(_mail_with("hong.zip", b"PK\x03\x04 not really a zip"))
    assert [p.code for p in mail.problems] == ["archive-unreadable"]


def test_rar_without_a_tool_asks_for_zip():
    mail = parse_mail((MAIL / "rar_attachment.eml").read_bytes(), rar=False)
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["archive-unsupported"]
    assert ".zip" in mail.problems[0].message
    assert mail.problems[0].filename == "Ho so.rar"


def test_rar_with_a_tool_is_opened_and_a_stand_in_holds_nothing():
    mail = parse_mail((MAIL / "rar_attachment.eml").read_bytes(), rar=True)
    assert mail.attachments == ()
    # A RAR5 signature followed by filler: rarfile lists no member in it.
    assert [p.code for p in mail.problems] == ["archive-empty"]
    assert mail.problems[0].filename == "Ho so.rar"


def test_path_tricks_are_neutralised():
    mail = load("path_trick.eml")
    got = names(mail)
    assert got[:2] == ["passwd.xlsx", "Mẫu 01.xlsx"]
    for name in got:
        assert "/" not in name and "\\" not in name and ".." not in name
        assert "\u202e" not in name
    assert got[3] == "evilgpj.pdf"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.xlsx", "passwd.xlsx"),
        ("C:\\Users\\a\\Mẫu 01.xlsx", "Mẫu 01.xlsx"),
        ("..", "tệp đính kèm"),
        ("a\x00b\r\nc.xlsx", "abc.xlsx"),
        ("Mau:01?.xlsx", "Mau_01_.xlsx"),
        ("M\u0061\u0302\u0303u.xlsx", "Mẫu.xlsx"),
        (" .hidden.xlsx ", "hidden.xlsx"),
    ],
)
def test_sanitize_filename(raw, expected):
    assert sanitize_filename(raw) == expected


def test_sanitize_filename_bounds_length_keeping_extension():
    name = sanitize_filename("Mẫu " * 100 + ".xlsx")
    assert len(name) <= 150 and name.endswith(".xlsx")


def test_raw_utf8_in_headers():
    mail = load("raw_utf8_headers.eml")
    assert mail.subject == "Gửi biểu mẫu 02"
    assert mail.from_name == "Đảng ủy phường Nhân Chính"
    assert names(mail) == ["Mẫu 02 - Phường Nhân Chính.docx"]


def test_inline_images_skipped_scans_and_documents_kept():
    mail = load("inline_images.eml")
    assert names(mail) == [
        "Scan Mau 01.jpg",
        "Mau 02.docx",
        "Chỉ có tên trong Content-Type.xlsx",
    ]
    assert mail.attachments[0].is_image
    assert mail.attachments[1].content_type.endswith("wordprocessingml.document")
    assert mail.body_text == "Xem biểu"


def test_unnamed_octet_stream_gets_a_name_by_its_bytes():
    wb = Workbook()
    wb.active["A1"] = "Mẫu 01"
    buf = io.BytesIO()
    wb.save(buf)
    att = make_mail.file_part("application/octet-stream", "attachment", buf.getvalue())
    top = make_mail.headers([("From", "a@x.example"), ("MIME-Version", "1.0")])
    mail = parse_mail((top + make_mail.multipart("mixed", "q", [att])).encode())
    assert names(mail) == ["Tệp đính kèm 1.xlsx"]
    got = load_workbook(io.BytesIO(mail.attachments[0].content), read_only=True)
    try:
        assert got.active["A1"].value == "Mẫu 01"
    finally:
        got.close()


def test_attachment_over_size_limit_is_a_problem():
    raw = _mail_with("Mau 01.xlsx", b"x" * 5000, "application/octet-stream")
    mail = parse_mail(raw, max_attachment_bytes=1000)
    assert mail.attachments == ()
    assert [p.code for p in mail.problems] == ["file-too-large"]
    assert "Mau 01.xlsx" in mail.problems[0].message


def test_other_archives_named_as_unsupported():
    mail = parse_mail(_mail_with("ho so.7z", b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"))
    assert [p.code for p in mail.problems] == ["archive-unsupported"]


def test_malformed_mail_does_not_raise():
    mail = load("malformed.eml")
    assert mail.from_addr == ""
    assert mail.date is None
    assert mail.message_id == "<no-angle-brackets@thanhxuan.example>"
    assert mail.subject.endswith("oké")
    assert mail.body_text == "Hello world"
    assert len(mail.attachments) == 1
    assert mail.attachments[0].filename.endswith(".xls")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_exception(data):
    mail = parse_mail(data)
    assert isinstance(mail.body_text, str)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_header_text_decodes(text):
    assert is_nfc(decode_header_text(text))
    header_param("attachment; " + text, "filename")


def test_header_param_forms():
    assert header_param("attachment; filename*=utf-8''%E1%BA%A1.xlsx", "filename") == "ạ.xlsx"
    assert header_param("attachment; filename*=''Ma%CC%83u.xlsx", "filename") == "Mãu.xlsx"
    assert header_param('attachment; filename="a\\"b.xlsx"', "filename") == 'a"b.xlsx'
    assert header_param("attachment; filename*=iso-8859-1''caf%E9.pdf", "filename") == "café.pdf"
    assert header_param('attachment; FILENAME="=?windows-1258?Q?M=E2=DEu?=.doc"', "filename") == (
        "Mẫu.doc"
    )
    assert header_param("inline", "filename") is None


def test_decode_bytes_fallbacks():
    assert decode_bytes("Mẫu".encode(), "iso-8859-1") == "Mẫu"  # mislabelled UTF-8
    assert decode_bytes("café".encode("latin-1"), "iso-8859-1") == "café"
    assert decode_bytes(make_mail.enc("Mẫu", "cp1258"), None).startswith("M")
    assert unicodedata.normalize("NFC", decode_bytes(make_mail.enc("Mẫu", "cp1258"))) == "Mẫu"
    assert decode_bytes(b"ok \xff", "no-such-charset").startswith("ok ")


def test_html_to_text():
    text = html_to_text("<p>A&nbsp;b</p><br><div>c<script>x</script></div><style>p{}</style>")
    assert text.split("\n")[0] == "A b"
    assert "x" not in text and "p{}" not in text and "c" in text


def test_problem_as_file_result():
    mail = parse_mail(_mail_with("hong.zip", b"PK\x03\x04 broken"))
    result = mail.problems[0].as_result()
    assert result.file == "hong.zip"
    assert result.format == "other"
    assert result.has_errors
    assert result.to_json()["problems"][0]["code"] == "archive-unreadable"
    assert result.to_json()["problems"][0]["location"] == "hong.zip"


# ---------------------------------------------------------------------------
# Mails shaped by clients and habits the first corpus did not cover


def _raw_mail(body_part: str, *extra: str, sender: str = "a@thanhxuan.example") -> bytes:
    head = "\r\n".join(
        [f"From: {sender}", "To: b@x.example", "Subject: s", "MIME-Version: 1.0", *extra]
    )
    return (head + "\r\n" + body_part).encode()


def _file(ctype: str, disposition: str | None, data: bytes) -> str:
    return make_mail.file_part(ctype, disposition, data)


def _mixed(*parts: str) -> str:
    return make_mail.multipart("mixed", "bnd", [make_mail.text_part("x"), *parts])


def _xlsx_bytes(text: str = "x") -> bytes:
    wb = Workbook()
    wb.active["A1"] = text
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_the_same_file_attached_twice_counts_once():
    data = _xlsx_bytes()
    part = _file(
        f'{make_mail.XLSX}; name="Mau 01.xlsx"', 'attachment; filename="Mau 01.xlsx"', data
    )
    other = _file(
        f'{make_mail.XLSX}; name="Mau 02.xlsx"',
        'attachment; filename="Mau 02.xlsx"',
        _xlsx_bytes("y"),
    )
    mail = parse_mail(_raw_mail(_mixed(part, part, other)))
    assert [a.filename for a in mail.attachments] == ["Mau 01.xlsx", "Mau 02.xlsx"]


def test_an_empty_attachment_is_still_named():
    part = _file('application/msword; name="Mau 02.doc"', 'attachment; filename="Mau 02.doc"', b"")
    mail = parse_mail(_raw_mail(_mixed(part, part)))
    assert [(a.filename, a.size) for a in mail.attachments] == [("Mau 02.doc", 0)] * 2


def test_invitations_business_cards_and_signatures_are_not_files():
    parts = [
        _file('text/calendar; method=REQUEST; name="invite.ics"', "attachment", b"BEGIN:VCALENDAR"),
        _file(
            'application/octet-stream; name="Nguyen Van A.vcf"',
            'attachment; filename="Nguyen Van A.vcf"',
            b"BEGIN:VCARD",
        ),
        _file('text/x-vcard; name="card"', None, b"BEGIN:VCARD"),
        _file('application/octet-stream; name="smime.p7s"', None, b"0\x82"),
    ]
    assert parse_mail(_raw_mail(_mixed(*parts))).attachments == ()


def test_nameless_inline_document_from_a_copier_is_kept_by_its_bytes():
    data = _xlsx_bytes()
    parts = [
        _file("application/octet-stream", "inline", data),
        _file("application/haansoftdocx", None, b"PK\x03\x04 not really"),
        _file("application/json", None, b"{}"),
    ]
    mail = parse_mail(_raw_mail(_mixed(*parts)))
    names = [a.filename for a in mail.attachments]
    assert names[0] == "Tệp đính kèm 1.xlsx" and mail.attachments[0].content == data
    assert names[1:] == ["Tệp đính kèm 2.docx"]  # Samsung's Hancom type names the format


def test_lossy_ascii_filename_loses_to_the_encoded_name():
    name = "Mẫu 01 - Phường Hạ Đình.xlsx"
    part = _file(
        f"{make_mail.XLSX}; name*={make_mail.rfc2231(name)}",
        'attachment; filename="M?u 01 - Ph??ng H? ?inh.xlsx"',
        b"PK\x03\x04",
    )
    assert parse_mail(_raw_mail(_mixed(part))).attachments[0].filename == name


def test_uuencoded_file_in_a_plain_body_is_extracted_and_hidden_from_the_text():
    import binascii

    data = bytes(range(256)) * 3
    lines = [
        binascii.b2a_uu(data[i : i + 45]).decode().rstrip("\n") for i in range(0, len(data), 45)
    ]
    body = "Gui bieu.\r\n\r\nbegin 644 Mau 01.xls\r\n" + "\r\n".join(lines) + "\r\n`\r\nend\r\n"
    mail = parse_mail(_raw_mail("\r\n" + body))
    assert [(a.filename, a.content) for a in mail.attachments] == [("Mau 01.xls", data)]
    assert mail.body_text == "Gui bieu."


def test_x_uuencode_transfer_encoding_is_decoded():
    import binascii

    data = b"\xd0\xcf\x11\xe0" + bytes(range(200))
    uu = (
        "begin 644 Mau.xls\r\n"
        + "".join(
            binascii.b2a_uu(data[i : i + 45]).decode().replace("\n", "\r\n")
            for i in range(0, len(data), 45)
        )
        + "`\r\nend\r\n"
    )
    part = (
        'Content-Type: application/vnd.ms-excel; name="Mau.xls"\r\n'
        "Content-Transfer-Encoding: x-uuencode\r\n\r\n" + uu
    )
    assert parse_mail(_raw_mail(_mixed(part))).attachments[0].content == data


def test_quoted_printable_binary_attachment_is_decoded():
    data = bytes(range(256)) * 4
    encoded = "".join(f"={b:02X}" for b in data)
    qp_lines = "=\r\n".join(encoded[i : i + 72] for i in range(0, len(encoded), 72))
    part = (
        'Content-Type: application/octet-stream; name="Mau 01.xlsx"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp_lines
    )
    assert parse_mail(_raw_mail(_mixed(part))).attachments[0].content == data


def _tar(members: list[tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode,name", [("w:gz", "a.tar.gz"), ("w:bz2", "a.tbz2"), ("w:xz", "a.tar.xz"), ("w", "a.tar")]
)
def test_tar_archives_are_opened_without_following_links(mode, name):
    data = _tar([("bieu/Mẫu 01.xlsx", b"one"), ("bieu/.DS_Store", b"x")], mode)
    mail = parse_mail(_mail_with(name, data, "application/octet-stream"))
    assert [(a.filename, a.content, a.origin) for a in mail.attachments] == [
        ("Mẫu 01.xlsx", b"one", f"{name} > Mẫu 01.xlsx")
    ]
    assert mail.problems == ()


def test_single_gzipped_file_and_gzip_bomb():
    import gzip

    mail = parse_mail(_mail_with("Mau 01.xlsx.gz", gzip.compress(b"PK\x03\x04 form")))
    assert [a.filename for a in mail.attachments] == ["Mau 01.xlsx"]
    bomb = gzip.compress(b"\x00" * (30 * 1024 * 1024))
    mail = parse_mail(_mail_with("x.gz", bomb, "application/gzip"))
    assert mail.attachments == () and [p.code for p in mail.problems] == ["archive-too-large"]
    mail = parse_mail(_mail_with("x.tgz", b"\x1f\x8b\x08\x00garbage", "application/gzip"))
    assert [p.code for p in mail.problems] == ["archive-unreadable"]


def test_seven_zip_is_named_as_unsupported():
    mail = parse_mail(_mail_with("Ho so.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 20))
    assert [(p.code, p.filename) for p in mail.problems] == [("archive-unsupported", "Ho so.7z")]


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _signed_data(entity: bytes, indefinite: bool = False) -> bytes:
    oid_data = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    oid_signed = _der(0x06, bytes.fromhex("2a864886f70d010702"))
    if indefinite:  # BER: indefinite lengths and a chunked OCTET STRING
        chunks = b"".join(_der(0x04, entity[i : i + 50]) for i in range(0, len(entity), 50))
        content = b"\xa0\x80" + b"\x24\x80" + chunks + b"\x00\x00" + b"\x00\x00"
        encap = b"\x30\x80" + oid_data + content + b"\x00\x00"
    else:
        encap = _der(0x30, oid_data + _der(0xA0, _der(0x04, entity)))
    signed = _der(0x30, _der(0x02, b"\x01") + _der(0x31, b"") + encap + _der(0x31, b""))
    return _der(0x30, oid_signed + _der(0xA0, signed))


@pytest.mark.parametrize("indefinite", [False, True])
def test_opaque_smime_signed_mail_is_opened(indefinite):
    inner = _raw_mail(
        _mixed(
            _file('application/octet-stream; name="Mau 01.xlsx"', "attachment", b"PK\x03\x04 form")
        )
    )
    p7m = _file(
        'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
        'attachment; filename="smime.p7m"',
        _signed_data(inner, indefinite),
    )
    mail = parse_mail(_raw_mail(p7m))
    got = [(a.filename, a.content) for a in mail.attachments]
    assert got == [("Mau 01.xlsx", b"PK\x03\x04 form")]
    assert mail.problems == ()


def test_encrypted_mail_is_reported_not_read_as_a_file():
    enveloped = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010703")) + _der(0xA0, b""))
    smime = _file(
        'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        'attachment; filename="smime.p7m"',
        enveloped,
    )
    pgp = make_mail.multipart(
        "encrypted",
        "enc",
        [
            "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n",
            'Content-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n-----BEGIN PGP',
        ],
        '; protocol="application/pgp-encrypted"',
    )
    for body in (smime, pgp):
        mail = parse_mail(_raw_mail(body))
        assert mail.attachments == ()
        assert [p.code for p in mail.problems] == ["mail-encrypted"]
        assert "không mã hóa" in mail.problems[0].message


def test_garbage_pkcs7_never_raises():
    for junk in (
        b"",
        b"0",
        b"0\x80\x06",
        b"0\x84\xff\xff\xff\xff",
        b"\x30\x03\x06\x01\x2a" * 3,
        b"0\x80" * 100,
    ):
        p7m = _file('application/pkcs7-mime; name="smime.p7m"', None, junk)
        mail = parse_mail(_raw_mail(p7m))
        assert mail.attachments == () and [p.code for p in mail.problems] == ["mail-encrypted"]


def test_sender_header_stands_in_for_a_missing_from():
    raw = (
        b"Sender: Dang uy <DangBo.HaDinh@ThanhXuan.example>\r\nTo: undisclosed-recipients:;\r\n"
        b"Subject: s\r\n\r\nx\r\n"
    )
    mail = parse_mail(raw)
    assert (mail.from_name, mail.from_addr) == ("Dang uy", "dangbo.hadinh@thanhxuan.example")
    assert mail.to == ()


def test_display_names_with_commas_quotes_and_raw_cp1258():
    raw = (
        b'From: "Nguyen Van An, VP Dang uy \\"Thuong Dinh\\"" <DANGBO.THUONGDINH@X.EXAMPLE>\r\n'
        b"Reply-To: " + "Lê Thị Mai".encode("cp1258", "replace") + b" <Mai.LT@gmail.example>\r\n"
        b"Subject: " + "Gửi biểu".encode("cp1258", "replace") + b"\r\n\r\nx\r\n"
    )
    mail = parse_mail(raw)
    assert mail.from_name == 'Nguyen Van An, VP Dang uy "Thuong Dinh"'
    assert mail.from_addr == "dangbo.thuongdinh@x.example"
    assert mail.reply_to == ("mai.lt@gmail.example",)


def _related_picture(name: str | None, data: bytes, disposition: str = "inline") -> str:
    """An HTML body with one picture in multipart/related, as iPhone, Gmail and Outlook send."""
    ctype = f'image/jpeg; name="{name}"' if name else "image/jpeg"
    disp = f'{disposition}; filename="{name}"' if name else disposition
    picture = make_mail.file_part(ctype, disp, data, "Content-ID: <pic-1@x>\r\n")
    html = make_mail.text_part('<p>Biểu</p><img src="cid:pic-1@x">', "html")
    return make_mail.multipart("related", "rel", [html, picture])


def test_named_inline_photo_of_a_page_is_kept_and_a_logo_is_not():
    photo = jpeg(1200, 1600)
    logo = jpeg(180, 60)
    kept = parse_mail(_raw_mail(_related_picture("IMG_0412.jpeg", photo)))
    assert [(a.filename, a.is_image) for a in kept.attachments] == [("IMG_0412.jpeg", True)]
    assert kept.attachments[0].content == photo
    assert parse_mail(_raw_mail(_related_picture("image001.jpg", logo))).attachments == ()
    # Pictures without a name are parts of the text (a pasted screenshot), never files.
    assert parse_mail(_raw_mail(_related_picture(None, photo))).attachments == ()
