"""What each unit owes, and mail without a form that staff must read until they handle it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("forms", sa.Text(), nullable=True))
    with op.batch_alter_table("mails") as batch:
        batch.add_column(
            sa.Column("for_staff", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("excerpt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("handled_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mails") as batch:
        batch.drop_column("handled_by")
        batch.drop_column("handled_at")
        batch.drop_column("excerpt")
        batch.drop_column("for_staff")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("forms")
