"""Helpers shared by the repositories: back-off delays and Message-ID normalisation."""

from __future__ import annotations

from datetime import timedelta

from mailbot import db as dbm


def test_backoff_is_capped() -> None:
    assert dbm.backoff_delay(1, 60) == timedelta(seconds=60)
    assert dbm.backoff_delay(4, 60) == timedelta(seconds=480)
    assert dbm.backoff_delay(100, 60) == timedelta(seconds=dbm.MAX_BACKOFF_SECONDS)


def test_message_ids_are_normalised() -> None:
    assert dbm.normalize_message_id(" abc@x ") == "<abc@x>"
    assert dbm.normalize_message_id("<abc@x>") == "<abc@x>"
    assert dbm.normalize_message_id("   ") is None
    assert dbm.normalize_message_id(None) is None
