"""Directory lookups routing needs, reload summaries, and what PostgreSQL keeps of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.directory import Directory, describe_changes, load_directory
from broker.envelope import ProviderRef
from broker.errors import ConfigError
from tests.messages import DATA

EXAMPLE = DATA / "partners.yaml"


def test_provider_references_resolve_by_practitioner_identifier_or_facility() -> None:
    directory = load_directory(EXAMPLE)

    def resolve(**kw: str) -> str | None:
        found = directory.resolve(ProviderRef(source="X", **kw))
        return found.id if found else None

    assert resolve(id="10007777777", authority="1.2.250.1.71.4.2.1") == "maison-sante-nord"
    assert resolve(id="340780477", authority="1.2.250.1.71.4.2.2") == "chu-montpellier"
    assert resolve(id="340780477") == "chu-montpellier"
    assert resolve(id="CAB-DUPONT") == "cabinet-dupont"
    assert resolve(id="00000000000") is None
    assert resolve(id="") is None


def test_stored_document_round_trips_to_the_same_directory() -> None:
    directory = load_directory(EXAMPLE)
    again = Directory.from_document(directory.to_document(), directory.source)
    assert again.digest == directory.digest
    assert (
        again.partners["cabinet-dupont"].endpoint == directory.partners["cabinet-dupont"].endpoint
    )


def test_change_summary_names_partners_and_routes(tmp_path: Path) -> None:
    old = load_directory(EXAMPLE)
    text = (
        EXAMPLE.read_text()
        .replace("port: 7002", "port: 7102")
        .replace("enabled: false", "enabled: true")
        .replace("  - id: cabinet-sans-interface", "  - id: cabinet-renomme")
    )
    path = tmp_path / "partners.yaml"
    path.write_text(text)
    assert describe_changes(old, load_directory(path)) == {
        "partners_added": ["cabinet-renomme"],
        "partners_removed": ["cabinet-sans-interface"],
        "partners_changed": ["cabinet-dupont"],
        "routes_changed": ["all-lab-results-copy"],
    }
    assert describe_changes(old, old) == {}


def test_route_field_conditions_must_be_hl7_paths(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_text(
        EXAMPLE.read_text().replace(
            'when: {message: "ADT^A0*", sender: chu-montpellier}',
            'when: {message: "ADT^A0*", sender: chu-montpellier, fields: {"PV1.3": "X"}}',
        )
    )
    with pytest.raises(ConfigError, match=r"route 'adt-to-gp'.*'PV1.3' is not an HL7 v2 field"):
        load_directory(path)


def test_retry_policy_is_per_endpoint_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "partners.yaml"
    path.write_text(
        EXAMPLE.read_text().replace(
            "endpoint: {type: mllp, host: 127.0.0.1, port: 7002}",
            "endpoint: {type: mllp, host: 127.0.0.1, port: 7002, retry: {max_attempts: 3}}",
        )
    )
    directory = load_directory(path)
    endpoint = directory.partners["cabinet-dupont"].endpoint
    assert endpoint is not None and endpoint.retry.max_attempts == 3
    other = directory.partners["chu-montpellier"].endpoint
    assert other is not None and other.retry.max_attempts == 50
