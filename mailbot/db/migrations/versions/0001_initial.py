"""Initial schema: mail, units, submissions, outbox, jobs, bounces and events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("point", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "point", name=op.f("uq_job_runs_job_point")),
    )
    op.create_table(
        "mailbox_state",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=False),
        sa.Column("last_uid", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_mailbox_state")),
    )
    op.create_table(
        "units",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_units")),
    )
    op.create_table(
        "mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=True),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("from_addr", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("quarantine_reason", sa.Text(), nullable=True),
        sa.Column("unit_code", sa.Text(), nullable=True),
        sa.Column("awaiting_confirmation", sa.Boolean(), nullable=False),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'retry', 'quarantined', 'oversize', 'ignored')",
            name=op.f("ck_mails_status"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_mails_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mails")),
        sa.UniqueConstraint(
            "source", "uidvalidity", "uid", name=op.f("uq_mails_source_uidvalidity_uid")
        ),
    )
    op.create_index(op.f("ix_mails_message_id"), "mails", ["message_id"], unique=False)
    op.create_index(
        "ix_mails_status_next_attempt_at", "mails", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(op.f("ix_mails_unit_code"), "mails", ["unit_code"], unique=False)
    op.create_index(
        "ux_mails_source_sha256_nouid",
        "mails",
        ["source", "sha256"],
        unique=True,
        sqlite_where=sa.text("uid IS NULL"),
        postgresql_where=sa.text("uid IS NULL"),
    )
    op.create_table(
        "unit_emails",
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_unit_emails_unit_code_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_unit_emails")),
    )
    op.create_index(op.f("ix_unit_emails_unit_code"), "unit_emails", ["unit_code"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=True),
        sa.Column("unit_code", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["mail_id"], ["mails.id"], name=op.f("fk_events_mail_id_mails")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"], unique=False)
    op.create_index(op.f("ix_events_mail_id"), "events", ["mail_id"], unique=False)
    op.create_table(
        "file_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("problems_json", sa.Text(), nullable=False),
        sa.Column("forms_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mail_id"], ["mails.id"], name=op.f("fk_file_results_mail_id_mails")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_results")),
    )
    op.create_index(op.f("ix_file_results_mail_id"), "file_results", ["mail_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=True),
        sa.Column("to_addrs", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('receipt', 'reminder', 'digest', 'notice')", name=op.f("ck_outbox_kind")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'bounced')", name=op.f("ck_outbox_status")
        ),
        sa.ForeignKeyConstraint(["mail_id"], ["mails.id"], name=op.f("fk_outbox_mail_id_mails")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    op.create_index(op.f("ix_outbox_created_at"), "outbox", ["created_at"], unique=False)
    op.create_index(op.f("ix_outbox_mail_id"), "outbox", ["mail_id"], unique=False)
    op.create_index(
        "ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("form", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("entries_count", sa.Integer(), nullable=False),
        sa.Column("errors_count", sa.Integer(), nullable=False),
        sa.Column("warnings_count", sa.Integer(), nullable=False),
        sa.Column("awaiting_confirmation", sa.Boolean(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("unit_name_on_form", sa.Text(), nullable=True),
        sa.CheckConstraint("form IN ('M1', 'M2')", name=op.f("ck_submissions_form")),
        sa.CheckConstraint(
            "status IN ('valid', 'invalid', 'superseded')", name=op.f("ck_submissions_status")
        ),
        sa.ForeignKeyConstraint(
            ["mail_id"], ["mails.id"], name=op.f("fk_submissions_mail_id_mails")
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_submissions_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(op.f("ix_submissions_mail_id"), "submissions", ["mail_id"], unique=False)
    op.create_index(
        "ix_submissions_unit_code_form_received_at",
        "submissions",
        ["unit_code", "form", "received_at"],
        unique=False,
    )
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("original_message_id", sa.Text(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["mail_id"], ["mails.id"], name=op.f("fk_bounces_mail_id_mails")),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_bounces_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
    )
    op.create_index(op.f("ix_bounces_mail_id"), "bounces", ["mail_id"], unique=False)
    op.create_index(op.f("ix_bounces_outbox_id"), "bounces", ["outbox_id"], unique=False)
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("no", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_entries_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    op.create_index(op.f("ix_entries_submission_id"), "entries", ["submission_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_entries_submission_id"), table_name="entries")
    op.drop_table("entries")
    op.drop_index(op.f("ix_bounces_outbox_id"), table_name="bounces")
    op.drop_index(op.f("ix_bounces_mail_id"), table_name="bounces")
    op.drop_table("bounces")
    op.drop_index("ix_submissions_unit_code_form_received_at", table_name="submissions")
    op.drop_index(op.f("ix_submissions_mail_id"), table_name="submissions")
    op.drop_table("submissions")
    op.drop_index("ix_outbox_status_next_attempt_at", table_name="outbox")
    op.drop_index(op.f("ix_outbox_mail_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_created_at"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_file_results_mail_id"), table_name="file_results")
    op.drop_table("file_results")
    op.drop_index(op.f("ix_events_mail_id"), table_name="events")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_unit_emails_unit_code"), table_name="unit_emails")
    op.drop_table("unit_emails")
    op.drop_index("ux_mails_source_sha256_nouid", table_name="mails")
    op.drop_index(op.f("ix_mails_unit_code"), table_name="mails")
    op.drop_index("ix_mails_status_next_attempt_at", table_name="mails")
    op.drop_index(op.f("ix_mails_message_id"), table_name="mails")
    op.drop_table("mails")
    op.drop_table("units")
    op.drop_table("mailbox_state")
    op.drop_table("job_runs")
