"""Authentication-Results (RFC 8601) from our trusted server: is the sender who it says?"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.mail.message import ParsedMail

__all__ = ["AuthResults", "aligned", "auth_results", "dmarc_failed", "sender_authenticated"]

_METHOD = re.compile(r"\s*([A-Za-z][\w-]*)\s*=\s*([A-Za-z]+)")
_PROPERTY = re.compile(r"([A-Za-z]+)\.([A-Za-z][\w-]*)\s*=\s*\"?([^\s;\"]+)\"?")


@dataclass(frozen=True)
class AuthResults:
    """What our trusted server concluded about one mail (results from others are ignored)."""

    dmarc: tuple[str, ...] = ()  # every dmarc= result seen, lower case
    dkim_pass: tuple[str, ...] = ()  # header.d (or the domain of header.i) of passing DKIM
    spf_pass: tuple[str, ...] = ()  # smtp.mailfrom (or smtp.helo) domain of a passing SPF


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


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def auth_results(mail: ParsedMail, trusted_authserv_id: str | None) -> AuthResults | None:
    """The trusted server's results; None when no trusted server is configured.

    Only headers carrying the trusted authserv-id count: anyone upstream may write the
    header, and the trusted server removes copies of its own id arriving from outside
    (RFC 8601 section 5), so a header with its id is its own.
    """
    if not trusted_authserv_id or not trusted_authserv_id.strip():
        return None
    trusted = trusted_authserv_id.strip().lower()
    dmarc: list[str] = []
    dkim: list[str] = []
    spf: list[str] = []
    for value in mail.header_all("Authentication-Results"):
        if _authserv_id(value) != trusted:
            continue
        for clause in _strip_comments(value).split(";")[1:]:
            m = _METHOD.match(clause)
            if not m:
                continue
            method, result = m.group(1).lower(), m.group(2).lower()
            props = {
                f"{p.group(1).lower()}.{p.group(2).lower()}": p.group(3)
                for p in _PROPERTY.finditer(clause[m.end() :])
            }
            if method == "dmarc":
                dmarc.append(result)
            elif method == "dkim" and result == "pass":
                signer = props.get("header.d") or props.get("header.i")
                if signer:
                    dkim.append(_domain(signer))
            elif method == "spf" and result == "pass":
                envelope = props.get("smtp.mailfrom") or props.get("smtp.helo")
                if envelope:
                    spf.append(_domain(envelope))
    return AuthResults(tuple(dmarc), tuple(dkim), tuple(spf))


def aligned(domain: str, other: str) -> bool:
    """Relaxed alignment, approximated without a public-suffix list: same domain or a subdomain."""
    a, b = domain.lower().strip("."), other.lower().strip(".")
    if not a or not b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def dmarc_failed(mail: ParsedMail, trusted_authserv_id: str | None) -> bool:
    """True when our trusted server's Authentication-Results says dmarc=fail."""
    results = auth_results(mail, trusted_authserv_id)
    return results is not None and "fail" in results.dmarc


def sender_authenticated(
    mail: ParsedMail, trusted_authserv_id: str | None, address: str | None = None
) -> bool:
    """Whether our trusted server vouches for `address` (default: the From address).

    For From: DMARC pass, or, when the domain publishes no DMARC policy (dmarc=none or no
    DMARC result), a DKIM or SPF pass aligned with the From domain. For another address
    (Resent-From), DMARC says nothing: an aligned DKIM or SPF pass. Never without a
    trusted server: the caller decides what that means.
    """
    results = auth_results(mail, trusted_authserv_id)
    if results is None:
        return False
    addr = address if address is not None else mail.from_addr
    domain = _domain(addr or "")
    if not domain or "@" not in (addr or ""):
        return False
    own_from = address is None or _domain(mail.from_addr or "") == domain
    if "fail" in results.dmarc:
        return False
    if own_from and results.dmarc and all(r == "pass" for r in results.dmarc):
        return True
    if own_from and any(r not in ("none", "pass") for r in results.dmarc):
        return False  # temperror, permerror, a policy we cannot read: not proven
    return any(aligned(domain, d) for d in (*results.dkim_pass, *results.spf_pass))
