"""The contact line: person and phone from [contact], the letter from the campaign file."""

from __future__ import annotations

from dataclasses import replace

from mailbot.config import Config, ContactConfig
from mailbot.contact import contact_of
from outbox_templates import environment
from rules.campaign import newest_campaign


def test_contact_names_the_person_the_phone_and_the_letter():
    config = replace(
        Config(), contact=ContactConfig(name="đồng chí Nguyễn Thị Hà", phone="024 3858 1234")
    )
    contact = contact_of(config, newest_campaign())
    assert contact.letter == "Công văn số 719-CV/QU ngày 07/01/2022"
    assert contact.sentence == (
        "Mọi vướng mắc xin liên hệ đồng chí Nguyễn Thị Hà, điện thoại 024 3858 1234, "
        "thư điện tử bdv_quthanhxuan@hanoi.gov.vn."
    )
    text = environment().get_template("_contact.txt.j2").render(contact=contact)
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in text
    html = environment().get_template("_contact.html.j2").render(contact=contact)
    assert "đồng chí Nguyễn Thị Hà" in html


def test_without_a_person_the_office_is_named():
    contact = contact_of(Config(), newest_campaign())
    assert contact.sentence.startswith("Mọi vướng mắc xin liên hệ Ban Dân vận Quận ủy Thanh Xuân,")
