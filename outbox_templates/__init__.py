"""Outgoing-mail templates (Jinja2): one `render(event, context)` gives subject, text and HTML."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from mailbot import glossary
from outbox_templates.labels import form_required_label, form_short, form_title

EVENTS: Final = ("receipt", "notice", "reminder", "digest", "alert", "action")
MAX_SUBJECT_CHARS: Final = 200


@dataclass(frozen=True)
class Rendered:
    """One outgoing mail's words: a one-line subject, the plain text and the HTML alternative."""

    subject: str
    text: str
    html: str


def _vn_date(value: date | datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return value.strftime("%d/%m/%Y")


def _vn_time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%H:%M")


def _vn_datetime(value: datetime | None) -> str:
    """'14:05 ngày 14/02/2022'."""
    if value is None:
        return ""
    # As strftime("%H:%M") and ("%d/%m/%Y") write it, without two calls to the C library.
    day = f"{value.day:02d}/{value.month:02d}/{value.year}"
    return f"{value.hour:02d}:{value.minute:02d} ngày {day}"


def _formats(values: Any) -> str:
    """('xlsx', 'docx') -> '.xlsx, .docx'."""
    return ", ".join("." + str(v).lstrip(".") for v in values)


class _Environment(Environment):
    """An environment whose templates see its globals as one plain dict.

    Jinja's default is a ChainMap over the environment's globals, which every render, macro
    call, import and include walks key by key (a fifth of a receipt's rendering). Our
    globals are all set in `environment()` before any template is loaded and never change.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The template's own globals over a copy of the environment's."""
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment: HTML templates autoescaped, text ones not, strict names."""
    env = _Environment(
        loader=PackageLoader("outbox_templates", ""),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        # Every template kept (there are a few dozen), in a plain dict: a template, its
        # layout, macros and includes are looked up several times for each mail.
        cache_size=-1,
    )
    env.filters.update(
        vn_date=_vn_date,
        vn_time=_vn_time,
        vn_datetime=_vn_datetime,
        form_title=form_title,
        form_short=form_short,
        form_required=form_required_label,
        formats=_formats,
        format_words=glossary.format_words,
    )
    # States and labels in one spelling (tests/mailbot/test_glossary.py): {{ glossary.MISSING }}.
    env.globals["glossary"] = glossary
    return env


@lru_cache(maxsize=64)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _variables(context: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        names = {name: getattr(context, name) for name in _field_names(type(context))}
    elif isinstance(context, Mapping):
        names = {str(k): v for k, v in context.items()}
    else:
        raise TypeError(f"template context must be a dataclass or a mapping, not {type(context)}")
    names["view"] = context
    return names


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > MAX_SUBJECT_CHARS:
        line = line[: MAX_SUBJECT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return line


def render(event: str, context: object) -> Rendered:
    """Render `<event>.subject.j2`, `<event>.txt.j2` and `<event>.html.j2` with one context.

    Raises ValueError for an unknown event and jinja2.UndefinedError when the context lacks a
    name a template uses.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown mail event {event!r}; expected one of {', '.join(EVENTS)}")
    env = environment()
    variables = _variables(context)
    subject = env.get_template(f"{event}.subject.j2").render(variables)
    text = env.get_template(f"{event}.txt.j2").render(variables)
    html = env.get_template(f"{event}.html.j2").render(variables)
    return Rendered(subject=_one_line(subject), text=text, html=html)


def warm(events: tuple[str, ...] = ("receipt", "notice"), cache_dir: Path | None = None) -> None:
    """Compile the templates of `events` now, and the partials they extend, import and
    include (loaded only when a template first renders), so that no first mail pays.

    With `cache_dir` (a private directory of the daemon's data directory), their compiled
    code is read from it when it was made from the same text by the same Jinja, Python and
    environment, and written to it otherwise (see outbox_templates.compiled).
    """
    env = environment()
    cache = None
    if cache_dir is not None:
        from outbox_templates.compiled import compiled_cache

        cache = compiled_cache(cache_dir, Path(__file__))
    # Only while warming: a template loaded later (rarely) is compiled as before.
    env.bytecode_cache = cache
    try:
        for event in events:
            for part in ("subject", "txt", "html"):
                env.get_template(f"{event}.{part}.j2")
        for name in env.list_templates(extensions=["j2"]):
            if name.startswith("_"):
                env.get_template(name)
    finally:
        env.bytecode_cache = None


__all__ = ["EVENTS", "Rendered", "environment", "render", "warm"]
