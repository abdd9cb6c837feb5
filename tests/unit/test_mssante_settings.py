"""MSSanté settings: the URLs and files the issue fixes, refused clearly, never echoed."""

from __future__ import annotations

import pytest

from broker.errors import ConfigError
from broker.settings import Settings


def test_the_mail_servers_are_read_from_their_urls() -> None:
    settings = Settings(
        mssante={
            "smtp_url": "smtp+starttls://smtp.mssante.example:587",
            "imap_url": "imaps://imap.mssante.example/Notices",
            "mailbox": "pfi@hopital.mssante.fr",
        }
    )
    smtp, imap = settings.mssante.smtp, settings.mssante.imap
    assert smtp is not None and (smtp.host, smtp.port, smtp.security) == (
        "smtp.mssante.example",
        587,
        "starttls",
    )
    assert imap is not None and (imap.port, imap.security, imap.folder) == (993, "tls", "Notices")
    assert settings.mssante.login == "pfi@hopital.mssante.fr"
    assert settings.mssante.domain == "hopital.mssante.fr"


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"CAREBROKER_MSSANTE__SMTP_URL": "smtp://10.1.2.3:25"}, "loopback host only"),
        ({"CAREBROKER_MSSANTE__IMAP_URL": "imap://mail.example/INBOX"}, "loopback host only"),
        ({"CAREBROKER_MSSANTE__SMTP_URL": "http://127.0.0.1"}, "scheme must be one of"),
        ({"CAREBROKER_MSSANTE__SMTP_URL": "smtps://127.0.0.1"}, "MAILBOX"),
        ({"CAREBROKER_MSSANTE__CERT": "/etc/bal.pem"}, "CERT and KEY go together"),
    ],
)
def test_wrong_mssante_settings_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], said: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as failure:
        Settings.from_environment()
    assert said in str(failure.value)
    assert "CAREBROKER_MSSANTE" in str(failure.value)
    assert "10.1.2.3" not in str(failure.value) and "mail.example" not in str(failure.value)


def test_smtp_to_a_loopback_host_is_allowed_for_tests() -> None:
    settings = Settings(mssante={"smtp_url": "smtp://127.0.0.1:2525", "mailbox": "a@b.fr"})
    assert settings.mssante.smtp is not None and settings.mssante.smtp.security == "plain"
