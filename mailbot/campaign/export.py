"""The consolidated workbook from the database: what each unit sent, as the board signs it."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.export_docx import write_consolidated_docx
from mailbot.campaign.export_model import ExportModel, FormStatus, UnitStatusRow, local
from mailbot.campaign.export_xlsx import write_consolidated_xlsx
from mailbot.campaign.status import FORM_OK, UnitState, unit_states
from mailbot.config import BoardConfig
from rules.campaign import Campaign

log = logging.getLogger(__name__)


def export_data(
    session: Session,
    campaign: Campaign,
    now: datetime | None = None,
    states: list[UnitState] | None = None,
) -> tuple[list[ExportModel], list[UnitStatusRow]]:
    """The consolidated workbook's rows: models of each unit's counting forms, status rows."""
    states = states if states is not None else unit_states(session, campaign, now)
    places = {r.code: (r.group, r.order) for r in dbm.unit_register(session)}
    models: list[ExportModel] = []
    rows: list[UnitStatusRow] = []
    for unit in states:
        forms: dict[str, FormStatus | None] = {}
        for code, f in unit.forms.items():
            if not f.received or f.received_at is None:
                forms[code] = None
                continue
            forms[code] = FormStatus(
                received_at=f.received_at,
                late=f.late,
                entries=f.entries,
                errors=f.errors,
                problems=list(f.problems),
                sender=f.sender or "",
                state=f.status,
                declared_empty=f.declared_empty,
            )
            if f.status != FORM_OK or f.submission_id is None:
                continue
            sub = dbm.get_submission(session, f.submission_id)
            if sub is None:
                continue
            for e in sub.entries:
                try:
                    models.append(
                        ExportModel(
                            unit_code=unit.code,
                            unit_name=unit.name,
                            form=code,
                            kind=e.kind,
                            field=e.field,
                            no=e.no,
                            name=e.name,
                            model=e.model,
                            note=e.note,
                        )
                    )
                except ValueError:
                    log.warning("entry %s of submission %s not exportable", e.id, sub.id)
        group, order = places.get(unit.code, (None, None))
        rows.append(UnitStatusRow(unit.code, unit.name, unit.state, forms, unit.owed, group, order))
    return models, rows


def consolidated_xlsx(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    board: BoardConfig | None = None,
    states: list[UnitState] | None = None,
) -> bytes:
    """The consolidated workbook (xlsx bytes) as the database stands at `now`."""
    models, rows = export_data(session, campaign, now, states)
    return write_consolidated_xlsx(models, rows, campaign, now, board=board)


def consolidated_docx(
    session: Session, campaign: Campaign, now: datetime, *, board: BoardConfig | None = None
) -> bytes:
    """The same document as a Word file."""
    models, rows = export_data(session, campaign, now)
    return write_consolidated_docx(models, rows, campaign, now, board=board)


def export_file_name(campaign: Campaign, now: datetime, suffix: str = "xlsx") -> str:
    """'Tổng hợp Dân vận khéo 2022 - 14-02-2022.xlsx'."""
    day = local(now, campaign).strftime("%d-%m-%Y")
    return f"Tổng hợp Dân vận khéo {campaign.year} - {day}.{suffix}"
