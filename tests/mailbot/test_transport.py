"""SMTP and directory senders against a real aiosmtpd server and a real directory."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.config import ConfigError, OutgoingConfig, Secret
from mailbot.transport import (
    AuthenticationFailure,
    DirSender,
    PermanentFailure,
    Sender,
    SmtpSender,
    TemporaryFailure,
    open_sender,
)
from tests.support import free_port
from tests.support.smtpd import start_smtpd

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


def test_send_delivers_exact_bytes_and_envelope(smtp_server):
    raw = make_mail()
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        assert isinstance(sender, Sender)
        refused = sender.send(raw, FROM, ["unit@example.test", "staff@example.test"])
    assert refused == {}
    [got] = smtp_server.handler.wait_for(1)
    assert got.mail_from == FROM
    assert got.rcpt_tos == ("unit@example.test", "staff@example.test")
    assert got.data == raw  # dot-stuffing undone by the server, body intact


def test_batch_reuses_one_connection(smtp_server):
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        for n in range(3):
            sender.send(make_mail(n), FROM, ["unit@example.test"])
    got = smtp_server.handler.wait_for(3)
    assert len(got) == 3
    assert len({m.peer for m in got}) == 1


def test_reconnects_after_the_server_closed_an_idle_connection():
    server = start_smtpd(idle_timeout=0.3)
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


def test_451_is_temporary_and_the_next_send_works(smtp_server):
    smtp_server.handler.fail_next(1, "451 4.3.0 Mailbox busy")
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        with pytest.raises(TemporaryFailure) as info:
            sender.send(make_mail(1), FROM, ["a@example.test"])
        assert info.value.code == 451
        sender.send(make_mail(2), FROM, ["a@example.test"])
    [got] = smtp_server.handler.wait_for(1)
    assert got.data == make_mail(2)


def test_550_at_data_is_permanent(smtp_server):
    smtp_server.handler.fail_next(1, "550 5.7.1 Rejected by policy")
    with (
        SmtpSender(smtp_config(smtp_server.url())) as sender,
        pytest.raises(PermanentFailure) as info,
    ):
        sender.send(make_mail(), FROM, ["a@example.test"])
    assert info.value.code == 550
    assert smtp_server.messages == []


def test_refused_recipients(smtp_server):
    smtp_server.handler.reject_recipient("gone@example.test")
    with SmtpSender(smtp_config(smtp_server.url())) as sender:
        with pytest.raises(PermanentFailure):
            sender.send(make_mail(1), FROM, ["gone@example.test"])
        refused = sender.send(make_mail(2), FROM, ["gone@example.test", "ok@example.test"])
    assert set(refused) == {"gone@example.test"}
    assert refused["gone@example.test"][0] == 550
    [got] = smtp_server.handler.wait_for(1)
    assert got.rcpt_tos == ("ok@example.test",)


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
