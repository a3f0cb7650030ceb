"""The reminder's words in its three cases, text and HTML, and on the last days."""

from __future__ import annotations

import pytest

from mailbot.campaign.views import (
    REMINDER_FORMS_MISSING,
    REMINDER_FORMS_WITH_ERRORS,
    REMINDER_NOTHING_SENT,
    ReminderFormView,
)
from outbox_templates import render
from tests.outbox_templates.reminder_samples import M1, M2, WITH_ERRORS, reminder_view

WORDS = "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)"
CASES = (REMINDER_NOTHING_SENT, REMINDER_FORMS_MISSING, REMINDER_FORMS_WITH_ERRORS)


@pytest.mark.parametrize("case", CASES)
def test_every_case_greets_the_unit_and_ends_with_contact_and_letter(case: str) -> None:
    out = render("reminder", reminder_view(case))
    for body in (out.text, out.html):
        assert "Kính gửi: " in body and "Hội Cựu chiến binh quận Thanh Xuân" in body
        assert "Quý đơn vị" not in body
        assert WORDS in body and "Thời hạn còn 3 ngày, kể cả hôm nay." in body
        assert "Công văn số 719-CV/QU ngày 07/01/2022" in body
        assert "đồng chí Nguyễn Thị Hà, điện thoại 024 3858 1234" in body
        assert "Tình hình trên tính đến 08:00 ngày 17/02/2022" in body
    assert out.text.startswith("Kính gửi: Hội Cựu chiến binh quận Thanh Xuân,\n")
    assert out.subject.startswith("[Nhắc hạn – còn 3 ngày] Đề nghị ")
    assert out.subject.endswith(f", {WORDS} – Hội Cựu chiến binh quận Thanh Xuân")
    contact = out.text.index("Mọi vướng mắc xin liên hệ")
    assert out.text.index("Cách gửi:") < contact < out.text.index("Trân trọng.")


def test_nothing_sent_asks_for_every_form() -> None:
    out = render("reminder", reminder_view(REMINDER_NOTHING_SENT))
    assert "Đề nghị gửi hồ sơ đăng ký mô hình “Dân vận khéo”" in out.subject
    text = out.text
    assert (
        "Đến 08:00 ngày 17/02/2022, Ban Dân vận Quận ủy Thanh Xuân chưa nhận được biểu mẫu "
        "nào của đơn vị.\n\nĐề nghị đơn vị gửi:\n- Mẫu số 01 (cấp Quận)\n- Mẫu số 02 (cấp cơ sở)\n"
    ) in text
    assert "chưa đầy đủ" not in text and "Tình hình các biểu mẫu" not in text
    assert "ghi rõ “Không đăng ký”" in text
    assert f"để đơn vị sử dụng: {M1}; {M2}." in text
    assert "chưa nhận được biểu mẫu nào" in out.html and "Đề nghị đơn vị gửi" in out.html


def test_one_form_missing_names_it_and_says_what_was_received() -> None:
    out = render("reminder", reminder_view(REMINDER_FORMS_MISSING))
    assert f"Đề nghị gửi bổ sung {M2}," in out.subject
    text = out.text
    assert f"hồ sơ của đơn vị còn thiếu {M2}." in text
    assert f"- {M1}: Đã tiếp nhận (nhận lúc 09:00 ngày 15/02/2022)\n- {M2}: Còn thiếu\n" in text
    assert f"để đơn vị sử dụng: {M2}." in text
    assert "có lỗi" not in text
    assert "Đã tiếp nhận (nhận lúc 09:00 ngày 15/02/2022)" in out.html


def test_form_with_errors_says_which_to_correct_and_where_the_receipt_went() -> None:
    out = render("reminder", reminder_view(REMINDER_FORMS_WITH_ERRORS))
    assert f"Đề nghị sửa và gửi lại {M1}," in out.subject
    text = out.text
    assert "hồ sơ của đơn vị có biểu mẫu bị lỗi nên chưa được tính." in text
    assert f"- {M1}: Đã nhận, có lỗi, chưa được tính (nhận lúc 11:00 ngày 16/02/2022)" in text
    assert (
        f"{M1} đơn vị gửi lúc 11:00 ngày 16/02/2022 có lỗi nên chưa được tính:\n"
        "- Mục I. Tập thể, dòng TT 2 (ô B12): Dòng này chưa ghi tên tập thể, cá nhân.\n"
        f"Đề nghị đơn vị sửa và gửi lại {M1}. Vị trí từng lỗi và cách sửa đã nêu trong thư "
        "xác nhận gửi đến hoiccb@thanhxuan.example ngay sau khi nhận."
    ) in text
    assert "“Không đăng ký”" not in text  # nothing is missing
    html = out.html
    assert "Dòng này chưa ghi tên tập thể, cá nhân." in html
    assert "thư xác nhận gửi đến hoiccb@thanhxuan.example" in html


def test_errors_and_a_missing_form_in_one_reminder() -> None:
    view = reminder_view(REMINDER_FORMS_WITH_ERRORS, missing_forms=(M2,), attached_forms=(M1, M2))
    out = render("reminder", view)
    assert f"Đề nghị sửa và gửi lại {M1}, gửi bổ sung {M2}," in out.subject
    assert "ghi rõ “Không đăng ký”" in out.text


def test_a_form_awaiting_confirmation_needs_nothing_from_the_unit() -> None:
    waiting = ReminderFormView(
        name=M1,
        state="Chờ xác nhận người gửi",
        received_at=WITH_ERRORS.received_at,
        sender="bithu.doan@gmail.example",
    )
    view = reminder_view(REMINDER_FORMS_MISSING, unconfirmed_forms=(waiting,))
    text = render("reminder", view).text
    assert (
        f"{M1} gửi từ địa chỉ bithu.doan@gmail.example lúc 11:00 ngày 16/02/2022 đã được nhận "
        "và đang chờ Ban Dân vận Quận ủy Thanh Xuân xác nhận người gửi; đơn vị không cần gửi "
        "lại biểu mẫu này."
    ) in text


def test_last_working_day_before_a_deadline_on_saturday() -> None:
    view = reminder_view(REMINDER_NOTHING_SENT, days_left=2, last_working_day=True)
    out = render("reminder", view)
    assert out.subject.startswith("[Nhắc hạn – còn 2 ngày]")
    for body in (out.text, out.html):
        assert (
            "Thời hạn còn 2 ngày, kể cả hôm nay; hôm nay là ngày làm việc cuối cùng trước hạn."
            in body
        )
        assert (
            "Vì thứ Bảy 19/02/2022 là ngày nghỉ, đề nghị đơn vị gửi hồ sơ trong ngày làm việc "
            "hôm nay" in body
        )
        assert "hệ thống vẫn tiếp nhận hồ sơ gửi đến hết ngày thứ Bảy 19/02/2022." in body
    assert "chỉ còn 1 ngày" not in out.text


def test_last_working_day_before_a_long_weekend() -> None:
    view = reminder_view(
        REMINDER_NOTHING_SENT,
        days_left=3,
        last_working_day=True,
        last_day="hết ngày Chủ nhật 19/02/2023",
        last_day_name="Chủ nhật 19/02/2023",
    )
    text = render("reminder", view).text
    assert "Vì từ ngày mai đến hết Chủ nhật 19/02/2023 đều là ngày nghỉ, đề nghị" in text


def test_on_the_last_day_itself() -> None:
    out = render("reminder", reminder_view(REMINDER_FORMS_MISSING, days_left=1))
    assert out.subject.startswith("[Nhắc hạn – hôm nay là ngày cuối]")
    assert "Hôm nay là ngày cuối cùng của thời hạn." in out.text
    assert "ngày làm việc cuối cùng" not in out.text


def test_html_escapes_what_units_wrote() -> None:
    hostile = ReminderFormView(
        name=M1,
        state="Đã nhận, có lỗi, chưa được tính",
        received_at=WITH_ERRORS.received_at,
        problems=("Ô C9 ghi <script>alert(1)</script>",),
    )
    view = reminder_view(REMINDER_FORMS_WITH_ERRORS, error_forms=(hostile,))
    out = render("reminder", view)
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<script>alert(1)</script>" in out.text
