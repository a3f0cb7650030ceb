"""`mailbot backup`: an online copy that is consistent while another process writes."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time

from mailbot.cli import main
from mailbot.commands.backup import backup_database
from mailbot.db import DB_FILE_NAME, open_database


def _writer(path, stop: threading.Event, counter: list[int]) -> None:  # noqa: ANN001
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    try:
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO filler (payload) VALUES (randomblob(2000))")
            conn.execute("UPDATE tally SET n = n + 1")
            conn.execute("COMMIT")
            counter[0] += 1
    finally:
        conn.close()


def test_backup_while_another_thread_writes(tmp_path):
    data = tmp_path / "data"
    open_database(data).dispose()  # the real schema, WAL mode
    db = data / DB_FILE_NAME
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, payload BLOB)")
        conn.execute("CREATE TABLE tally (n INTEGER)")
        conn.execute("INSERT INTO tally VALUES (0)")
        conn.execute(
            "INSERT INTO filler (payload) SELECT randomblob(4000) FROM "
            "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3000) "
            "SELECT x FROM c)"
        )
    conn.close()
    stop, counter = threading.Event(), [0]
    writer = threading.Thread(target=_writer, args=(db, stop, counter))
    writer.start()
    try:
        while counter[0] < 20:
            time.sleep(0.01)
        out = tmp_path / "backup.sqlite3"
        pages = backup_database(db, out)
        writes_during = counter[0]
    finally:
        stop.set()
        writer.join()
    assert pages > 1000 and writes_during >= 20
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    copy = sqlite3.connect(out)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # One snapshot: the tally and the rows written with it agree.
        n = copy.execute("SELECT n FROM tally").fetchone()[0]
        rows = copy.execute("SELECT count(*) FROM filler").fetchone()[0]
        assert rows == 3000 + n
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    finally:
        copy.close()


def test_backup_command(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    out = tmp_path / "b.sqlite3"
    assert main(["--config", str(cfg), "backup", "--out", str(out)]) == 1
    assert "chưa có cơ sở dữ liệu" in capsys.readouterr().err
    assert main(["--config", str(cfg), "units", "list"]) == 0
    assert main(["--config", str(cfg), "backup", "--out", str(out)]) == 0
    assert out.is_file() and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert main(["--config", str(cfg), "backup", "--out", str(out)]) == 2
    assert "đã có" in capsys.readouterr().err
