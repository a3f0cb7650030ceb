"""The container readers: one protocol, shared limits, members and troubles in order."""

from __future__ import annotations

import io
import zipfile

from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack import Member, Trouble, file_unpackers
from mailbot.mail.unpack.base import check_listing, junk_member
from mailbot.mail.unpack.rar import RarUnpacker
from mailbot.mail.unpack.smime import signed_content
from mailbot.mail.unpack.zip import ZipUnpacker


def _zip(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def test_file_unpackers_follow_the_context_for_rar():
    for rar in (False, True):
        by_name = {u.name: u for u in file_unpackers(rar)}
        assert list(by_name) == ["tnef", "zip", "rar", "tar"]
        assert by_name["rar"].able_to_run() is rar
        assert by_name["zip"].able_to_run() and by_name["tar"].able_to_run()
        assert [u.nests for u in by_name.values()] == [False, True, True, True]


def test_matching_by_name_type_and_magic_bytes():
    zip_reader, rar_reader = ZipUnpacker(), RarUnpacker(False)
    assert zip_reader.matches("Hồ sơ.ZIP", b"", "")
    assert zip_reader.matches("tep", b"PK\x03\x04", "application/zip")
    assert not zip_reader.matches("Mau 01.xlsx", b"PK\x03\x04", "application/zip")  # a form
    assert rar_reader.matches("tep.bin", b"Rar!\x1a\x07\x00", "application/octet-stream")
    assert not rar_reader.matches("Mau 01.doc", b"Rar!\x1a\x07\x00", "")


def test_zip_members_come_in_order_and_junk_is_skipped():
    data = _zip(("Mẫu 01.xlsx", b"one"), ("__MACOSX/._x", b"j"), ("sub/Mẫu 02.docx", b"two"))
    found = list(ZipUnpacker().unpack("Hồ sơ.zip", data, ArchiveLimits()))
    assert found == [Member("Mẫu 01.xlsx", b"one"), Member("Mẫu 02.docx", b"two")]


def test_shared_limits_refuse_too_many_and_bombs():
    limits = ArchiveLimits(max_members=2, ratio_floor=10, max_ratio=5)
    too_many = check_listing("a.zip", [(1, 1)] * 3, limits)
    bomb = check_listing("a.zip", [(1000, 1)], limits)
    assert isinstance(too_many, Trouble) and too_many.code == "archive-too-many-files"
    assert isinstance(bomb, Trouble) and bomb.code == "archive-too-large"
    assert check_listing("a.zip", [(5, 5), (50, 20)], limits) is None
    data = _zip(*[(f"{i}.xlsx", b"x") for i in range(3)])
    [refused] = list(ZipUnpacker().unpack("a.zip", data, limits))
    assert isinstance(refused, Trouble) and refused.code == "archive-too-many-files"


def test_junk_members():
    assert junk_member("~$Mau 01.xlsx") and junk_member("a/.DS_Store") and junk_member("/")
    assert not junk_member("Hồ sơ/Mẫu 01.xlsx")


def test_signed_content_refuses_what_is_not_signed_data():
    assert signed_content(b"") is None
    assert signed_content(b"not base64 at all \xff") is None
    assert signed_content(bytes.fromhex("3003020101")) is None
