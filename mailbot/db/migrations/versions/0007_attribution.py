"""Attribution: the unit register's parent unit, and who sent each recorded form.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("parent", sa.Text(), nullable=True))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("sent_by", sa.Text(), nullable=True))
    # Before this revision a confirmed form was filed under the unit whose address sent it.
    op.execute("UPDATE submissions SET sent_by = unit_code WHERE NOT awaiting_confirmation")


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("sent_by")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("parent")
