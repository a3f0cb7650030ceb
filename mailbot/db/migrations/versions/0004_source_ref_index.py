"""Index the source's handle of each mail, so telling known mails from new ones stays cheap.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mails_source_source_ref", "mails", ["source", "source_ref"])


def downgrade() -> None:
    op.drop_index("ix_mails_source_source_ref", table_name="mails")
