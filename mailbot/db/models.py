"""Typed ORM models of the mailbot database and their fixed vocabularies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

DB_FILE_NAME = "mailbot.sqlite3"
DEFAULT_BUSY_TIMEOUT_MS = 10_000

# "processing": claimed by one daemon (claimed_at, claimed_by) while it decides the mail.
MAIL_STATUSES: tuple[str, ...] = (
    "received",
    "processing",
    "processed",
    "retry",
    "quarantined",
    "oversize",
    "ignored",
)
SUBMISSION_STATUSES: tuple[str, ...] = ("valid", "invalid", "superseded")
OUTBOX_KINDS: tuple[str, ...] = ("receipt", "reminder", "digest", "notice", "alert")
# "sending": claimed by one sender (claimed_at) between "queued" and its outcome.
OUTBOX_STATUSES: tuple[str, ...] = ("queued", "sending", "sent", "failed", "bounced")
FORM_TYPES: tuple[str, ...] = ("M1", "M2")

# Longest back-off between two attempts, whatever the attempt count.
MAX_BACKOFF_SECONDS = 24 * 3600
# Stored error texts are capped: a traceback-sized message is useless in a digest.
MAX_ERROR_CHARS = 4000


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC text; naive values are refused, not guessed."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware datetime in, naive UTC out."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Stored naive UTC back to an aware UTC datetime."""
        return None if value is None else value.replace(tzinfo=UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention (needed by SQLite batch migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class MailboxState(Base):
    """How far the inbox has been read: the last UID seen within one UIDVALIDITY."""

    __tablename__ = "mailbox_state"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    uidvalidity: Mapped[int]
    last_uid: Mapped[int]
    updated_at: Mapped[datetime]


class MailboxKnown(Base):
    """A mail that was already in a mailbox when the robot first met it: never processed."""

    __tablename__ = "mailbox_known"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    ref: Mapped[str] = mapped_column(Text, primary_key=True)
    noted_at: Mapped[datetime]


class Unit(Base):
    """A unit of the register, keyed by its short stable code."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    # The forms the unit must send, "M1;M2" or "M2"; None: what the campaign requires.
    forms: Mapped[str | None] = mapped_column(Text)
    # The unit directly above (by code): its address may send this unit's forms.
    parent: Mapped[str | None] = mapped_column(Text)
    # The register's order in signed documents: group (mailbot.units.UNIT_GROUPS) and place.
    group: Mapped[str | None] = mapped_column("unit_group", Text)
    order: Mapped[int | None] = mapped_column("sort_order")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    emails: Mapped[list[UnitEmail]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def alias_list(self) -> list[str]:
        """The aliases as a list."""
        return list(json.loads(self.aliases or "[]"))

    @property
    def form_list(self) -> tuple[str, ...]:
        """The forms the unit must send; empty when the campaign decides."""
        return tuple(f for f in (self.forms or "").split(";") if f)


class UnitEmail(Base):
    """A sender address known for a unit (lower case); unconfirmed ones await staff."""

    __tablename__ = "unit_emails"

    email: Mapped[str] = mapped_column(Text, primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code", ondelete="CASCADE"), index=True)
    confirmed: Mapped[bool] = mapped_column(default=True)
    added_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(Text, default="import")

    unit: Mapped[Unit] = relationship(back_populates="emails")


NOUID_INDEX = "ux_mails_source_sha256_nouid"
NOUID_WHERE = "uid IS NULL"


class Mail(Base):
    """One incoming mail, recorded before any parsing, with its processing state."""

    __tablename__ = "mails"
    __table_args__ = (
        UniqueConstraint("source", "uidvalidity", "uid"),
        Index("ix_mails_status_next_attempt_at", "status", "next_attempt_at"),
        # Listing a Maildir asks which keys are known: one indexed look-up per batch.
        Index("ix_mails_source_source_ref", "source", "source_ref"),
        # Sources without UIDs (Maildir): the same bytes in the same source are the same mail.
        # Its PostgreSQL form (the same WHERE) is added by `postgresql_forms()`.
        Index(
            NOUID_INDEX,
            "source",
            "sha256",
            unique=True,
            sqlite_where=text(NOUID_WHERE),
        ),
        CheckConstraint(_in("status", MAIL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    uidvalidity: Mapped[int | None]
    uid: Mapped[int | None]
    message_id: Mapped[str | None] = mapped_column(Text, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    raw_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int]
    from_addr: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    # When the mail server received the mail (IMAP INTERNALDATE, Maildir delivery time):
    # lateness, receipts and the digest use it.
    received_at: Mapped[datetime]
    # When the robot downloaded it (processed_at: when it was decided).
    fetched_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(Text, default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"), index=True)
    awaiting_confirmation: Mapped[bool] = mapped_column(default=False)
    moved: Mapped[bool] = mapped_column(default=False)
    processed_at: Mapped[datetime | None]
    # The source's own handle (IMAP UID as text, Maildir key), to move the mail when done.
    source_ref: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]  # when a daemon claimed it ("processing")
    claimed_by: Mapped[str | None] = mapped_column(Text)  # which process (mailbot.claims)
    # A unit's mail without a form (a question, a cover letter): staff read it (digest,
    # `mailbot review`) until one of them marks it handled.
    for_staff: Mapped[bool] = mapped_column(default=False, server_default=false())
    excerpt: Mapped[str | None] = mapped_column(Text)
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(Text)


class Submission(Base):
    """One form (M1 or M2) found in a mail's attachment; versions are kept, never overwritten."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_unit_code_form_received_at", "unit_code", "form", "received_at"),
        # The counting versions: valid rows only, however many versions were received.
        Index("ix_submissions_status_unit_code_form", "status", "unit_code", "form", "received_at"),
        CheckConstraint(_in("form", FORM_TYPES), name="form"),
        CheckConstraint(_in("status", SUBMISSION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    form: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    late: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(Text)
    entries_count: Mapped[int] = mapped_column(default=0)
    errors_count: Mapped[int] = mapped_column(default=0)
    warnings_count: Mapped[int] = mapped_column(default=0)
    awaiting_confirmation: Mapped[bool] = mapped_column(default=False)
    result_json: Mapped[str] = mapped_column(Text)
    unit_name_on_form: Mapped[str | None] = mapped_column(Text)
    # The registered unit whose address sent the mail (None: an unknown sender); the form is
    # recorded for the unit it names, which may be another one.
    sent_by: Mapped[str | None] = mapped_column(Text)

    entries: Mapped[list[SubmissionEntry]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubmissionEntry.id",
    )

    @property
    def result(self) -> dict[str, Any]:
        """The form's parse result (contract JSON) as a dict."""
        return dict(json.loads(self.result_json))


class SubmissionEntry(Base):
    """One registered model of a submission."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(Text)
    no: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text)

    submission: Mapped[Submission] = relationship(back_populates="entries")


class FileResult(Base):
    """What became of one attachment (readable or not): its format, problems and form count."""

    __tablename__ = "file_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)
    file_name: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    problems_json: Mapped[str] = mapped_column(Text, default="[]")
    forms_count: Mapped[int] = mapped_column(default=0)

    @property
    def problems(self) -> list[dict[str, Any]]:
        """The attachment's problems as contract JSON dicts."""
        return list(json.loads(self.problems_json or "[]"))


class Outbox(Base):
    """One outgoing mail, queued with its final bytes and Message-ID, delivered by the sender."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # The hourly reply limit counts one recipient's recent rows by this index.
        Index("ix_outbox_to_key_created_at", "to_key", "created_at"),
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    to_addrs: Mapped[str] = mapped_column(Text)  # JSON list of addresses
    # The one recipient, normalised (lower case), when there is exactly one; else NULL.
    to_key: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text, default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)
    claimed_at: Mapped[datetime | None]  # when a sender claimed it ("sending")
    claimed_by: Mapped[str | None] = mapped_column(Text)  # which process (mailbot.claims)

    @property
    def recipients(self) -> list[str]:
        """The envelope recipients as a list."""
        return list(json.loads(self.to_addrs))


class JobRun(Base):
    """A scheduled point (a reminder, a digest) that has been handled: never twice."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "point"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(Text)
    point: Mapped[str] = mapped_column(Text)
    done_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)


class Bounce(Base):
    """A delivery report (RFC 3464) matched, where possible, to the outgoing mail it answers."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    original_message_id: Mapped[str | None] = mapped_column(Text)
    recipient: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(Text)
    diagnostic: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)


class Event(Base):
    """Something staff should hear about in the digest (quarantine, bounce, unknown sender...)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(Text)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)


class AlertState(Base):
    """One watched thing (the mailbox, the SMTP server, the quarantine) and its alert state."""

    __tablename__ = "alert_state"

    channel: Mapped[str] = mapped_column(Text, primary_key=True)
    failing_since: Mapped[datetime | None]  # None: working
    last_error: Mapped[str | None] = mapped_column(Text)
    alerted_at: Mapped[datetime | None]  # an alert went out for the current failure
    # The quarantine: the highest quarantined mail id an alert has already named.
    last_seen_id: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[datetime]


class StaffToken(Base):
    """A staff action code that has been used: the same code never acts twice."""

    __tablename__ = "staff_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the code
    used_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(Text)  # the staff address that sent it
    kind: Mapped[str] = mapped_column(Text)
    target_mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"))
    # The staff member's mail that carried the code.
    command_mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)


def postgresql_forms() -> None:
    """Give the models what only PostgreSQL reads: the partial index's WHERE (idempotent).

    Called when a PostgreSQL database is opened, and before a migration is generated. Written
    into the model itself (`postgresql_where=`), it imported SQLAlchemy's PostgreSQL dialect
    and its drivers' modules (asyncio among them) into every process, SQLite ones included:
    a tenth of a CPU-second of each start. The migrations create the index on PostgreSQL
    with its WHERE either way (0001_initial).
    """
    (index,) = (i for i in cast(Table, Mail.__table__).indexes if i.name == NOUID_INDEX)
    index.dialect_options["postgresql"]["where"] = text(NOUID_WHERE)
