"""Fixtures of the campaign tests: a database with the district's unit register."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot import db as dbm
from tests.mailbot.campaign.support import open_seeded


@pytest.fixture
def database(tmp_path: Path) -> Iterator[dbm.Database]:
    database = open_seeded(tmp_path / "data")
    yield database
    database.dispose()
