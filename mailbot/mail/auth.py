"""Authentication-Results (RFC 8601): did our own trusted server see DMARC fail?"""

from __future__ import annotations

import re

from mailbot.mail.message import ParsedMail

__all__ = ["dmarc_failed"]


def _strip_comments(text: str) -> str:
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _authserv_id(value: str) -> str:
    head = _strip_comments(value).split(";", 1)[0].strip()
    return head.split()[0].lower() if head else ""


def dmarc_failed(mail: ParsedMail, trusted_authserv_id: str | None) -> bool:
    """True when our trusted server's Authentication-Results says dmarc=fail."""
    if not trusted_authserv_id:
        return False
    trusted = trusted_authserv_id.strip().lower()
    for value in mail.header_all("Authentication-Results"):
        if _authserv_id(value) != trusted:
            continue  # anyone upstream may have written this header
        for clause in _strip_comments(value).split(";")[1:]:
            m = re.match(r"\s*dmarc\s*=\s*([A-Za-z]+)", clause, re.I)
            if m and m.group(1).lower() == "fail":
                return True
    return False
