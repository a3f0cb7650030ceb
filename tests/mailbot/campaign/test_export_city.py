"""The city's workbook: per-district figures and every district's models, read back."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from docx import Document
from openpyxl import load_workbook

from mailbot.campaign.export import ExportModel, UnitStatusRow
from mailbot.campaign.export_city import (
    SUMMARY_SHEET,
    DistrictData,
    city_docx,
    city_xlsx,
    summary_rows,
)
from rules.campaign import newest_campaign

NOW = datetime(2022, 2, 18, 1, 0, tzinfo=UTC)


def _model(code: str, form: str, field: str, model: str, kind: str = "collective") -> ExportModel:
    return ExportModel(code, f"Đơn vị {code}", form, kind, field, None, "Chi bộ", model, None)


def _districts() -> list[DistrictData]:
    campaign = newest_campaign()
    tx = DistrictData(
        "thanh-xuan",
        "Thanh Xuân",
        campaign,
        (
            _model("KT", "M2", "economy", "Chợ văn minh"),
            _model("KT", "M2", "economy", "Hộ kinh doanh tự quản", "individual"),
            _model("MT", "M1", "political_system", "Tiếp dân cuối tuần"),
        ),
        (
            UnitStatusRow("KT", "Đơn vị KT", "complete"),
            UnitStatusRow("MT", "Đơn vị MT", "partial"),
            UnitStatusRow("HN", "Đơn vị HN", "missing"),
        ),
    )
    bd = DistrictData(
        "ba-dinh",
        "Ba Đình",
        campaign,
        (_model("DB", "M2", "culture_society", "=Sân chơi cho trẻ"),),
        (UnitStatusRow("DB", "Đơn vị DB", "complete"), UnitStatusRow("QT", "Quán Thánh", "errors")),
    )
    return [tx, bd]


def test_summary_rows_count_units_by_state_and_models_by_form_and_field():
    districts = _districts()
    rows = summary_rows(districts, ["M1", "M2"])
    # TT, district, units, 5 states (the glossary's order: complete, awaiting confirmation,
    # errors, partial, missing), then per form 4 fields + total.
    assert rows[0][:8] == [1, "Thanh Xuân", 3, 1, 0, 0, 1, 1]
    assert rows[0][8:] == [0, 0, 0, 1, 1, 2, 0, 0, 0, 2]
    assert rows[1][:8] == [2, "Ba Đình", 2, 1, 0, 1, 0, 0]
    assert rows[1][8:] == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1]
    assert rows[2] == [None, "TỔNG", 5, 2, 0, 1, 1, 1, 0, 0, 0, 1, 1, 2, 1, 0, 0, 3]


def test_city_workbook_holds_every_district_read_back():
    districts = _districts()
    data = city_xlsx(districts, districts[0].campaign, NOW)
    assert data == city_xlsx(districts, districts[0].campaign, NOW)  # same input, same bytes
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames[0] == SUMMARY_SHEET
    summary = {r[1]: r for r in wb[SUMMARY_SHEET].iter_rows(values_only=True) if r[0] or r[1]}
    assert summary["Thanh Xuân"][2] == 3 and summary["Ba Đình"][2] == 2
    assert summary["TỔNG"][-1] == 3
    m2 = wb.worksheets[2]
    assert "CẤP CƠ SỞ" in str(m2["A1"].value)
    rows = list(m2.iter_rows(values_only=True))
    headings = [r[0] for r in rows if isinstance(r[0], str) and "mô hình)" in r[0]]
    assert headings == ["Thanh Xuân (2 mô hình)", "Ba Đình (1 mô hình)"]
    models = [r for r in rows if isinstance(r[0], int)]
    assert [(r[0], r[1], r[6]) for r in models] == [
        (1, "Thanh Xuân", "Chợ văn minh"),
        (2, "Thanh Xuân", "Hộ kinh doanh tự quản"),
        (1, "Ba Đình", "=Sân chơi cho trẻ"),
    ]
    assert [r[3] for r in models] == ["Tập thể", "Cá nhân", "Tập thể"]
    # A unit's text that looks like a formula stays text.
    cell = next(c for row in m2.iter_rows() for c in row if c.value == "=Sân chơi cho trẻ")
    assert cell.data_type == "s"


def test_city_word_document_has_the_summary_and_the_models():
    districts = _districts()
    doc = Document(io.BytesIO(city_docx(districts, districts[0].campaign, NOW)))
    texts = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert "Thanh Xuân" in texts and "Ba Đình" in texts and "TỔNG" in texts
    assert "Tiếp dân cuối tuần" in texts and "=Sân chơi cho trẻ" in texts
    assert "Ba Đình (1 mô hình)" in texts
