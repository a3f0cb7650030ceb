"""The deadline in plain words and the forms a unit owes, from the campaign file."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules.campaign import deadline_words, last_day, newest_campaign

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_shipped_campaign_says_the_last_day_and_its_weekday():
    campaign = newest_campaign()
    assert campaign.deadline_text == "trước ngày 20/02/2022"
    assert campaign.deadline_words == "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)"
    assert last_day(campaign.deadline, campaign.tz) == date(2022, 2, 19)


@pytest.mark.parametrize(
    ("cut_off", "words"),
    [
        (datetime(2022, 2, 21, tzinfo=TZ), "hạn cuối: hết ngày 20/02/2022 (Chủ nhật)"),
        (datetime(2022, 2, 15, tzinfo=TZ), "hạn cuối: hết ngày 14/02/2022 (thứ Hai)"),
        (
            datetime(2022, 2, 18, 17, 0, tzinfo=TZ),
            "hạn cuối: trước 17:00 ngày 18/02/2022 (thứ Sáu)",
        ),
        # a UTC instant is said in local time: 17:00 UTC on the 19th is midnight in Hanoi
        (
            datetime(2022, 2, 19, 17, 0, tzinfo=ZoneInfo("UTC")),
            "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)",
        ),
    ],
)
def test_deadline_words(cut_off, words):
    assert deadline_words(cut_off, TZ) == words


def test_forms_owed_by_register_else_campaign():
    campaign = newest_campaign()
    assert campaign.forms_owed() == ("M1", "M2")
    assert campaign.forms_owed(("M2",)) == ("M2",)
    assert campaign.forms_owed(("m2", "M1")) == ("M1", "M2")
    assert campaign.forms_owed(("M9",)) == ("M1", "M2")  # nothing known: the campaign decides
