"""Shared helpers for intake tests: the sample register, a context, the expected outcomes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.contact import Contact
from mailbot.decision import IntakeContext
from mailbot.units import Register, read_units
from rules.campaign import newest_campaign

ROOT = Path(__file__).resolve().parents[2]
INTAKE = ROOT / "tests" / "fixtures" / "intake"
OUR_ADDRESS = "bdv_quthanhxuan@hanoi.gov.vn"
# The contact line the daemon builds from its configuration (mailbot.contact.contact_of).
CONTACT = Contact(
    office="Ban Dân vận Quận ủy Thanh Xuân",
    person="đồng chí Nguyễn Thị Lan, chuyên viên Ban Dân vận",
    phone="024 3858 1234",
    email=OUR_ADDRESS,
    letter=newest_campaign().letter_words,
)
BEFORE_DEADLINE = datetime(2022, 2, 18, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


def sample_register() -> Register:
    units = read_units((ROOT / "data" / "units.csv").read_bytes(), "units.csv")
    return Register(units, district="Thanh Xuân")


def context(received_at: datetime = BEFORE_DEADLINE, **kw: Any) -> IntakeContext:
    base: dict[str, Any] = dict(
        campaign=newest_campaign(),
        register=sample_register(),
        received_at=received_at,
        from_address=OUR_ADDRESS,
        from_name="Ban Dân vận Quận ủy Thanh Xuân",
        message_id_domain="mailbot.invalid",
        contact=CONTACT,
        own_addresses=(OUR_ADDRESS,),
    )
    base.update(kw)
    return IntakeContext(**base)


def intake_fixtures() -> list[Path]:
    return sorted(INTAKE.glob("*.eml"))


def expected_for(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name + ".expected.json").read_text(encoding="utf-8"))
