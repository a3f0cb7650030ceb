"""The content-addressed raw mail store: layout, atomic writes, idempotence, path refusal."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from mailbot.store import RawStore, StoreError

RAW = b"From: unit@example.org\r\nSubject: =?utf-8?q?M=E1=BA=ABu_01?=\r\n\r\nB\xe1\xbb\x99\r\n"


def test_put_writes_under_the_hash_and_returns_a_data_relative_path(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    sha, rel = store.put(RAW)
    assert sha == hashlib.sha256(RAW).hexdigest()
    assert rel == f"raw/{sha[:2]}/{sha[2:]}.eml"
    assert (tmp_path / rel).read_bytes() == RAW
    assert store.get(rel) == RAW
    assert store.get(rel, verify=True) == RAW
    assert store.exists(rel)
    assert stat.S_IMODE((tmp_path / rel).stat().st_mode) == 0o600  # mail is personal data
    assert [p.name for p in (tmp_path / rel).parent.iterdir()] == [f"{sha[2:]}.eml"]


def test_put_is_idempotent_and_keeps_the_first_copy(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    sha, rel = store.put(RAW)
    before = (tmp_path / rel).stat()
    assert store.put(RAW) == (sha, rel)
    after = (tmp_path / rel).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    other_sha, other_rel = store.put(RAW + b"x")
    assert other_sha != sha
    assert other_rel != rel


def test_a_damaged_copy_is_detected_and_replaced(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    _, rel = store.put(RAW)
    (tmp_path / rel).write_bytes(RAW[:10])
    with pytest.raises(StoreError, match="damaged"):
        store.get(rel, verify=True)
    store.put(RAW)
    assert store.get(rel, verify=True) == RAW


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RawStore(tmp_path)
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        store.put(RAW)
    monkeypatch.undo()
    rel = RawStore.relative_path_for(hashlib.sha256(RAW).hexdigest())
    assert not (tmp_path / rel).exists()
    assert list((tmp_path / rel).parent.iterdir()) == []
    # The next attempt succeeds normally.
    assert store.put(RAW)[1] == rel
    assert store.get(rel, verify=True) == RAW


@pytest.mark.parametrize(
    "bad",
    [
        "../outside.eml",
        "raw/../mailbot.sqlite3",
        "raw/ab/../../../etc/passwd",
        "/etc/passwd",
        "mailbot.sqlite3",
        "",
        "raw\\..\\..\\x",
    ],
)
def test_paths_outside_the_store_are_refused(tmp_path: Path, bad: str) -> None:
    store = RawStore(tmp_path)
    store.put(RAW)
    (tmp_path / "mailbot.sqlite3").write_bytes(b"secret")
    with pytest.raises(StoreError, match="outside"):
        store.get(bad)


def test_a_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    store.put(RAW)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    (tmp_path / "raw" / "zz").symlink_to(tmp_path)
    with pytest.raises(StoreError, match="outside"):
        store.get("raw/zz/secret.txt")


def test_a_hash_shaped_path_through_a_symlink_is_refused(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "data")
    rel = store.put(RAW)[1]
    outside = tmp_path / "outside"
    outside.mkdir()
    name = "b" * 62 + ".eml"
    (outside / name).write_bytes(b"secret")
    # A hash directory that leads out, and a file in a checked directory that does.
    (tmp_path / "data" / "raw" / "bb").symlink_to(outside)
    with pytest.raises(StoreError, match="outside"):
        store.get(f"raw/bb/{name}")
    (store.data_dir / rel).parent.joinpath(name).symlink_to(outside / name)
    with pytest.raises(StoreError, match="outside"):
        store.get(f"{rel.rsplit('/', 1)[0]}/{name}")
    assert store.get(rel) == RAW


def test_relative_path_for_wants_a_real_digest() -> None:
    with pytest.raises(StoreError):
        RawStore.relative_path_for("../" + "a" * 61)


def test_put_never_writes_through_a_symlinked_hash_directory(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    sha = hashlib.sha256(RAW).hexdigest()
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / sha[:2]).symlink_to(outside)
    with pytest.raises(StoreError, match="outside"):
        store.put(RAW)
    assert list(outside.iterdir()) == []


def test_a_batch_is_on_disk_when_it_ends_with_each_file_and_directory_flushed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RawStore(tmp_path)
    raws = [RAW + bytes([n]) * n for n in range(1, 31)]
    synced: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with store.batch() as batch:
        stored = [batch.put(raw) for raw in raws]
        assert batch.put(raws[0]) == stored[0]  # twice in one batch: written once
        # Nothing under its final name before the batch is durable.
        assert not any((tmp_path / rel).exists() for _sha, rel in stored)
    dirs = {(tmp_path / rel).parent for _sha, rel in stored}
    # One flush per file; each hash directory, the store and the data directory once.
    assert synced.count("file") == len(raws)
    assert synced.count("dir") == len(dirs) + 2
    for raw, (sha, rel) in zip(raws, stored, strict=True):
        assert sha == hashlib.sha256(raw).hexdigest()
        assert store.get(rel, verify=True) == raw
    assert not [p for d in dirs for p in d.iterdir() if p.suffix == ".tmp"]
    synced.clear()
    with store.batch() as batch:
        # Already stored and intact (perhaps by a run killed before it flushed the
        # directory): not written again, its directory flushed.
        assert batch.put(raws[1]) == stored[1]
    assert synced == ["dir", "dir"]  # its hash directory and the store


def test_a_batch_that_fails_leaves_no_file_behind(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    with pytest.raises(RuntimeError), store.batch() as batch:
        _sha, rel = batch.put(RAW)
        raise RuntimeError("the download broke off")
    assert not (tmp_path / rel).exists()
    assert list((tmp_path / rel).parent.iterdir()) == []
