"""SMTP and directory senders against a real aiosmtpd server and a real directory."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import ConfigError, OutgoingConfig, Secret
from mailbot.transport import (
    AuthenticationFailure,
    DirSender,
    PermanentFailure,
    Sender,
    SmtpSender,
    TemporaryFailure,
    _command,
    open_sender,
    seven_bit,
    smtp_payload,
)
from tests.support import free_port
from tests.support.smtpd import SmtpServer, start_smtpd

FROM = "bdv@mailbot.test"


def make_mail(n: int = 1, msgid: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ban Dân vận <{FROM}>"
    msg["To"] = "unit@example.test"
    msg["Subject"] = f"Re: Mẫu 01 — biên nhận {n}"
    msg["Message-ID"] = msgid or f"<receipt-{n}@mailbot.test>"
    msg.set_content(f"Đã nhận hồ sơ số {n}.\n.\nDòng bắt đầu bằng dấu chấm.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def smtp_config(url: str, **kw: object) -> OutgoingConfig:
    return OutgoingConfig(url=url, timeout_seconds=5, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["lockstep", "pipelining"])
def smtpd(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """aiosmtpd as it is (one command, one reply) and offering PIPELINING, as Postfix does."""
    server = start_smtpd(pipelining=request.param == "pipelining")
    yield server
    server.stop()


def test_send_delivers_exact_bytes_and_envelope(smtpd):
    smtp_server = smtpd
    raw = make_mail()
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        assert isinstance(sender, Sender)
        refused = sender.send(raw, FROM, ["unit@example.test", "staff@example.test"])
    assert refused == {}
    [got] = smtp_server.handler.wait_for(1)
    assert got.mail_from == FROM
    assert got.rcpt_tos == ("unit@example.test", "staff@example.test")
    assert got.data == raw  # dot-stuffing undone by the server, body intact


def test_batch_reuses_one_connection(smtpd):
    smtp_server = smtpd
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        for n in range(3):
            sender.send(make_mail(n), FROM, ["unit@example.test"])
    got = smtp_server.handler.wait_for(3)
    assert len(got) == 3
    assert len({m.peer for m in got}) == 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_reconnects_after_the_server_closed_an_idle_connection(pipelining):
    server = start_smtpd(idle_timeout=0.3, pipelining=pipelining)
    try:
        with SmtpSender(smtp_config(server.url())) as sender:
            sender.send(make_mail(1), FROM, ["a@example.test"])
            time.sleep(1.0)  # the server drops the idle session
            sender.send(make_mail(2), FROM, ["a@example.test"])
        got = server.handler.wait_for(2)
        assert [m.data for m in got] == [make_mail(1), make_mail(2)]
        assert got[0].peer != got[1].peer
    finally:
        server.stop()


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_session_the_server_closes_with_421_is_opened_again(pipelining):
    # Postfix answers 421 to the first command after an idle timeout, then hangs up.
    server = start_smtpd(pipelining=pipelining)
    closing = [1]

    async def mail(srv: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if closing[0]:
            closing[0] -= 1
            # Hung up right after the reply (a closing transport still sends what it has).
            asyncio.get_running_loop().call_soon(srv.transport.close)
            return "421 4.4.2 mx Error: timeout exceeded"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    server.handler.handle_MAIL = mail  # type: ignore[attr-defined]
    try:
        with SmtpSender(smtp_config(server.url())) as sender:
            assert sender.send(make_mail(1), FROM, ["a@example.test"]) == {}
        [got] = server.handler.wait_for(1)
        assert got.data == make_mail(1)
        assert closing == [0]
    finally:
        server.stop()


def test_451_is_temporary_and_the_next_send_works(smtpd):
    smtp_server = smtpd
    smtp_server.handler.fail_next(1, "451 4.3.0 Mailbox busy")
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        with pytest.raises(TemporaryFailure) as info:
            sender.send(make_mail(1), FROM, ["a@example.test"])
        assert info.value.code == 451
        sender.send(make_mail(2), FROM, ["a@example.test"])
    [got] = smtp_server.handler.wait_for(1)
    assert got.data == make_mail(2)


def test_550_at_data_is_permanent(smtpd):
    smtp_server = smtpd
    smtp_server.handler.fail_next(1, "550 5.7.1 Rejected by policy")
    with (
        SmtpSender(smtp_config(smtp_server.url())) as sender,
        pytest.raises(PermanentFailure) as info,
    ):
        sender.send(make_mail(), FROM, ["a@example.test"])
    assert info.value.code == 550
    assert smtp_server.messages == []


def test_refused_recipients(smtpd):
    smtp_server = smtpd
    smtp_server.handler.reject_recipient("gone@example.test")
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        with pytest.raises(PermanentFailure):
            sender.send(make_mail(1), FROM, ["gone@example.test"])
        refused = sender.send(make_mail(2), FROM, ["gone@example.test", "ok@example.test"])
    assert set(refused) == {"gone@example.test"}
    assert refused["gone@example.test"][0] == 550
    [got] = smtp_server.handler.wait_for(1)
    assert got.rcpt_tos == ("ok@example.test",)


def _rfc5321_data(raw: bytes) -> bytes:
    """The rule itself, line by line: CRLF ends, a leading dot doubled, a final CRLF (an
    empty mail is one empty line, as smtplib sends it)."""
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b".",
        b"a\r\n",
        b".\r\n",
        b"..\r\n.\r\n",
        b"Subject: x\r\n\r\n.\r\n..\r\n.x\r\nend",
        b"Subject: x\n\n.\nbody\n.. two\n",
        b"mixed\r\n.a\n.b\r.c\r\r\n.d",
        b"no dot . at\r\nline . starts\r\n",
        b"\r\n.\r\n",
    ],
)
def test_payload_is_crlf_and_dot_stuffed(raw):
    assert smtp_payload(raw) == _rfc5321_data(raw)


@pytest.mark.parametrize(
    "address",
    [
        "vanthu@phuong.example",
        "bdv_quthanhxuan@hanoi.gov.vn",
        "x.y+z@d-e.f",
        "o'brien@x.ie",
        "người@ví-dụ.vn",
        "a..b@c",
        ".a@b",
        "a@b.c.",
        '"q q"@b',
        "Tên <a@b>",
        "a@[1.2.3.4]",
        "a@b@c",
        "",
    ],
)
def test_envelope_addresses_are_written_as_smtplib_writes_them(address):
    assert _command("RCPT TO", address, []) == f"RCPT TO:{smtplib.quoteaddr(address)}\r\n"


def test_bare_line_feeds_and_dot_lines_arrive_intact(smtpd):
    body = ".\n..\n.bắt đầu bằng dấu chấm\ngiữa . dòng\n.\n"
    raw = f"From: {FROM}\nTo: a@example.test\nSubject: t\n\n{body}".encode()
    with SmtpSender(smtp_config(smtpd.url())) as sender:
        sender.send(raw, FROM, ["a@example.test"])
        sender.send(raw.rstrip(b"\n"), FROM, ["a@example.test"])  # no final line end
    got = smtpd.handler.wait_for(2)
    crlf = raw.replace(b"\n", b"\r\n")
    assert [m.data for m in got] == [crlf, crlf]


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    writes = [0]
    real_send = smtplib.SMTP.send

    def send(self: smtplib.SMTP, data: Any) -> None:
        writes[0] += 1
        real_send(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return writes


@pytest.mark.parametrize(("pipelining", "per_mail"), [(False, 5), (True, 2)])
def test_pipelining_sends_the_envelope_and_data_in_one_write(monkeypatch, pipelining, per_mail):
    # Each write waits for its replies: 5 round trips without PIPELINING (MAIL, 2 RCPT,
    # DATA, the mail), 2 with it (the group, the mail).
    server = start_smtpd(pipelining=pipelining)
    try:
        with SmtpSender(smtp_config(server.url())) as sender:
            sender.send(make_mail(0), FROM, ["a@example.test"])  # opens the session
            writes = _count_writes(monkeypatch)
            for n in range(1, 4):
                sender.send(make_mail(n), FROM, ["a@example.test", "b@example.test"])
            assert writes[0] == 3 * per_mail
        got = server.handler.wait_for(4)
        assert [m.data for m in got] == [make_mail(n) for n in range(4)]
        assert len({m.peer for m in got}) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("refused_at", ["MAIL", "RCPT"])
def test_pipelined_data_accepted_after_a_refusal_sends_no_mail(refused_at):
    # A lax server answers the pipelined DATA with 354 though it refused the sender or
    # every recipient: the client ends that transaction with an empty mail (RFC 2920 3.1),
    # never this mail, and the session goes on.
    server = start_smtpd(pipelining=True)
    refusals = [1]

    async def mail(srv: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        envelope.mail_from = address
        if refused_at == "MAIL" and refusals[0]:
            refusals[0] -= 1
            return "550 5.7.1 Sender refused"
        return "250 OK"

    async def rcpt(srv: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        if refused_at == "RCPT" and refusals[0]:
            refusals[0] -= 1
            return "550 5.1.1 No such user"
        return "250 OK"

    server.handler.handle_MAIL = mail  # type: ignore[attr-defined]
    server.handler.handle_RCPT = rcpt  # type: ignore[method-assign]
    try:
        with SmtpSender(smtp_config(server.url())) as sender:
            started = time.monotonic()
            with pytest.raises(PermanentFailure) as info:
                sender.send(make_mail(1), FROM, ["gone@example.test"])
            assert info.value.code == 550
            assert time.monotonic() - started < 4  # not left waiting in DATA until a timeout
            sender.send(make_mail(2), FROM, ["a@example.test"])
        got = server.handler.wait_for(2)
        assert all(make_mail(1) not in m.data for m in got)
        assert got[-1].data == make_mail(2)
        assert len({m.peer for m in got}) == 1
    finally:
        server.stop()


def test_connection_refused_is_temporary():
    port = free_port()  # nothing listens here
    with (
        SmtpSender(smtp_config(f"smtp://127.0.0.1:{port}")) as sender,
        pytest.raises(TemporaryFailure),
    ):
        sender.send(make_mail(), FROM, ["a@example.test"])


def test_starttls_and_utf8_password(smtp_server_tls, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_SMTP_PW", "Mật-khẩu Đ1")
    config = smtp_config(
        smtp_server_tls.url(), username="robot", password=Secret(env="MAILBOT_TEST_SMTP_PW")
    )
    with SmtpSender(config, ssl_context=smtp_server_tls.client_context()) as sender:
        sender.send(make_mail(), FROM, ["a@example.test"])
    [got] = smtp_server_tls.handler.wait_for(1)
    assert got.login == "robot"
    assert got.tls


def test_wrong_password_is_an_authentication_failure(smtp_server_tls):
    config = smtp_config(smtp_server_tls.url(), username="robot")
    sender = SmtpSender(config, ssl_context=smtp_server_tls.client_context(), password="sai")
    with sender, pytest.raises(AuthenticationFailure):
        sender.send(make_mail(), FROM, ["a@example.test"])
    assert smtp_server_tls.messages == []


def test_untrusted_certificate_is_not_silently_accepted(smtp_server_tls):
    config = smtp_config(smtp_server_tls.url(), username="robot")
    # Default context: the self-signed test certificate must fail verification.
    with SmtpSender(config, password="Mật-khẩu Đ1") as sender, pytest.raises(TemporaryFailure):
        sender.send(make_mail(), FROM, ["a@example.test"])
    assert smtp_server_tls.messages == []


def test_smtps_implicit_tls(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_SMTP_PW", "pw")
    server = start_smtpd(implicit_tls=True, users={"robot": "pw"}, cert_dir=tmp_path)
    try:
        config = smtp_config(
            server.url(), username="robot", password=Secret(env="MAILBOT_TEST_SMTP_PW")
        )
        sender = open_sender(config, ssl_context=server.client_context())
        try:
            sender.send(make_mail(), FROM, ["a@example.test"])
        finally:
            sender.close()
        [got] = server.handler.wait_for(1)
        assert got.tls and got.login == "robot"
    finally:
        server.stop()


def test_dir_sender_writes_atomic_named_files(tmp_path):
    out = tmp_path / "outbox"
    sender = DirSender(out)
    assert isinstance(sender, Sender)
    raw = make_mail(1, msgid="<abc/../../x y@mailbot.test>")
    sender.send(raw, FROM, ["a@example.test"])
    sender.send(raw, FROM, ["a@example.test"])  # same Message-ID: a second file, not lost
    files = sorted(out.iterdir())
    assert len(files) == 2
    for f in files:
        assert f.suffix == ".eml"
        assert f.parent == out
        assert "abc_.._.._x_y@mailbot.test" in f.name
        assert f.read_bytes() == raw
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_dir_sender_without_message_id(tmp_path):
    sender = DirSender(tmp_path)
    sender.send(b"Subject: x\r\n\r\nbody\r\n", FROM, ["a@example.test"])
    [f] = list(tmp_path.iterdir())
    assert f.name.endswith("-no-message-id.eml")


@pytest.mark.parametrize("form", ["dir:{p}", "file://{p}", "{p}"])
def test_open_sender_directory_forms(tmp_path, form):
    target = tmp_path / "sink"
    sender = open_sender(OutgoingConfig(url=form.format(p=target)))
    assert isinstance(sender, DirSender)
    assert sender.path == target


def test_open_sender_relative_to_base_dir(tmp_path):
    sender = open_sender(OutgoingConfig(url="dir:var/outbox"), base_dir=tmp_path)
    assert isinstance(sender, DirSender)
    assert sender.path == tmp_path / "var" / "outbox"
    assert Path(sender.path).is_dir()


@pytest.mark.parametrize(
    "url", ["ftp://example.test/", "smtp://", "smtp://user:pw@host:25", "smtp://host:notaport"]
)
def test_open_sender_rejects_bad_urls(url):
    with pytest.raises(ConfigError):
        open_sender(OutgoingConfig(url=url))


def _receipt() -> bytes:
    """A composed receipt: 8bit text and HTML, a file in base64."""
    from mailbot.mail.compose import compose
    from outbox_templates import Rendered

    rendered = Rendered(
        subject="Xác nhận tiếp nhận hồ sơ",
        text="Kính gửi: Đảng ủy phường Khương Trung,\n.\nĐã nhận Mẫu số 01.\n",
        html="<p>Kính gửi: <b>Đảng ủy phường Khương Trung</b></p>\n<p>Trân trọng.</p>\n",
    )
    _, raw = compose(
        rendered=rendered,
        from_addr=FROM,
        from_name="Ban Dân vận",
        to=["unit@example.test"],
        message_id_domain="mailbot.test",
        auto_submitted="auto-replied",
        attachments=[("Tổng hợp.xlsx", b"PK\x03\x04" + bytes(range(256)), "application/zip")],
    )
    return raw


def _same_content(a: bytes, b: bytes) -> None:
    from email import message_from_bytes
    from email import policy as email_policy

    one = message_from_bytes(a, policy=email_policy.default)
    two = message_from_bytes(b, policy=email_policy.default)
    assert a.split(b"\r\n\r\n", 1)[0] == b.split(b"\r\n\r\n", 1)[0]  # headers as they were
    parts = [(p.get_content_type(), p.get_payload(decode=True)) for p in one.walk()]
    assert parts == [(p.get_content_type(), p.get_payload(decode=True)) for p in two.walk()]


def test_an_8bit_mail_goes_as_it_is_with_body_8bitmime(smtpd):
    raw = _receipt()
    assert not raw.isascii()
    with SmtpSender(smtp_config(smtpd.url())) as sender:
        sender.send(raw, FROM, ["unit@example.test"])
        sender.send(b"Subject: ascii\r\n\r\nplain\r\n", FROM, ["unit@example.test"])
    eight, ascii_only = smtpd.handler.wait_for(2)
    assert eight.data == raw and eight.mail_options == ("BODY=8BITMIME",)
    assert ascii_only.mail_options == ()


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_server_without_8bitmime_gets_the_same_mail_in_quoted_printable(pipelining):
    server = start_smtpd(eight_bit=False, pipelining=pipelining)
    try:
        raw = _receipt()
        with SmtpSender(smtp_config(server.url())) as sender:
            sender.send(raw, FROM, ["unit@example.test"])
        [got] = server.handler.wait_for(1)
    finally:
        server.stop()
    assert got.data.isascii() and got.mail_options == ()
    assert b"Content-Transfer-Encoding: quoted-printable" in got.data
    _same_content(raw, got.data)


def test_seven_bit_changes_only_the_8bit_parts():
    raw = _receipt()
    low = seven_bit(raw)
    assert low.isascii() and b"\r\n" in low and b"\n" not in low.replace(b"\r\n", b"")
    _same_content(raw, low)
    assert seven_bit(low) == low  # nothing 8bit left
    base64_part = raw[raw.index(b"Content-Transfer-Encoding: base64") :]
    assert base64_part.split(b"\r\n--")[0] in low  # the file's part byte for byte
