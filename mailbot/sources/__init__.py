"""Where mail comes from: an IMAP folder or a local Maildir, chosen by the inbox URL.

The IMAP and Maildir classes load on first use (PEP 562 `__getattr__`): a command that only
catches SourceError does not pay for imaplib, ssl and imap-tools.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from mailbot.config import ConfigError, InboxConfig
from mailbot.sources.base import (
    HEADER_PEEK_BYTES,
    DoneRef,
    IncomingRef,
    KnownFn,
    Source,
    SourceError,
    StaleUidValidity,
)

if TYPE_CHECKING:
    import ssl

    from mailbot.sources.imap import FALLBACK_KEYWORD, ImapSource, ImapTarget, parse_imap_url
    from mailbot.sources.maildir import MaildirSource

_LAZY = {
    "FALLBACK_KEYWORD": "mailbot.sources.imap",
    "ImapSource": "mailbot.sources.imap",
    "ImapTarget": "mailbot.sources.imap",
    "parse_imap_url": "mailbot.sources.imap",
    "MaildirSource": "mailbot.sources.maildir",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def open_source(
    config: InboxConfig,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Source:
    """The source the inbox URL names: imap://, imaps:// or maildir:PATH."""
    url = config.url
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("imap", "imaps"):
        from mailbot.sources.imap import ImapSource

        return ImapSource(config, ssl_context=ssl_context)
    if scheme == "maildir":
        from mailbot.sources.maildir import MaildirSource

        raw = url.split(":", 1)[1]
        if raw.startswith("//"):
            raw = unquote(urlsplit(url).path)
        path = Path(raw).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return MaildirSource(config, path)
    raise ConfigError(f"inbox url {url!r}: expected imap://, imaps:// or maildir:PATH")


__all__ = [
    "FALLBACK_KEYWORD",
    "DoneRef",
    "HEADER_PEEK_BYTES",
    "ImapSource",
    "ImapTarget",
    "IncomingRef",
    "KnownFn",
    "MaildirSource",
    "Source",
    "SourceError",
    "StaleUidValidity",
    "open_source",
    "parse_imap_url",
]
