"""Shared OOXML package plumbing: a safe XML parser, relationships, part lookup."""

from __future__ import annotations

import contextlib
import functools
import io
import posixpath
import zipfile
from collections.abc import Callable
from types import MappingProxyType

from lxml import etree

from parsers.safety import feed_member, plain_member

PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_REL_TAG = f"{{{PKG_REL_NS}}}Relationship"


class Package(zipfile.ZipFile):
    """A zip held in memory whose members are read straight from its bytes.

    ZipFile.read goes through a file object, a shared-file wrapper and a streaming
    decompressor for every part, which costs more than inflating a small part itself. A
    member that inflates cleanly to its declared size and CRC is read in one call; any
    other (odd flags, damage, encryption) goes through ZipFile.read and its errors.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._data = data

    def read(self, name: str | zipfile.ZipInfo, pwd: bytes | None = None) -> bytes:
        """The member's bytes, as ZipFile.read gives them."""
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if pwd is None:
            content = plain_member(self, info, self._data)
            if content is not None:
                return content
        return super().read(info, pwd)

    def feed(self, name: str, consume: Callable[[bytes], bool]) -> bool | None:
        """The member's bytes to `consume` in chunks, as safety.feed_member does."""
        return feed_member(self, self.getinfo(name), self._data, consume)


def scan_part(
    zf: zipfile.ZipFile, name: str, scanner: Callable[[], Callable[[bytes], bool]]
) -> bool:
    """Whether a scanner (made by `scanner`, fed the member's bytes in order) answers True.

    Straight from the package's bytes where it can (Package.feed), else a fresh scanner
    gets the member read whole, with ZipFile.read's errors (KeyError for a missing one).
    """
    if isinstance(zf, Package):
        fed = zf.feed(name, scanner())
        if fed is not None:
            return fed
    return scanner()(zf.read(name))


def open_package(
    data: bytes, package: zipfile.ZipFile | None = None
) -> contextlib.AbstractContextManager[zipfile.ZipFile]:
    """The zip package of `data`: `package` when the caller opened it already (and closes it)."""
    if package is not None:
        return contextlib.nullcontext(package)
    return Package(data)


# No entities, no DTD, no network, default size bounds (huge_tree off); comments and
# processing instructions dropped. For every parser and iterparse over a unit's XML.
SAFE_XML = MappingProxyType(
    {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }
)


def xml_parser() -> etree.XMLParser:
    """No entities, no DTD, no network, default size bounds (huge_tree off)."""
    return etree.XMLParser(**SAFE_XML)


def parse_part(zf: zipfile.ZipFile, path: str) -> etree._Element | None:
    """The root element of one package part, or None when it is missing or not XML."""
    try:
        return etree.fromstring(zf.read(path), xml_parser())
    except (KeyError, etree.XMLSyntaxError):
        return None


@functools.lru_cache(maxsize=1024)
def resolve(base_dir: str, target: str) -> str:
    """A relationship target as a zip member name (never leaving the package root)."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        path = posixpath.normpath(target.lstrip("/"))
    else:
        path = posixpath.normpath(posixpath.join(base_dir, target))
    return "" if path.startswith("..") else path


def rels(zf: zipfile.ZipFile, part: str) -> list[tuple[str, str, str]]:
    """(id, type, member name) of the internal relationships of `part` ("" = the package).

    External targets (TargetMode="External": links, remote templates, images on the web)
    are dropped here, so nothing downstream can ever fetch them.
    """
    base, leaf = posixpath.split(part)
    root = parse_part(zf, posixpath.join(base, "_rels", leaf + ".rels"))
    if root is None:
        return []
    out = []
    for rel in root.iter(_REL_TAG):
        if (rel.get("TargetMode") or "").lower() == "external":
            continue
        target = resolve(base, rel.get("Target") or "")
        if target:
            out.append((rel.get("Id") or "", rel.get("Type") or "", target))
    return out


def main_part(zf: zipfile.ZipFile, names: set[str], default: str) -> str:
    """The package's officeDocument part (word/document.xml, xl/workbook.xml ...)."""
    for _rid, rtype, target in rels(zf, ""):
        if rtype.endswith("/officeDocument") and target in names:
            return target
    return default
