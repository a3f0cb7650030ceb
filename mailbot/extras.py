"""Files beside the forms of one mail: a signed scan, a photo or a copy is a note, not an error."""

from __future__ import annotations

from collections.abc import Sequence

from mailbot.mail.message import Attachment
from parsers.model import FORM_NAMES, Form, ParseResult
from parsers.problems import problem
from parsers.sniff import describe_other

__all__ = ["form_signature", "settle_extras"]

# When two files hold the same form, the one counted is in the most direct format.
_FORMAT_RANK = {"xlsx": 0, "xlsm": 1, "docx": 2, "xls": 3, "doc": 4, "ods": 5, "odt": 6}

Signature = tuple[object, ...]


def _fold(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def form_signature(form: Form) -> Signature:
    """What makes two forms the same form: the type and the models (who, field, title)."""
    entries = sorted((e.kind, e.field, _fold(e.name), _fold(e.model)) for e in form.entries)
    return (form.form, form.declared_empty, tuple(entries))


def _valid(form: Form) -> bool:
    return not any(p.severity == "error" for p in form.problems)


def _keepers(
    results: Sequence[ParseResult], signatures: Sequence[list[Signature]]
) -> dict[Signature, int]:
    """For each distinct form, the index of the file whose copy counts."""
    best: dict[Signature, tuple[tuple[int, int, int], int]] = {}
    for index, result in enumerate(results):
        rank = _FORMAT_RANK.get(result.format, len(_FORMAT_RANK))
        for form, sig in zip(result.forms, signatures[index], strict=True):
            key = (0 if _valid(form) else 1, rank, index)
            if sig not in best or key < best[sig][0]:
                best[sig] = (key, index)
    return {sig: index for sig, (_, index) in best.items()}


def _quoted(name: str) -> str:
    return f"“{name}”"


def _is_scan(result: ParseResult, attachment: Attachment | None) -> str | None:
    """'pdf' or 'image' when the file is a PDF, a scan or a photo that was not read, else None."""
    if result.forms or not any(p.code == "unsupported-format" for p in result.problems):
        return None
    if result.format == "pdf":
        return "pdf"
    if attachment is not None and (
        attachment.is_image or describe_other(attachment.content) == "image"
    ):
        return "image"
    return None


def settle_extras(
    results: Sequence[ParseResult], attachments: Sequence[Attachment]
) -> list[ParseResult]:
    """The results with extra files turned into notes (warnings), in the same order.

    A file all of whose forms are the same forms (same type, same models) as forms counted
    from another file is a copy: it keeps no form and gets a `duplicate-copy` note. Once a
    form was read from some file, a PDF, scan or photo beside it gets an `extra-document`
    note instead of the "not a Word or Excel file" error. `attachments` are the files the
    results were read from, index for index.
    """
    signatures = [[form_signature(f) for f in result.forms] for result in results]
    keepers = _keepers(results, signatures)
    out: list[ParseResult] = []
    for index, result in enumerate(results):
        sigs = signatures[index]
        if sigs and all(keepers[s] != index for s in sigs):
            source = results[keepers[sigs[0]]]
            names = ", ".join(dict.fromkeys(FORM_NAMES.get(f.form, f.form) for f in result.forms))
            note = problem(
                "duplicate-copy",
                name=_quoted(result.file),
                form=names,
                source=_quoted(source.file),
            )
            out.append(ParseResult(result.file, result.format, [], [note]))
        else:
            out.append(result)
    read = [r for r in out if r.forms]
    if not read:
        return out
    source = next((r for r in read if all(_valid(f) for f in r.forms)), read[0])
    for index, result in enumerate(out):
        attachment = attachments[index] if index < len(attachments) else None
        kind = _is_scan(result, attachment)
        if kind is None:
            continue
        note = problem(
            "extra-document",
            variant="image" if kind == "image" else None,
            name=_quoted(result.file),
            source=_quoted(source.file),
        )
        out[index] = ParseResult(result.file, result.format, [], [note])
    return out
