"""Alembic migration scripts of the mailbot database (run by mailbot.db.run_migrations).

A new revision: `mailbot.db.new_revision("what changed", "0002",
script_location=Path("mailbot/db/migrations"))` from the project root, then review it
(plain `sa.*` types, no import of mailbot.db, batch operations for SQLite ALTERs).
"""
