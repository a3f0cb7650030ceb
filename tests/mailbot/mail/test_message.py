"""The message model: a file found in a mail, with and without its bytes."""

from __future__ import annotations

import pickle

from mailbot.mail.message import Attachment


def test_a_file_without_its_bytes_keeps_its_size_and_says_so() -> None:
    whole = Attachment("Mẫu 01.xlsx", b"PK\x03\x04" + b"x" * 96, "application/zip", "mail")
    light = whole.without_content()
    assert whole.has_content and whole.size == 100
    assert light.content == b"" and not light.has_content
    assert (light.filename, light.content_type, light.origin, light.size, light.extension) == (
        "Mẫu 01.xlsx",
        "application/zip",
        "mail",
        100,
        ".xlsx",
    )
    # Dropping twice changes nothing; the pickle a worker sends back is small.
    assert light.without_content() == light
    assert len(pickle.dumps(light)) < len(pickle.dumps(whole))
