"""One settings model: nested variables, unknown names refused, flags on top, docs that match.

``Settings.from_environment`` is what every command calls at start-up; these
tests set variables with ``monkeypatch`` and read them as carebroker does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.cli import build_parser, main
from broker.commands.options import settings_from
from broker.errors import ConfigError
from broker.settings import Settings, groups, unknown_variables, variables
from tests.conftest import REPO
from tests.tools import settings_table

NAMES = {v.name for v in variables()}


@pytest.fixture(autouse=True)
def _no_carebroker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from an environment without CAREBROKER_* (the session may set the DSN)."""
    for key in [k for k in os.environ if k.upper().startswith("CAREBROKER_")]:
        monkeypatch.delenv(key)


def test_nested_settings_read_their_double_underscore_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREBROKER_CONSOLE__COOKIE_SECURE", "true")
    monkeypatch.setenv("CAREBROKER_CONSOLE__SIGN_IN_MAX_FAILURES", "3")
    monkeypatch.setenv("CAREBROKER_CONSOLE__OIDC_CLIENT_SECRET", "oidc-s3cret-value")
    monkeypatch.setenv("CAREBROKER_FHIR__BASE_URL", "https://fhir.region.example/fhir")
    settings = Settings.from_environment()
    assert settings.console.cookie_secure is True
    assert settings.console.sign_in_max_failures == 3
    assert settings.console.session_lifetime_s == 12 * 3600  # the rest keeps its defaults
    assert settings.console.oidc_client_secret is not None
    assert settings.console.oidc_client_secret.get_secret_value() == "oidc-s3cret-value"
    assert "oidc-s3cret-value" not in repr(settings)
    assert settings.fhir.base_url == "https://fhir.region.example/fhir"
    assert settings.fhir.client_cert_header is None


def test_unknown_variables_are_refused_by_name_never_by_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREBROKER_KAFKA_PARTITION", "s3cret-24")
    monkeypatch.setenv("CAREBROKER_CONSOLE__COOKIE_SECUR", "true")
    monkeypatch.setenv("CAREBROKER_ZZZ", "1")
    with pytest.raises(ConfigError) as refused:
        Settings.from_environment()
    message = str(refused.value)
    assert message.startswith("unknown settings: ")
    assert (
        "CAREBROKER_CONSOLE__COOKIE_SECUR is not a setting "
        "(did you mean CAREBROKER_CONSOLE__COOKIE_SECURE?)" in message
    )
    assert (
        "CAREBROKER_KAFKA_PARTITION is not a setting "
        "(did you mean CAREBROKER_KAFKA_PARTITIONS?)" in message
    )
    assert "CAREBROKER_ZZZ is not a setting" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("CAREBROKER_CONSOLE_COOKIE_SECURE", "CAREBROKER_CONSOLE__COOKIE_SECURE"),
        ("CAREBROKER_CONSOLE_OIDC_CLIENT_SECRET", "CAREBROKER_CONSOLE__OIDC_CLIENT_SECRET"),
        ("carebroker_console_session_idle_timeout_s", "CAREBROKER_CONSOLE__SESSION_IDLE_TIMEOUT_S"),
        ("CAREBROKER_FHIR_CLIENT_CERT_HEADER", "CAREBROKER_FHIR__CLIENT_CERT_HEADER"),
        ("CAREBROKER_MLLP_PORT", "CAREBROKER_MLLP__PORT"),
        ("CAREBROKER_MLLP_TLS_CLIENT_CA", "CAREBROKER_MLLP__TLS_CLIENT_CA"),
    ],
)
def test_names_from_before_the_nesting_are_told_their_new_name(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    """A deployment still setting the old name would otherwise silently get the default."""
    monkeypatch.setenv(old, "x")
    with pytest.raises(ConfigError, match=f"^unknown settings: {old} is now {new}$"):
        Settings.from_environment()


def test_a_field_name_from_before_the_nesting_is_refused_in_code_too() -> None:
    """``Settings(mllp_port=0)`` would otherwise be ignored and listen on 2575."""
    with pytest.raises(ValidationError, match=r"mllp_port is now mllp\.port"):
        Settings(mllp_port=0)
    assert Settings(mllp={"port": 0}).mllp.port == 0


def test_kubernetes_service_variables_are_not_settings() -> None:
    """Services carebroker-console and carebroker-mllp-tcp, as the kubelet announces them."""
    environ = {
        "CAREBROKER_CONSOLE_SERVICE_HOST": "10.96.0.7",
        "CAREBROKER_CONSOLE_SERVICE_PORT": "8080",
        "CAREBROKER_CONSOLE_SERVICE_PORT_HTTP": "8080",
        "CAREBROKER_CONSOLE_PORT": "tcp://10.96.0.7:8080",
        "CAREBROKER_CONSOLE_PORT_8080_TCP": "tcp://10.96.0.7:8080",
        "CAREBROKER_CONSOLE_PORT_8080_TCP_ADDR": "10.96.0.7",
        "CAREBROKER_MLLP_TCP_SERVICE_HOST": "10.96.0.8",
        "CAREBROKER_MLLP_TCP_PORT_2575_TCP_PROTO": "tcp",
    }
    assert unknown_variables(environ) == []
    # Without the Service's host beside it, the same shape is a typo like any other.
    del environ["CAREBROKER_CONSOLE_SERVICE_HOST"]
    assert [p.split()[0] for p in unknown_variables(environ)] == [
        "CAREBROKER_CONSOLE_PORT",
        "CAREBROKER_CONSOLE_PORT_8080_TCP",
        "CAREBROKER_CONSOLE_PORT_8080_TCP_ADDR",
        "CAREBROKER_CONSOLE_SERVICE_PORT",
        "CAREBROKER_CONSOLE_SERVICE_PORT_HTTP",
    ]


def test_an_invalid_value_names_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREBROKER_CONSOLE__SESSION_IDLE_TIMEOUT_S", "s3cret-minutes")
    monkeypatch.setenv("CAREBROKER_FHIR", '{"base_url": "https://fhir.example", "basee": 1}')
    with pytest.raises(ConfigError) as refused:
        Settings.from_environment()
    message = str(refused.value)
    assert "CAREBROKER_CONSOLE__SESSION_IDLE_TIMEOUT_S: Input should be a valid integer" in message
    assert "CAREBROKER_FHIR__BASEE: Extra inputs are not permitted" in message
    assert "s3cret" not in message


def test_command_line_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBROKER_MLLP__PORT", "2599")
    monkeypatch.setenv("CAREBROKER_MLLP__HOST", "0.0.0.0")
    monkeypatch.setenv("CAREBROKER_KAFKA_BOOTSTRAP_SERVERS", "from-env:9092")
    monkeypatch.setenv("CAREBROKER_HTTP_PORT", "8099")
    monkeypatch.setenv("CAREBROKER_CONSOLE__COOKIE_SECURE", "true")
    args = build_parser().parse_args(
        ["run", "--role", "console", "--mllp-port", "2600", "--kafka", "from-flag:9092"]
    )
    settings = settings_from(args)
    assert settings.mllp.port == 2600
    assert settings.mllp.host == "0.0.0.0"  # the group's other variables stay
    assert settings.kafka_bootstrap_servers == "from-flag:9092"
    assert settings.http_port == 8099  # no flag given: the environment's
    assert settings.console.cookie_secure is True


def test_the_command_stops_on_an_unknown_variable_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CAREBROKER_CONSOLE_COOKIE_SECURE", "true")
    assert main(["users", "list", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "carebroker: error: unknown settings: "
        "CAREBROKER_CONSOLE_COOKIE_SECURE is now CAREBROKER_CONSOLE__COOKIE_SECURE\n"
    )


def test_the_readme_table_lists_every_variable_as_generated() -> None:
    readme = (REPO / "README.md").read_text()
    listed = set(re.findall(r"^\| `(CAREBROKER_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    missing = sorted(NAMES - listed)
    assert not missing, (
        f"README.md's configuration table lacks {', '.join(missing)}: "
        "run `python -m tests.tools.settings_table --write`"
    )
    assert not listed - NAMES, f"README.md lists variables that do not exist: {listed - NAMES}"
    assert settings_table.current(readme) == settings_table.table(), (
        "README.md's configuration table is stale (defaults or descriptions): "
        "run `python -m tests.tools.settings_table --write`"
    )


# Where a name appears as the example of a refused pre-nesting name.
SHOWN_AS_RENAMED = {"CAREBROKER_CONSOLE_COOKIE_SECURE", "CAREBROKER_MLLP_PORT"}


def _documents() -> list[Path]:
    found = [REPO / "README.md", REPO / "Dockerfile", *sorted((REPO / "docs").glob("*.md"))]
    found += [p for p in sorted((REPO / "charts").rglob("*")) if p.is_file()]
    for package in ("broker", "adapters", "routing"):
        found += sorted((REPO / package).rglob("*.py"))
    return found


def test_every_variable_named_in_docs_chart_and_code_exists() -> None:
    """A renamed or misspelt variable in a doc, the chart or an error message is caught."""
    allowed = NAMES | SHOWN_AS_RENAMED | {"CAREBROKER_"}
    allowed |= {f"CAREBROKER_{g.upper()}{suffix}" for g in groups() for suffix in ("", "__")}
    wrong = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in _documents()
        for name in re.findall(r"CAREBROKER_[A-Z0-9_]*", path.read_text(errors="replace"))
        if name not in allowed
    )
    assert not wrong, "names that are not carebroker variables:\n" + "\n".join(wrong)
