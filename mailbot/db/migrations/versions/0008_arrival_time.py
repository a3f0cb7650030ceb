"""Arrival and processing times kept apart; the mail a mailbox held when first met.

`mails.received_at` is when the mail server received the mail (IMAP INTERNALDATE, a
Maildir's delivery time); `mails.fetched_at` is when the robot downloaded it. Rows from
before this revision only know the robot's time: it is copied into `fetched_at`.
`mailbox_known` lists the Maildir files present when the robot first met the mailbox.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mails") as batch:
        batch.add_column(sa.Column("fetched_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE mails SET fetched_at = received_at WHERE fetched_at IS NULL")
    op.create_table(
        "mailbox_known",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("noted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "ref", name=op.f("pk_mailbox_known")),
    )


def downgrade() -> None:
    op.drop_table("mailbox_known")
    with op.batch_alter_table("mails") as batch:
        batch.drop_column("fetched_at")
