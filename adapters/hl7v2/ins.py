"""The French national health identifier (INS) in an HL7 v2 message: valid, and qualified? (pure)

The INS travels in PID-3 as the *matricule INS* with its assigning authority
(PAM FR 2.11, CI-SIS volume 2)::

    PID-3 = 277076322082910^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS

and the identity reliability of the patient record in PID-32 (HL7 table 0445
as IHE France extends it: ``VIDE``, ``PROV``, ``VALI``, ``QUAL``, ``DOUT``,
``FICT`` ...). The rules (domain-requirements §3.1):

- the matricule is a NIR (OID ``1.2.250.1.213.1.4.8``) or a NIA (``.4.9``);
  ``.4.10`` and ``.4.11`` are the ANS test and demonstration NIRs, which the
  ANS examples send with MSH-11 = ``P``, so MSH-11 cannot tell test traffic:
  the deployment says it is production (``CAREBROKER_INS__PRODUCTION``) and
  there a test-range OID is refused;
- a NIR (and a NIA, "constitué comme un NIR") is 13 characters and a 2-digit
  key: 97 minus the 13-digit number modulo 97, Corsica's ``2A``/``2B``
  department read as 19/18 for the key (INSEE rule; identito-na.fr "NIR et
  NIA"). Test and demo NIRs are checked for shape only: the test data sets in
  circulation (IHE Gazelle's ``208037261004817``) carry keys never computed;
- only a *qualified* identity may carry and transmit the INS (FR Core
  ``fr-core-patient-ins``; RNIV). Which PID-32 codes assert it differs between
  guides (PAM FR 2.11 sends ``VALI``; the RNIV status is ``QUAL``), so each
  sender declares its own (``qualified_statuses`` in the directory), ``VALI``
  and ``QUAL`` by default. A doubtful, provisional, empty or fictitious
  status (``DOUT``, ``PROV``, ``VIDE``, ``FICT``) beside it wins: carebroker
  never infers or upgrades an identity.

A PID-3 repetition *claims* to be the INS when its type (PID-3.5) is ``INS``
(or a French table 0203 ``INS-NIR``/``INS-NIA`` code), its namespace names
``INS-NIR``/``INS-NIA``, or its OID is an INS OID: a claim with a missing or
wrong OID is what catches the ``1.2.250.1.213.1.4.2`` (old INS-C) seen in
third-party configurations.

:func:`check` returns every problem with its HL7 table 0357 code and location
(``PID-3[2].4``, ``PID-32``), which ingress answers (AE) when the sender's
policy is ``refuse``, and which the render flags when it strips the INS.
:func:`is_qualified` and :func:`qualified_ins` are what an outbound channel
asks before it writes the INS anywhere (the MSSanté ``X-MSS-INS`` header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from adapters.hl7v2.er7 import Message, Segment

NIR_OID: Final = "1.2.250.1.213.1.4.8"
NIA_OID: Final = "1.2.250.1.213.1.4.9"
TEST_OIDS: Final = {
    "1.2.250.1.213.1.4.10": "test NIR",
    "1.2.250.1.213.1.4.11": "demonstration NIR",
}
INS_OIDS: Final = frozenset({NIR_OID, NIA_OID, *TEST_OIDS})
INS_TYPES: Final = frozenset({"INS", "INS-NIR", "INS-NIA", "INS-NIR-TEST", "INS-NIR-DEMO"})
RELIABILITY_CODES: Final = frozenset(
    {"VIDE", "PROV", "VALI", "QUAL", "RECUP", "DOUT", "FICT", "DOUB", "DESA", "DPOT", "DOUA"}
)
DEFAULT_QUALIFIED: Final = ("VALI", "QUAL")
# Statuses that deny a qualified identity whatever else PID-32 repeats.
DOUBTFUL: Final = frozenset({"VIDE", "PROV", "DOUT", "FICT"})
# Each rule: its HL7 table 0357 code in an ERR, and the field the ERR names.
RULES: Final = {
    "oid_missing": (101, "PID-3"),
    "oid_unknown": (103, "PID-3"),
    "oid_test_in_production": (103, "PID-3"),
    "matricule_malformed": (102, "PID-3"),
    "key_mismatch": (102, "PID-3"),
    "status_missing": (101, "PID-32"),
    "not_qualified": (103, "PID-32"),
}
_NAMESPACE = re.compile(r"INS-(NIR|NIA)", re.IGNORECASE)
_ARC = "1.2.250.1.213.1.4."
_MATRICULE = re.compile(r"\d{5}(\d{2}|2[AB])\d{8}")
# The key reads Corsica's departments as numbers: 2A is 20 less 1, 2B is 20 less 2 (x 10^6).
_CORSICA: Final = {"2A": "19", "2B": "18"}


class InsSettings(BaseModel):
    """The ``CAREBROKER_INS__*`` settings: where the deployment stands."""

    model_config = ConfigDict(extra="forbid")

    production: bool = Field(
        default=False,
        description="This deployment carries real patients: an INS with the ANS test or demo "
        "OID (1.2.250.1.213.1.4.10/.11) is refused or stripped per the sender's identity policy "
        "(MSH-11 cannot tell: the ANS examples send test INS with MSH-11 = P).",
    )


@dataclass(frozen=True)
class Policy:
    """What one sender's messages must satisfy: its qualified statuses, the deployment's mode."""

    qualified: frozenset[str] = frozenset(DEFAULT_QUALIFIED)
    production: bool = False

    @classmethod
    def of(cls, statuses: Iterable[str], *, production: bool) -> Policy:
        """Return the policy of a sender declaring ``statuses`` as qualified."""
        return cls(frozenset(s.upper() for s in statuses), production)


@dataclass(frozen=True)
class Problem:
    """One INS rule broken: its ``kind``, HL7 table 0357 code, location, text (no values)."""

    kind: str
    code: int
    location: str
    text: str


@dataclass(frozen=True)
class Check:
    """What a message asserts about its patient's INS, and every rule it breaks.

    ``present``: a PID-3 repetition claims to be the INS. ``qualified``: an
    INS is present, valid, and PID-32 asserts a qualified identity; only then
    may the INS travel on.
    """

    present: bool = False
    qualified: bool = False
    reliability: str = ""
    problems: tuple[Problem, ...] = ()
    repetitions: tuple[int, ...] = field(default=(), repr=False)

    @property
    def kinds(self) -> list[str]:
        """Return the kinds of the problems, each once, in order."""
        return list(dict.fromkeys(p.kind for p in self.problems))


def is_claim(authority: str, id_type: str, namespace: str = "") -> bool:
    """Tell whether an identifier claims to be the INS (its OID, type or namespace says so)."""
    return (
        authority in INS_OIDS
        or id_type.upper() in INS_TYPES
        or bool(_NAMESPACE.search(namespace or authority))
    )


@dataclass(frozen=True)
class _Claim:
    """One PID-3 repetition claiming to be the INS: where, its matricule, its OID."""

    rep: int
    value: str = field(repr=False)
    oid: str


def claimed_repetitions(pid: Segment) -> list[int]:
    """Return the PID-3 repetitions (1-based) that claim to be the INS."""
    return [claim.rep for claim in _claims(pid)]


def _claims(pid: Segment) -> list[_Claim]:
    raw = pid.field(3)
    # The hot path: most messages outside France carry nothing an INS claim needs.
    if "INS" not in raw.upper() and _ARC not in raw and pid.enc.escape not in raw:
        return []
    found = []
    for rep in range(1, len(pid.repetitions(3)) + 1):
        parts = pid.components(3, rep)
        authority = parts[3].split(pid.enc.subcomponent) if len(parts) > 3 else [""]
        namespace, oid = authority[0], authority[1] if len(authority) > 1 else ""
        id_type = parts[4] if len(parts) > 4 else ""
        if is_claim(oid, id_type, namespace):
            found.append(_Claim(rep, parts[0], oid))
    return found


def nir_key(number: str) -> int:
    """Return the control key of a 13-character NIR or NIA (Corsica 2A -> 19, 2B -> 18)."""
    department = number[5:7].upper()
    if department in _CORSICA:
        number = number[:5] + _CORSICA[department] + number[7:]
    return 97 - int(number) % 97


def matricule_problem(value: str, oid: str) -> str | None:
    """Return why a matricule INS is malformed for its OID (no value in the text), or None."""
    if not _MATRICULE.fullmatch(value.upper()):
        return "not 13 characters and a 2-digit key (digits, 2A/2B in the department)"
    if oid in TEST_OIDS:
        return None
    if nir_key(value[:13]) != int(value[13:]):
        return "control key does not match (97 - NIR mod 97)"
    return None


def check(message: Message, policy: Policy | None = None) -> Check:
    """Check the INS of a message's PID (see the module docstring); pure."""
    return check_pid(message.segment("PID"), policy or Policy())


def check_pid(pid: Segment | None, policy: Policy) -> Check:
    """Check the INS claims of one PID segment against ``policy``."""
    if pid is None:
        return Check()
    codes = [pid.get(32, rep, 1).upper() for rep in range(1, len(pid.repetitions(32)) + 1)]
    reliability = "~".join(codes)
    claims = _claims(pid)
    if not claims:
        return Check(reliability=reliability)
    problems: list[Problem] = []
    for claim in claims:
        problems += _claim_problems(claim, policy)
    statuses = [c for c in codes if c]
    if not statuses:
        problems.append(
            _problem("status_missing", "PID-32", "INS sent without an identity reliability")
        )
    elif not (policy.qualified & set(statuses)) or DOUBTFUL & set(statuses):
        wanted = "/".join(sorted(policy.qualified)) or "none"
        problems.append(
            _problem(
                "not_qualified",
                "PID-32",
                f"INS sent without a qualified identity (PID-32 is not {wanted})",
            )
        )
    return Check(
        present=True,
        qualified=not problems,
        reliability=reliability,
        problems=tuple(problems),
        repetitions=tuple(c.rep for c in claims),
    )


def _claim_problems(claim: _Claim, policy: Policy) -> list[Problem]:
    where = f"PID-3[{claim.rep}]" if claim.rep > 1 else "PID-3"
    oid, value = claim.oid, claim.value
    if not oid:
        return [_problem("oid_missing", f"{where}.4", f"INS without its OID in {where}.4.2")]
    if oid not in INS_OIDS:
        return [
            _problem(
                "oid_unknown",
                f"{where}.4",
                f"{where}.4.2 is not an INS OID (NIR {NIR_OID}, NIA {NIA_OID})",
            )
        ]
    if policy.production and oid in TEST_OIDS:
        return [
            _problem(
                "oid_test_in_production",
                f"{where}.4",
                f"{where}.4.2 is the ANS {TEST_OIDS[oid]} OID, refused in production",
            )
        ]
    why = matricule_problem(value, oid)
    if why is not None:
        kind = "key_mismatch" if why.startswith("control key") else "matricule_malformed"
        return [_problem(kind, f"{where}.1", f"matricule INS in {where}.1: {why}")]
    return []


def _problem(kind: str, location: str, text: str) -> Problem:
    return Problem(kind, RULES[kind][0], location, text)


def is_qualified(message: Message, policy: Policy | None = None) -> bool:
    """Tell whether a message asserts a valid INS with a qualified identity (it may travel)."""
    return check(message, policy).qualified


def qualified_ins(message: Message, policy: Policy | None = None) -> tuple[str, str] | None:
    """Return (matricule, OID) of the message's INS when its identity is qualified, else None.

    The NIR is preferred to a NIA when both are sent. This is what an outbound
    channel may write (the MSSanté ``X-MSS-INS`` header); anything else must
    not leave carebroker with the INS.
    """
    result = check(message, policy)
    pid = message.segment("PID")
    if not result.qualified or pid is None:
        return None
    found = [(pid.get(3, rep, 1), pid.get(3, rep, 4, 2)) for rep in result.repetitions]
    found.sort(key=lambda pair: pair[1] != NIR_OID)
    return found[0]


__all__ = [
    "DEFAULT_QUALIFIED",
    "INS_OIDS",
    "NIA_OID",
    "NIR_OID",
    "RULES",
    "TEST_OIDS",
    "Check",
    "InsSettings",
    "Policy",
    "Problem",
    "check",
    "check_pid",
    "claimed_repetitions",
    "is_claim",
    "is_qualified",
    "matricule_problem",
    "nir_key",
    "qualified_ins",
]
