"""Real mail servers for the tests: SMTP (aiosmtpd) and IMAP (Debian's dovecot), with a test CA.

Session-scoped, shared by every test that mails (issue 15: MSSanté out; issue
16: MSSanté in): import the fixtures ``mail_ca``, ``smtp_server``,
``imap_server`` (tests/conftest.py does) and reset what a test changed with
``smtp_server.reset()`` / ``imap_server.clear()``.

- :class:`SmtpServer`: aiosmtpd on a free loopback port, STARTTLS required
  with a client certificate signed by the test CA (as MSSanté requires an
  IGC Santé certificate), the DSN extension (RFC 3461) advertised and its
  parameters recorded; it records each mail with its envelope and the client
  certificate's CN, and refuses recipients as a test asks (5xx, or 4xx a
  number of times).
- :class:`ImapServer`: dovecot with its own configuration directory, a
  passwd-file user per mailbox, Maildir storage, IDLE; run as root it drops
  to Debian's ``dovecot``/``dovenull``/``mail`` users, otherwise it runs as
  the current user. ``.ci/run`` installs ``dovecot-imapd`` when missing.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.certs import CertificateAuthority

MAILBOX = "pfi@carebroker.test"
PASSWORD = "secret-of-the-application-mailbox"
_DSN_PARAMS = ("RET", "ENVID", "NOTIFY", "ORCPT")


def free_port() -> int:
    """Return a loopback port free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ReceivedMail:
    """One mail as the SMTP server took it."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    content: bytes = field(repr=False)
    client_cn: str | None


class _Recorder:
    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.refuse: dict[str, str] = {}  # address -> 5xx reply
        self.temporary: dict[str, int] = {}  # address -> 4xx replies still to give
        self.lock = threading.Lock()

    async def handle_EHLO(  # aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if address in self.refuse:
                return self.refuse[address]
            if self.temporary.get(address, 0) > 0:
                self.temporary[address] -= 1
                return "451 4.3.0 <" + address + ">: temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        cn = None
        extra: Any = session.ssl
        if extra:
            ssl_object = extra.get("ssl_object")
            cert = ssl_object.getpeercert() if ssl_object is not None else None
            for rdn in (cert or {}).get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
        content = envelope.original_content or b""
        with self.lock:
            self.mails.append(
                ReceivedMail(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    list(envelope.mail_options),
                    list(envelope.rcpt_options),
                    content,
                    cn,
                )
            )
        return "250 2.0.0 Ok: queued"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == MAILBOX
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


class _DsnSmtp(SMTP):
    """aiosmtpd's SMTP taking the DSN parameters of MAIL and RCPT (it refuses unknown ones)."""

    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None:
            for key in _DSN_PARAMS:
                result.pop(key, None)
        return result


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _DsnSmtp(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """An SMTP submission server on loopback: STARTTLS, client certificate, AUTH (the mailbox)."""

    def __init__(self, ca: CertificateAuthority) -> None:
        cert, key = ca.issue("smtp.carebroker.test")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca.cert_path)
        context.verify_mode = ssl.CERT_REQUIRED
        self.recorder = _Recorder()
        self.port = free_port()
        self.controller = _Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=_authenticate,
            auth_require_tls=True,
            data_size_limit=64 * 1024 * 1024,
        )

    @property
    def url(self) -> str:
        return f"smtp+starttls://127.0.0.1:{self.port}"

    @property
    def mails(self) -> list[ReceivedMail]:
        with self.recorder.lock:
            return list(self.recorder.mails)

    def to(self, address: str) -> list[ReceivedMail]:
        """Return the mails whose envelope went to ``address``."""
        return [m for m in self.mails if address in m.rcpt_tos]

    def reset(self) -> None:
        with self.recorder.lock:
            self.recorder.mails.clear()
            self.recorder.refuse.clear()
            self.recorder.temporary.clear()

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


_DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class ImapServer:
    """Debian's dovecot on free loopback ports (imap and imaps), one Maildir per mailbox."""

    def __init__(self, base: Path, ca: CertificateAuthority) -> None:
        self.base = base
        self.port = free_port()
        self.tls_port = free_port()
        self.users = {MAILBOX: PASSWORD}
        self.ca = ca
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"imap://127.0.0.1:{self.port}/INBOX"

    @property
    def tls_url(self) -> str:
        return f"imaps://127.0.0.1:{self.tls_port}/INBOX"

    def start(self) -> None:
        dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(dovecot).exists():
            pytest.fail("dovecot is not installed (Debian: dovecot-imapd; .ci/run installs it)")
        base = self.base
        for name in ("run", "state", "home"):
            (base / name).mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        if os.geteuid() == 0:
            internal, group, login = "dovecot", "dovecot", "dovenull"
            mail = pwd.getpwnam("mail")
            mail_uid, mail_gid = mail.pw_uid, mail.pw_gid
            os.chown(base / "home", mail_uid, mail_gid)
        else:
            me = pwd.getpwuid(os.geteuid())
            internal = login = me.pw_name
            group = str(os.getegid())
            mail_uid, mail_gid = me.pw_uid, os.getegid()
        # Dovecot's unprivileged processes read these: copied beside the configuration.
        cert, key = self.ca.issue("imap.carebroker.test")
        for source, target in ((cert, "cert.pem"), (key, "key.pem"), (self.ca.cert_path, "ca.pem")):
            shutil.copyfile(source, base / target)
            (base / target).chmod(0o644)
        cert, key, ca = base / "cert.pem", base / "key.pem", base / "ca.pem"
        ssl_lines = (
            f"ssl_cert = <{cert}\nssl_key = <{key}\nssl_ca = <{ca}\n"
            "ssl_verify_client_cert = yes\nssl_min_protocol = TLSv1.2"
        )
        (base / "users").write_text(
            "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items())
        )
        (base / "dovecot.conf").write_text(
            _DOVECOT_CONF.format(
                base=base,
                ssl="yes",
                ssl_lines=ssl_lines,
                internal=internal,
                internal_group=group,
                login=login,
                mail_uid=mail_uid,
                mail_gid=mail_gid,
                port=self.port,
                tls_port=self.tls_port,
            )
        )
        self.process = subprocess.Popen(
            [dovecot, "-c", str(base / "dovecot.conf"), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client = imaplib.IMAP4("127.0.0.1", self.port)
                client.logout()
                return
            time.sleep(0.1)
        self.stop()
        log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
        pytest.fail(f"dovecot did not start: {log[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    @contextlib.contextmanager
    def session(self, user: str = MAILBOX) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(user, self.users[user])
        client.select("INBOX")
        try:
            yield client
        finally:
            client.logout()

    def append(self, data: bytes, user: str = MAILBOX) -> None:
        """Put a mail in the mailbox, as the mail server delivering it would."""
        with self.session(user) as client:
            client.append("INBOX", None, None, data)

    def flags(self, user: str = MAILBOX) -> list[str]:
        """Return each mail's flags, in order."""
        with self.session(user) as client:
            _, data = client.fetch("1:*", "(FLAGS)")
        return [d.decode() for d in data if isinstance(d, bytes)]

    def clear(self, user: str = MAILBOX) -> None:
        """Delete every mail of the mailbox."""
        with self.session(user) as client:
            _, data = client.search(None, "ALL")
            if data and data[0]:
                client.store("1:*", "+FLAGS", "(\\Deleted)")
                client.expunge()


@pytest.fixture(scope="session")
def mail_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("mail-ca"))


@pytest.fixture(scope="session")
def smtp_server(mail_ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(mail_ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def imap_server(mail_ca: CertificateAuthority) -> Iterator[ImapServer]:
    # Not under pytest's basetemp (0700, and reset by the next session): dovecot's
    # processes run as other users and must reach their files.
    base = Path(tempfile.mkdtemp(prefix="carebroker-dovecot-"))
    server = ImapServer(base, mail_ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def dsn(
    *,
    original_message_id: str,
    recipient: str,
    action: str = "delivered",
    status: str = "2.0.0",
    diagnostic: str = "smtp; 250 2.0.0 Ok: delivered",
    envelope_id: str | None = None,
    notice_id: str = "<dsn-1@mx.test-ci-sis.mssante.fr>",
    to: str = MAILBOX,
) -> bytes:
    """Return a delivery status notification (RFC 3464) as a recipient's server sends it."""
    envid = f"Original-Envelope-Id: {envelope_id}\r\n" if envelope_id else ""
    return (
        f"From: MAILER-DAEMON@mx.test-ci-sis.mssante.fr\r\nTo: {to}\r\n"
        f"Message-ID: {notice_id}\r\nSubject: Delivery Status Notification\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"\r\n\r\n'
        "--DSN\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
        "--DSN\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.test-ci-sis.mssante.fr\r\n{envid}\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: {diagnostic}\r\n\r\n"
        "--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {to}\r\nTo: {recipient}\r\nMessage-ID: {original_message_id}\r\n"
        "Subject: XDM/1.0/DDM+\r\n\r\n--DSN--\r\n"
    ).encode()


def mdn(
    *,
    original_message_id: str,
    reader: str,
    disposition: str = "automatic-action/MDN-sent-automatically; processed",
    notice_id: str = "<mdn-1@test-ci-sis.mssante.fr>",
    to: str = MAILBOX,
) -> bytes:
    """Return a read receipt (RFC 8098) as the lps guide's struct-msg-mdn.md shapes it."""
    return (
        f"From: {reader}\r\nTo: {to}\r\nMessage-ID: {notice_id}\r\n"
        "Subject: XDM/1.0/DDM+\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification; "
        'boundary="MDN"\r\n\r\n'
        "--MDN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLe document a été traité.\r\n"
        "--MDN\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Original-Recipient: rfc822;{reader}\r\nFinal-Recipient: rfc822; {reader}\r\n"
        f"Original-Message-ID: {original_message_id}\r\nDisposition: {disposition}\r\n\r\n"
        "--MDN--\r\n"
    ).encode()
