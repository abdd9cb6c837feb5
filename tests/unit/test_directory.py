"""The partner directory file: the shared example loads; mistakes are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.directory import load_directory
from broker.errors import ConfigError
from tests.conftest import REPO

EXAMPLE = REPO / "tests" / "data" / "partners.yaml"


def test_example_directory_loads_with_its_lookups() -> None:
    directory = load_directory(EXAMPLE)
    assert set(directory.partners) >= {"chu-montpellier", "labo-sud", "cabinet-dupont"}
    assert directory.by_facility("LABO-SUD").id == "labo-sud"  # type: ignore[union-attr]
    assert directory.by_facility("labo-sud").id == "labo-sud"  # type: ignore[union-attr]
    assert directory.by_practitioner("10003456789").id == "cabinet-dupont"  # type: ignore[union-attr]
    assert directory.by_facility("NOBODY") is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "partners.yaml"
    path.write_text(text)
    return path


def test_invalid_field_names_file_line_partner_and_field(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("port: 7002", "port: 99999")
    path = _write(tmp_path, text)
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "port: 99999" in text_line)
    with pytest.raises(ConfigError) as info:
        load_directory(path)
    message = str(info.value)
    assert f"{path}:{line}" in message
    assert "partner 'cabinet-dupont'" in message
    assert "endpoint.port" in message


def test_unknown_field_is_refused_not_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, "partners:\n  - id: a\n    name: A\n    kind: gp\n    facilitys: [X]\n")
    with pytest.raises(ConfigError, match=r"partners.yaml:5: partner 'a': partners.0.facilitys"):
        load_directory(path)


def test_practitioner_in_two_partners_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """partners:
  - id: a
    name: A
    kind: gp
    practitioners: [{system: "urn:oid:1.2.250.1.71.4.2.1", value: "10001234567"}]
  - id: b
    name: B
    kind: gp
    practitioners:
      - {system: "urn:oid:1.2.250.1.71.4.2.1", value: "10001234567"}
""",
    )
    with pytest.raises(
        ConfigError,
        match=r":10: partner 'b': practitioners: 10001234567 "
        r"resolves to two partners",
    ):
        load_directory(path)


def test_route_to_unknown_partner_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """partners:
  - {id: a, name: A, kind: lab, facilities: [A]}
routes:
  - name: r1
    when: {message: "ORU^R01", sender: a}
    to: [{partner: nobody}]
""",
    )
    with pytest.raises(ConfigError, match=r":6: route 'r1': to: unknown partner 'nobody'"):
        load_directory(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "partners:\n  - id: a\n   name: [\n")
    with pytest.raises(ConfigError, match=r"partners.yaml:\d+:"):
        load_directory(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_directory(tmp_path / "nope.yaml")


def test_a_directory_endpoint_and_identity_statuses_are_checked(tmp_path: Path) -> None:
    gp = """partners:
  - id: gp
    name: GP
    kind: gp
    endpoint: {type: directory, path: PATH}
    accepts: {format: hprim-medecins}
    identity_policy: refuse
    qualified_statuses: STATUSES
"""
    good = load_directory(
        _write(tmp_path, gp.replace("PATH", "/srv/gp").replace("STATUSES", "[QUAL]"))
    )
    partner = good.partners["gp"]
    assert str(getattr(partner.endpoint, "path", "")) == "/srv/gp"
    assert partner.qualified_statuses == ["QUAL"]
    relative = _write(tmp_path, gp.replace("PATH", "inbox").replace("STATUSES", "[QUAL]"))
    with pytest.raises(ConfigError, match=r"partner 'gp': .*endpoint.directory.path"):
        load_directory(relative)
    lower = _write(tmp_path, gp.replace("PATH", "/srv/gp").replace("STATUSES", "[qual]"))
    with pytest.raises(ConfigError, match=r"partner 'gp': .*qualified_statuses.0"):
        load_directory(lower)
