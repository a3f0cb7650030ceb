"""Staff action codes already used (commands by mail act once).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_tokens",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("target_mail_id", sa.Integer(), nullable=True),
        sa.Column("command_mail_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_mail_id"], ["mails.id"], name=op.f("fk_staff_tokens_target_mail_id_mails")
        ),
        sa.ForeignKeyConstraint(
            ["command_mail_id"], ["mails.id"], name=op.f("fk_staff_tokens_command_mail_id_mails")
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_staff_tokens")),
    )
    op.create_index(
        op.f("ix_staff_tokens_command_mail_id"), "staff_tokens", ["command_mail_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_tokens_command_mail_id"), table_name="staff_tokens")
    op.drop_table("staff_tokens")
