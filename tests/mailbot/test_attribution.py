"""Each form counts once, for the unit it names; a new version says what it replaced."""

from __future__ import annotations

import email
from datetime import datetime
from email import policy
from zoneinfo import ZoneInfo

import pytest

from mailbot.decision import Outcome, PriorVersion, model_label
from mailbot.intake import process_mail
from mailbot.units import Register, Unit, UnitsFileError, read_units
from tests.mailbot.intake_support import INTAKE, context, sample_register

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WARD = "Đảng ủy phường Khương Đình"


def _mail(name: str) -> bytes:
    return (INTAKE / name).read_bytes()


def _text(outcome: Outcome) -> str:
    assert outcome.reply is not None
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    return " ".join(msg.get_body(("plain",)).get_content().split())


def _html(outcome: Outcome) -> str:
    assert outcome.reply is not None
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    return msg.get_body(("html",)).get_content()


def test_own_form_then_forwarded_forms_of_units_below_each_count_for_their_unit():
    ctx = context()
    own = process_mail(_mail("attribution_1_ward_own.eml"), ctx)
    assert [(s.unit_code, s.sent_by, s.awaiting) for s in own.submissions] == [
        ("p-khuong-dinh", "p-khuong-dinh", False)
    ]
    on_file = {
        ("p-khuong-dinh", "M2"): PriorVersion(
            datetime(2022, 2, 15, 8, 0, tzinfo=TZ),
            tuple(model_label(e.name, e.model) for e in own.submissions[0].form.entries),
        )
    }
    ctx = context(versions_on_file=on_file, forms_on_file={"p-khuong-dinh": frozenset({"M2"})})
    for name, code, unit_name in (
        (
            "attribution_2_forward_school.eml",
            "cb-thcs-khuong-dinh",
            "Chi bộ Trường THCS Khương Đình",
        ),
        (
            "attribution_3_forward_youth.eml",
            "doan-khuong-dinh",
            "Đoàn Thanh niên phường Khương Đình",
        ),
    ):
        out = process_mail(_mail(name), ctx)
        assert out.unit.code == "p-khuong-dinh" and not out.awaiting_confirmation
        (sub,) = out.submissions
        assert (sub.unit_code, sub.sent_by, sub.attribution, sub.awaiting) == (
            code,
            "p-khuong-dinh",
            "under",
            False,
        )
        # The ward's own version is not touched: nothing replaces it.
        assert sub.previous is None and sub.replaces is None
        text = _text(out)
        assert f"Biểu Mẫu số 02 được ghi nhận cho: {unit_name} (do {WARD} gửi)" in text
        assert "thay thế" not in text.split("1. CÁC TỆP")[1].split("3. THỜI HẠN")[0]
        assert f"{unit_name} (do {WARD} gửi)" in _html(out)


def test_form_naming_another_registered_unit_without_parent_relation_awaits_staff():
    on_file = {
        ("mttq", "M2"): PriorVersion(
            datetime(2022, 2, 10, 14, 30, tzinfo=TZ), ("A – Mô hình 1", "B – Mô hình 2")
        )
    }
    out = process_mail(_mail("attribution_4_for_mttq.eml"), context(versions_on_file=on_file))
    (sub,) = out.submissions
    assert (sub.unit_code, sub.sent_by, sub.attribution, sub.awaiting) == (
        "mttq",
        "p-khuong-dinh",
        "other",
        True,
    )
    # It never replaces the Front's accepted form on its own.
    assert sub.replaces is None
    text = _text(out)
    assert "CHỜ XÁC NHẬN NGƯỜI GỬI" in text
    assert "chờ cán bộ tiếp nhận xác nhận" in text
    assert "nhận lúc 14:30 ngày 10/02/2022 (2 mô hình) vẫn được giữ" in text
    # The sender's own completeness is not credited with another unit's form.
    assert "Mẫu số 02 (cấp cơ sở)" in text.split("CÒN THIẾU")[-1]


def test_unregistered_sender_still_waits_for_confirmation_of_the_named_unit():
    raw = _mail("attribution_2_forward_school.eml").replace(
        b"dangbo.khuongdinh@thanhxuan.example", b"someone@gmail.example"
    )
    out = process_mail(raw, context())
    assert out.awaiting_confirmation and out.unit.code == "cb-thcs-khuong-dinh"
    (sub,) = out.submissions
    assert (sub.unit_code, sub.sent_by, sub.attribution, sub.awaiting) == (
        "cb-thcs-khuong-dinh",
        None,
        "unconfirmed-sender",
        True,
    )


def test_unknown_unit_name_from_registered_sender_goes_to_sender_with_warning():
    # A register that does not know the school: the name on the form matches no unit.
    units = [u for u in sample_register().units if u.code != "cb-thcs-khuong-dinh"]
    out = process_mail(
        _mail("attribution_2_forward_school.eml"),
        context(register=Register(units, district="Thanh Xuân")),
    )
    (sub,) = out.submissions
    assert (sub.unit_code, sub.attribution, sub.awaiting) == (
        "p-khuong-dinh",
        "unknown-name",
        False,
    )
    text = _text(out)
    assert "không có trong danh sách đơn vị nên biểu được ghi nhận cho đơn vị gửi thư" in text
    assert f"Biểu Mẫu số 02 được ghi nhận cho: {WARD}" in text


def test_form_without_unit_name_from_registered_sender_goes_to_sender_with_warning():
    from mailbot.campaign.samples import filled_form_xlsx
    from rules.campaign import newest_campaign
    from tests.mailbot.test_intake import _mail_with_files

    campaign = newest_campaign()
    data = filled_form_xlsx(
        "M2", campaign, None, None, collectives=[("Tổ 1", "economy", "Mô hình một")]
    )
    out = process_mail(_mail_with_files(("Mau 02.xlsx", data)), context())
    (sub,) = out.submissions
    assert (sub.unit_code, sub.attribution, sub.awaiting) == ("p-khuong-trung", "no-name", False)
    text = _text(out)
    assert "biểu không ghi tên đơn vị nên được ghi nhận cho đơn vị gửi thư" in text
    # the form has an error (no unit name): kept for the sender, not taken
    assert "Biểu Mẫu số 02 được lưu cho: Đảng ủy phường Khương Trung" in text


def test_correction_replaces_the_version_and_the_receipt_names_the_dropped_models():
    earlier = PriorVersion(
        datetime(2022, 2, 15, 8, 0, tzinfo=TZ),
        (
            "Chi bộ Khu dân cư số 3 – Khu dân cư văn minh, sạch đẹp",
            "Hội Phụ nữ phường – Tổ tiết kiệm vì phụ nữ nghèo",
            "Công an phường – Tổ liên gia an toàn phòng cháy",
            "Nguyễn Thị Hoa – Tiếp dân tại nhà văn hóa tổ dân phố",
        ),
    )
    ctx = context(versions_on_file={("p-khuong-dinh", "M2"): earlier})
    out = process_mail(_mail("attribution_5_correction.eml"), ctx)
    (sub,) = out.submissions
    assert sub.replaces == earlier
    text = _text(out)
    assert "ĐÃ TIẾP NHẬN, THAY THẾ BẢN GỬI TRƯỚC" in text
    assert (
        "Bản này thay thế bản Mẫu số 02 của Đảng ủy phường Khương Đình nhận lúc 08:00 ngày "
        "15/02/2022 (4 mô hình)." in text
    )
    dropped = text.split("không còn được tính):")[1].split("Tên đơn vị ghi trên biểu")[0]
    assert "Công an phường – Tổ liên gia an toàn phòng cháy" in dropped
    assert "Hội Phụ nữ phường" not in dropped and "Nguyễn Thị Hoa" not in dropped
    assert "Công an phường – Tổ liên gia an toàn phòng cháy" in _html(out)


def test_a_correction_keeping_every_model_says_so():
    own = process_mail(_mail("attribution_1_ward_own.eml"), context())
    labels = tuple(model_label(e.name, e.model) for e in own.submissions[0].form.entries)
    earlier = PriorVersion(datetime(2022, 2, 14, 8, 0, tzinfo=TZ), labels)
    out = process_mail(
        _mail("attribution_1_ward_own.eml"),
        context(versions_on_file={("p-khuong-dinh", "M2"): earlier}),
    )
    assert "Bản này giữ đủ các mô hình của bản trước." in _text(out)


def test_register_parent_column_and_its_checks():
    units = read_units(
        "code,name,emails,aliases,parent\n"
        "w,Đảng ủy phường A,w@x.example,,\n"
        "s,Chi bộ Trường B,s@x.example,,w\n"
        "c,Chi bộ Tổ C,,,s\n".encode(),
        "u.csv",
    )
    register = Register(units)
    assert register.is_under("s", "w") and register.is_under("c", "w")
    assert not register.is_under("w", "s") and not register.is_under("w", "w")
    with pytest.raises(UnitsFileError, match="cấp trên của chính nó"):
        read_units(b"code,name,emails,aliases,parent\nw,A,,,w\n", "u.csv")
    with pytest.raises(UnitsFileError, match="vòng lặp"):
        read_units(b"code,name,emails,aliases,parent\na,A,,,b\nb,B,,,a\n", "u.csv")
    shipped = sample_register()
    assert shipped.is_under("cb-thcs-khuong-dinh", "p-khuong-dinh")
    assert not shipped.is_under("mttq", "p-khuong-dinh")
    assert isinstance(shipped.by_code("doan-khuong-dinh"), Unit)
