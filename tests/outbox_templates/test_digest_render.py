"""The staff digest rendered from its view: section order, actions, chart, questions, bounces."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from mailbot.campaign.chart import DayCount
from mailbot.campaign.views import (
    ArrivalView,
    AttentionView,
    BounceView,
    DigestAction,
    DigestCounts,
    DigestView,
    ToReadView,
    UnitGroupView,
    percent,
)
from mailbot.contact import Contact
from mailbot.glossary import UNIT_STATE_LABELS
from outbox_templates import render

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HOSTILE = "<script>alert(1)</script>"
SECTIONS_TEXT = (
    "1. VIỆC CẦN XỬ LÝ",
    "2. TIẾN ĐỘ",
    "3. ĐƠN VỊ THEO TÌNH TRẠNG",
    "4. THƯ HỎI CỦA ĐƠN VỊ",
    "5. THƯ GỬI ĐI BỊ TRẢ LẠI",
)
SECTIONS_HTML = (
    "1. Việc cần xử lý",
    "2. Tiến độ",
    "3. Đơn vị theo tình trạng",
    "4. Thư hỏi của đơn vị",
    "5. Thư gửi đi bị trả lại",
)
# What staff must never be told to type, nor read: commands, codes of the register.
MACHINE_WORDS = ("mailbot ", "--mail", "--unit", "MÃ_ĐƠN_VỊ", "review", "p-khuong-trung")


def when(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2022, 2, day, hour, minute, tzinfo=TZ)


def _held(href: bool) -> AttentionView:
    def act(kind: str, label: str, unit: str | None) -> DigestAction:
        link = f"mailto:robot@x.example?subject=T-{kind}-7-{unit}" if href else None
        return DigestAction(kind, label, link, mail_id=7)

    return AttentionView(
        "Người gửi không xác định",
        "Thư số 7 của dangbo.khuongtrung@gmail.example có biểu mẫu nhưng không xác định được "
        "đơn vị gửi.",
        when(15, 9),
        (
            act("assign", "Tính cho Đảng ủy phường Khương Trung", "p-khuong-trung"),
            act("assign", "Tính cho đơn vị khác", None),
            act("reject", "Từ chối", None),
        ),
    )


def _view(
    *,
    attention: bool = True,
    links: bool = True,
    after_deadline: bool = False,
    questions: bool = True,
    bounced: bool = True,
) -> DigestView:
    counts = DigestCounts(
        complete=12, partial=5, missing=20, errors=2, awaiting_confirmation=1, total=40
    )
    return DigestView(
        generated_at=when(16, 7, 30),
        campaign_name="Phong trào thi đua “Dân vận khéo” năm 2022",
        deadline_text="trước ngày 20/02/2022",
        deadline_words="hạn cuối: hết ngày 19/02/2022 (thứ Bảy)",
        counts=counts,
        percent_complete=percent(12, 40),
        counts_by_level_and_field={"M1": {"Kinh tế": 3, "Văn hóa - Xã hội": 5}},
        arrivals=(ArrivalView(when(15, 15, 2), "Đảng ủy phường Hạ Đình", ("M1", "M2"), 6, 1),),
        needs_attention=(_held(links),) if attention else (),
        after_deadline=after_deadline,
        since=when(15, 7, 30),
        attachment_name="Tổng hợp Dân vận khéo 2022 - 16-02-2022.xlsx",
        to_read=(
            ToReadView(
                mail_id=9,
                when=when(15, 20, 10),
                unit="Đảng ủy phường Kim Giang",
                sender="dangbo.kimgiang@thanhxuan.example",
                subject="Hỏi về Mẫu 02",
                excerpt=f"Kính gửi Ban Dân vận,\nChi bộ có phải gửi Mẫu 02 không ạ? {HOSTILE}",
                actions=(
                    DigestAction(
                        "handled",
                        "Đã xử lý",
                        "mailto:robot@x.example?subject=T-handled-9" if links else None,
                        mail_id=9,
                    ),
                ),
            ),
        )
        if questions
        else (),
        groups=(
            UnitGroupView("complete", UNIT_STATE_LABELS["complete"], ("Quận đoàn Thanh Xuân",)),
            UnitGroupView(
                "partial",
                UNIT_STATE_LABELS["partial"],
                ("Hội Cựu chiến binh phường Khương Mai (còn thiếu Mẫu 02)",),
            ),
            UnitGroupView(
                "missing", UNIT_STATE_LABELS["missing"], ("Đảng ủy phường Kim Giang", "Ban X")
            ),
        ),
        bounces=(
            BounceView(
                when(15, 11),
                "Thư nhắc hạn",
                "Hội Cựu chiến binh phường Khương Mai",
                "ccb.khuongmai@thanhxuan.example",
                "địa chỉ không tồn tại",
            ),
        )
        if bounced
        else (),
        per_day=(DayCount(date(2022, 2, 14), 2), DayCount(date(2022, 2, 15), 0)),
        last_day=date(2022, 2, 19),
        chart_cid="tien-do.20220216@thanhxuan.example",
        contact=Contact(
            office="Ban Dân vận Quận ủy Thanh Xuân",
            person="đồng chí Nguyễn Thị Lan",
            phone="024 3858 1234",
            email="bdv_quthanhxuan@hanoi.gov.vn",
            letter="Công văn số 719-CV/QU ngày 07/01/2022",
        ),
    )


def _positions(body: str, headings: tuple[str, ...]) -> list[int]:
    return [body.index(h) for h in headings]


def test_sections_come_in_order_what_needs_a_person_first() -> None:
    out = render("digest", _view())
    for body, headings in ((out.text, SECTIONS_TEXT), (out.html, SECTIONS_HTML)):
        found = _positions(body, headings)
        assert found == sorted(found)
        assert body.index("Người gửi không xác định") < found[1]  # the item sits in section 1
    assert out.text.index("Kèm theo:") > out.text.index(SECTIONS_TEXT[-1])


def test_actions_are_links_when_given() -> None:
    out = render("digest", _view(links=True))
    assert (
        '<a href="mailto:robot@x.example?subject=T-assign-7-p-khuong-trung"' in out.html
        and ">Tính cho Đảng ủy phường Khương Trung</a>" in out.html
    )
    assert ">Từ chối</a>" in out.html and ">Đã xử lý</a>" in out.html
    assert "> Từ chối: mailto:robot@x.example?subject=T-reject-7-None" in out.text
    assert "đồng chí quản trị hệ thống" not in out.text  # nothing left to do by hand


def test_without_links_each_action_is_a_plain_sentence() -> None:
    out = render("digest", _view(links=False))
    assert "mailto:" not in out.text and "mailto:" not in out.html
    assert (
        "Đề nghị đồng chí quản trị hệ thống thực hiện với thư số 7 một trong các việc: "
        "tính cho Đảng ủy phường Khương Trung; tính cho đơn vị khác; từ chối."
    ) in out.text
    assert "Đề nghị đồng chí quản trị hệ thống thực hiện với thư số 9: đã xử lý." in out.text
    for body in (out.text, out.html):
        for word in MACHINE_WORDS:
            assert word not in body, word


def test_progress_has_the_chart_inline_and_the_same_figures_in_words() -> None:
    view = _view()
    out = render("digest", view)
    img = re.search(r'<img src="cid:([^"]+)"[^>]*alt="([^"]+)"', out.html)
    assert img is not None and img.group(1) == "tien-do.20220216@thanhxuan.example"
    figures = "12 đã gửi đủ, 1 chờ xác nhận người gửi, 2 có lỗi cần sửa, 5 gửi chưa đủ, 20 chưa gửi"
    assert figures in img.group(2) and "14/02: 2" in img.group(2)
    assert "Số lượt gửi biểu theo ngày: 14/02: 2 (hạn cuối 19/02/2022)." in out.text
    for label in UNIT_STATE_LABELS.values():
        assert f"- {label}: " in out.text and label in out.html
    assert "2. TIẾN ĐỘ: 12/40 đơn vị đã gửi đủ (30%)" in out.text
    assert "- 15:02 ngày 15/02/2022: Đảng ủy phường Hạ Đình – Mẫu 01, Mẫu 02" in out.text
    no_chart = render("digest", replace(view, chart_cid=None))
    assert "<img" not in no_chart.html and "Số lượt gửi biểu theo ngày" in no_chart.html


def test_nothing_to_do_is_said_and_the_rest_still_follows() -> None:
    out = render("digest", _view(attention=False, questions=False, bounced=False))
    assert "1. VIỆC CẦN XỬ LÝ\nKhông có việc nào cần xử lý." in out.text
    assert "Không có thư hỏi nào chờ trả lời." in out.text
    assert "Không có thư nào bị trả lại." in out.text
    assert "Ngoài ra" not in out.text
    assert _positions(out.html, SECTIONS_HTML) == sorted(_positions(out.html, SECTIONS_HTML))


def test_questions_show_the_unit_subject_and_first_lines_escaped() -> None:
    out = render("digest", _view())
    assert (
        "- Đảng ủy phường Kim Giang (20:10 ngày 15/02/2022, dangbo.kimgiang@thanhxuan.example), "
        "tiêu đề “Hỏi về Mẫu 02”:\n    Kính gửi Ban Dân vận,\n"
        f"    Chi bộ có phải gửi Mẫu 02 không ạ? {HOSTILE}"
    ) in out.text
    assert "&lt;script&gt;" in out.html and "<script" not in out.html
    assert "Ngoài ra: 1 thư hỏi của đơn vị cần trả lời (mục 4); 1 thư gửi đi bị trả lại" in (
        out.text
    )


def test_bounces_name_the_unit() -> None:
    out = render("digest", _view())
    line = (
        "Thư nhắc hạn gửi Hội Cựu chiến binh phường Khương Mai "
        "(ccb.khuongmai@thanhxuan.example) bị trả lại: địa chỉ không tồn tại"
    )
    assert f"- {line} (11:00 ngày 15/02/2022)" in out.text
    assert line in out.html


@pytest.mark.parametrize("after", [False, True])
def test_units_by_state_and_overdue_after_the_deadline(after: bool) -> None:
    out = render("digest", _view(after_deadline=after))
    assert "- Hội Cựu chiến binh phường Khương Mai (còn thiếu Mẫu 02)" in out.text
    if after:
        assert "Chưa gửi, đã quá hạn (2):\n- Đảng ủy phường Kim Giang\n- Ban X" in out.text
        assert "Đã gửi đủ (1):" in out.text  # complete units are not overdue
        assert "(đã hết hạn)" in out.text and "Chưa gửi, đã quá hạn (2)" in out.html
    else:
        assert "Chưa gửi (2):\n- Đảng ủy phường Kim Giang\n- Ban X" in out.text
        assert "quá hạn" not in out.text and "quá hạn" not in out.html


def test_contact_and_letter_close_the_digest() -> None:
    out = render("digest", _view())
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in out.text
    assert (
        "Mọi vướng mắc xin liên hệ đồng chí Nguyễn Thị Lan, điện thoại 024 3858 1234, "
        "thư điện tử bdv_quthanhxuan@hanoi.gov.vn."
    ) in out.text
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in out.html
