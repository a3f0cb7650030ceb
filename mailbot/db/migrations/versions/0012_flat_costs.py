"""Indexes that keep per-mail queries flat as the tables grow.

The counting version of a unit's form is looked up among valid rows only (not every
version ever received), and the hourly reply limit counts one recipient's rows by an
indexed key instead of reading every outgoing mail of the last hour.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_submissions_status_unit_code_form",
        "submissions",
        ["status", "unit_code", "form", "received_at"],
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("to_key", sa.Text(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, to_addrs FROM outbox")).fetchall()
    for row_id, to_addrs in rows:
        addrs = json.loads(to_addrs)
        if len(addrs) == 1:
            conn.execute(
                sa.text("UPDATE outbox SET to_key = :key WHERE id = :id"),
                {"key": addrs[0].strip().lower(), "id": row_id},
            )
    op.create_index("ix_outbox_to_key_created_at", "outbox", ["to_key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_to_key_created_at", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("to_key")
    op.drop_index("ix_submissions_status_unit_code_form", table_name="submissions")
