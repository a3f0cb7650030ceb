"""Outbox claims: a row being sent is "sending" with the time it was claimed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('queued', 'sent', 'failed', 'bounced')"
_NEW = "status IN ('queued', 'sending', 'sent', 'failed', 'bounced')"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_status"), _NEW)


def downgrade() -> None:
    # A claim in flight goes back to the queue: the old schema has no "sending".
    op.execute("UPDATE outbox SET status = 'queued' WHERE status = 'sending'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_status"), _OLD)
        batch.drop_column("claimed_at")
