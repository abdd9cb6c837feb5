"""docs/security.md's HTTP sections say what the code does: defaults, tests cited."""

from __future__ import annotations

import re

from broker.console.settings import ConsoleSettings
from broker.settings import Settings
from tests.conftest import REPO

DOC = (REPO / "docs" / "security.md").read_text()


def test_the_http_limits_table_gives_the_settings_defaults() -> None:
    rows = re.findall(r"^\| `CAREBROKER_HTTP_(\w+)` \| (\S+) \|", DOC, re.MULTILINE)
    assert len(rows) >= 6
    defaults = Settings()
    for name, shown in rows:
        value = getattr(defaults, f"http_{name.lower()}")
        assert float(shown) == value, f"CAREBROKER_HTTP_{name}: doc says {shown}, code {value}"


def test_the_sign_in_table_gives_the_settings_defaults() -> None:
    defaults = ConsoleSettings()
    assert f"| {defaults.sign_in_address_max_failures} failures from one address" in DOC
    assert f"| {defaults.sign_in_max_failures} failures for one name" in DOC
    assert f"| {defaults.sign_in_address_max_delay_s} s |" in DOC
    assert f"| {defaults.sign_in_max_delay_s} s |" in DOC
    assert f"in {defaults.sign_in_window_s // 60} min" in DOC
    assert f"`CAREBROKER_CONSOLE__API_TOKEN_MAX_DAYS` ({defaults.api_token_max_days})" in DOC


def test_the_tests_it_cites_exist() -> None:
    cited = set(re.findall(r"`(tests/[\w/]+\.py)`", DOC))
    assert cited
    missing = sorted(c for c in cited if not (REPO / c).exists())
    assert not missing, missing
