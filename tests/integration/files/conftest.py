"""A running pipeline with the ``files`` role: labs drop HPRIM Santé, GPs receive it their way.

Real PostgreSQL, tansu, MLLP sink and directories: the relay, router,
delivery and files roles run as in a deployment. Three labs send HPRIM
(tests/data/hprim/, one dialect each); cabinet-dupont reads HL7 v2 over MLLP,
cabinet-hprim reads HPRIM Médecins from a directory, cabinet-sante HPRIM Santé
from another (every labo-sud result is copied there by a route), and
cabinet-boite fetches HPRIM Médecins from its mailbox (labo-est's, by a route).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from adapters.files.pickup import FileIntake
from broker.settings import Settings
from tests.conftest import REPO
from tests.integration.routing.conftest import (  # noqa: F401 - fixtures
    FAST_RETRY,
    Pipeline,
    pool,
    sinks,
    start_pipeline,
    stop_pipeline,
)
from tests.sinks import FhirSink, MllpSink

HPRIM = REPO / "tests" / "data" / "hprim"
MAILBOX_TOKEN = "token-of-cabinet-boite"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"


def files_partners(dupont_port: int, root: Path) -> str:
    """Return the partner file of these tests (the sinks' port, the GPs' directories)."""
    return f"""
partners:
  - {{id: labo-sud, name: Laboratoire Sud Biologie, kind: lab, facilities: [LABO-SUD]}}
  - {{id: biolab-nord, name: Biolab Nord, kind: lab, facilities: [BIOLAB-NORD]}}
  - {{id: labo-est, name: Laboratoire de l'Est, kind: lab, facilities: [LABO-EST]}}
  - id: cabinet-dupont
    name: Cabinet médical Dupont
    kind: gp
    facilities: [CAB-DUPONT]
    practitioners:
      - {{system: "{RPPS}", value: "10001234567", name: "DUPONT Anne"}}
    endpoint: {{type: mllp, host: 127.0.0.1, port: {dupont_port}, ack_timeout_s: 2, {FAST_RETRY}}}
    accepts: {{format: hl7v2, version: "2.5"}}
  - id: cabinet-hprim
    name: Cabinet Leroux
    kind: gp
    facilities: [CAB-HPRIM]
    practitioners:
      - {{system: "{RPPS}", value: "10008888888", name: "LEROUX Paul"}}
      - {{system: "{RPPS}", value: "10007777777", name: "PETIT Marc"}}
    endpoint: {{type: directory, path: "{root / "cabinet-hprim"}", {FAST_RETRY}}}
    accepts: {{format: hprim-medecins}}
  - id: cabinet-sante
    name: Cabinet lecteur HPRIM Santé
    kind: gp
    facilities: [CAB-SANTE]
    endpoint: {{type: directory, path: "{root / "cabinet-sante"}", {FAST_RETRY}}}
    accepts: {{format: hprim-sante}}
  - id: cabinet-boite
    name: Cabinet qui relève sa boîte
    kind: gp
    facilities: [CAB-BOITE]
    token_sha256: [{hashlib.sha256(MAILBOX_TOKEN.encode()).hexdigest()}]
    endpoint: {{type: mailbox}}
    accepts: {{format: hprim-medecins}}
routes:
  - name: sud-results-in-hprim-sante
    when: {{message: "ORU^R01", sender: labo-sud}}
    to: [{{partner: cabinet-sante}}]
  - name: est-results-to-a-mailbox
    when: {{message: "ORU^R01", sender: labo-est}}
    to: [{{partner: cabinet-boite}}]
"""


@dataclass
class Drop:
    """The running pipeline, the lab's drop directory and the GPs' directories."""

    pipeline: Pipeline
    inbox: Path
    hprim_gp: Path
    sante_gp: Path

    @property
    def intake(self) -> FileIntake:
        """The files role's intake (its scan count proves a scan happened)."""
        for service in self.pipeline.services:
            intake = getattr(service, "intake", None)
            if isinstance(intake, FileIntake):
                return intake
        raise AssertionError("the files role does not run")

    @property
    def dupont(self) -> MllpSink:
        return self.pipeline.dupont

    def drop(self, sample: str, name: str | None = None) -> Path:
        """Drop a sample as a careful lab does: write under .tmp, then rename."""
        data = (HPRIM / sample).read_bytes()
        target = self.inbox / (name or sample)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(data)
        temporary.rename(target)
        return target


@pytest.fixture
async def drop(
    settings: Settings,
    pool: asyncpg.Pool,  # noqa: F811 - the routing tests' larger pool
    sinks: tuple[MllpSink, MllpSink, FhirSink],  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[Drop]:
    inbox, hprim_gp, sante_gp = (
        tmp_path / "inbox",
        tmp_path / "cabinet-hprim",
        tmp_path / "cabinet-sante",
    )
    for folder in (inbox, hprim_gp, sante_gp):
        folder.mkdir()
    partners = tmp_path / "partners.yaml"
    partners.write_text(files_partners(sinks[1].port, tmp_path))
    settings = settings.model_copy(
        update={
            "files": settings.files.model_copy(
                update={
                    "directory": inbox,
                    "poll_interval_s": 0.1,
                    "settle_s": 0.2,
                    "incomplete_after_s": 1.0,
                }
            )
        }
    )
    running = await start_pipeline(
        settings, pool, sinks, partners, roles=("relay", "router", "delivery", "files")
    )
    try:
        yield Drop(running, inbox, hprim_gp, sante_gp)
    finally:
        await stop_pipeline(running)
