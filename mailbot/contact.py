"""Whom units call and which letter asks for the forms: named at the foot of every mail."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.config import Config
from rules.campaign import Campaign


@dataclass(frozen=True)
class Contact:
    """The contact line of a mail: office, person, phone, address, and the campaign's letter."""

    office: str
    person: str | None
    phone: str | None
    email: str
    letter: str  # "Công văn số 719-CV/QU ngày 07/01/2022"; "" when the campaign names none

    @property
    def sentence(self) -> str:
        """'Mọi vướng mắc xin liên hệ đồng chí …, điện thoại …, thư điện tử ….'"""
        who = self.person or self.office
        parts = [f"Mọi vướng mắc xin liên hệ {who}"]
        if self.phone:
            parts.append(f"điện thoại {self.phone}")
        parts.append(f"thư điện tử {self.email}")
        return ", ".join(parts) + "."


def contact_of(config: Config, campaign: Campaign) -> Contact:
    """The contact line from the configuration ([contact], [outgoing]) and the campaign file."""
    return Contact(
        office=config.outgoing.from_name,
        person=config.contact.name,
        phone=config.contact.phone,
        email=config.contact.email or config.outgoing.from_address,
        letter=campaign.letter_words,
    )
