"""Mail claims: a mail being decided is "processing", with when and by which process.

Outbox claims get their owner too, so that a live daemon's claims are never taken from it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('received', 'processed', 'retry', 'quarantined', 'oversize', 'ignored')"
_NEW = (
    "status IN ('received', 'processing', 'processed', 'retry', 'quarantined', 'oversize', "
    "'ignored')"
)


def upgrade() -> None:
    with op.batch_alter_table("mails") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_mails_status"), type_="check")
        batch.create_check_constraint(op.f("ck_mails_status"), _NEW)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Text(), nullable=True))


def downgrade() -> None:
    # A mail being decided goes back to "received": the old schema has no "processing".
    op.execute("UPDATE mails SET status = 'received' WHERE status = 'processing'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
    with op.batch_alter_table("mails") as batch:
        batch.drop_constraint(op.f("ck_mails_status"), type_="check")
        batch.create_check_constraint(op.f("ck_mails_status"), _OLD)
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_at")
