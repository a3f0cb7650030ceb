"""S/MIME: opaque-signed mail (smime.p7m) is opened with asn1crypto; encrypted mail reported."""

from __future__ import annotations

import base64
import binascii
import re

from asn1crypto import cms, parser

from mailbot.mail.filetypes import suffix
from mailbot.mail.message import ArchiveLimits
from mailbot.mail.unpack.base import Member, Trouble, Unpacked, trouble

__all__ = ["SmimeUnpacker", "encrypted_mail", "signed_content"]

ENCRYPTED_LABEL = "Thư mã hóa"
_PKCS7_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")


def encrypted_mail() -> Trouble:
    """A mail (or part) encrypted for the recipient: nothing in it can be read."""
    return trouble("mail-encrypted", ENCRYPTED_LABEL)


def signed_content(data: bytes) -> bytes | None:
    """The MIME entity inside a CMS SignedData, or None (encrypted, detached or unreadable)."""
    if data[:1] != b"\x30":
        try:  # some clients send the DER base64 twice over
            data = base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
        except (binascii.Error, ValueError):
            return None
    try:
        info = cms.ContentInfo.load(data, strict=False)
        if info["content_type"].native != "signed_data":
            return None
        encap = info["content"]["encap_content_info"]
        # eContent is read with asn1crypto's BER parser rather than through the spec:
        # asn1crypto accepts a chunked (constructed) OCTET STRING only with an indefinite
        # length, and Outlook writes the chunks with definite lengths.
        return _explicit_content(encap.contents)
    except Exception:  # asn1crypto parses lazily: any malformed field surfaces here
        return None


def _elements(encoded: bytes) -> list[tuple[int, int, int, bytes]]:
    """(class, method, tag, contents) of each BER element in a run of them."""
    out = []
    pos = 0
    while pos < len(encoded):
        class_, method, tag, _header, contents, _trailer = parser.parse(encoded[pos:])
        out.append((class_, method, tag, contents))
        pos += parser.peek(encoded[pos:])
    return out


def _explicit_content(encap_body: bytes) -> bytes | None:
    """The octets of EncapsulatedContentInfo's [0] EXPLICIT eContent; None when detached."""
    fields = _elements(encap_body)
    if len(fields) < 2 or fields[1][:3] != (2, 1, 0):  # context-specific, constructed, [0]
        return None
    inner = _elements(fields[1][3])
    return _octets(*inner[0]) if inner else None


def _octets(class_: int, method: int, tag: int, contents: bytes, depth: int = 0) -> bytes:
    if class_ != 0 or tag != 4 or depth > 8:
        raise ValueError("not an OCTET STRING")
    if method == 0:
        return contents
    return b"".join(_octets(*chunk, depth=depth + 1) for chunk in _elements(contents))


class SmimeUnpacker:
    """application/pkcs7-mime parts and .p7m files: the signed mail inside, walked as a mail."""

    name = "smime"
    nests = False

    def matches(self, filename: str, data: bytes, declared_type: str) -> bool:
        """By declared type or the .p7m extension."""
        return declared_type in _PKCS7_TYPES or suffix(filename) == ".p7m"

    def able_to_run(self) -> bool:
        """asn1crypto is pure Python: always."""
        return True

    def unpack(self, filename: str, data: bytes, limits: ArchiveLimits) -> Unpacked:
        """The signed MIME entity as one message member, else the encrypted-mail trouble."""
        content = signed_content(data)
        if content is None:
            yield encrypted_mail()
            return
        yield Member(filename, content, message=True)
