"""CI-SIS "Transmission de document(s) CDA en HL7v2": read and check a document request (pure).

A hospital or lab system (the CREATEUR) sends carebroker (the GESTIONNAIRE,
the platform) an ``ORU^R01`` (HL7 v2.5) or ``MDM^T02/T04/T10`` (v2.6) whose
``MSH-21`` is ``2.1^CISIS_CDA_HL7_V2`` (``profils-messages.md``):

- the CDA R2 document(s) Base64 in OBX-5 (type ED: ``^TEXT^XML^Base64^...``;
  ORU: one or two, level 1 and/or level 3; MDM: one), OBX-11 the request:
  ``F`` new, ``C`` replace, ``D`` delete, consistent with ORC-1 (``NW``,
  ``RO``, ``CA``) and, for MDM, the event (T02, T10, T04);
- PRT segments (pre-adopted from v2.9): ``SB`` the sender, ``RCT`` each
  MSSanté recipient (address in PRT-15.4, else a person PRT-5, organisation
  PRT-8 or device PRT-10), ``REPLY`` the reply-to address;
- the metadata OBX (OBX-3.3 ``MetaDMPMSS``), each Y/N in OBX-5.1:
  ``MASQUE_PS``, ``INVISIBLE_PATIENT``, ``INVISIBLE_REP_LEGAUX``,
  ``CONNEXION_SECRETE``, ``MODIF_CONF_CODE``, ``DESTDMP``, ``DESTMSSANTEPS``,
  ``DESTMSSANTEPAT`` (required) and ``ACK_RECEPTION``, ``ACK_LECTURE_MSS``
  (optional, N when absent; the guide's own examples also write
  ``ACK_LECTURE``), an ``NTE-4 = FIN`` after DESTMSSANTEPAT (the patient may
  not answer), and the mail bodies ``CORPSMAIL_PS``/``CORPSMAIL_PATIENT``
  (ED, Base64 text).

The management rules (``regles-gestion-mssante.md``) list the flag
combinations an MSSanté exchange allows; "les cas non représentés génèrent
un message d'erreur". Read literally the table contradicts the guide's own
examples (``exemples.md``: a PS-only exchange with INVISIBLE_PATIENT=N, a
patient-only one with DESTDMP=Y, the ANS MDM example with
INVISIBLE_REP_LEGAUX=Y), so carebroker keeps the constraints every row and
every example agree on, and refuses the rest:

- DESTMSSANTEPS=Y requires MASQUE_PS=N (a document hidden from professionals
  is not exchanged between them, attention point of MASQUE_PS);
- DESTMSSANTEPAT=Y requires INVISIBLE_PATIENT=N (a document hidden from the
  patient is not sent to the patient, attention point of INVISIBLE_PATIENT);
- DESTMSSANTEPAT=Y with DESTMSSANTEPS=N requires CONNEXION_SECRETE=N (row 3);
- an MSSanté exchange needs RCT recipients of the kind it names (PRT
  "requis si le document est échangé via MSSanté").

Refusals carry the guide's ERR codes (``error-codes.md``, HL7 table 0357):
100 segment missing, 101 field missing, 102 data type (Base64, not a CDA),
103 table value (not Y/N, not F/C/D), 198 cardinality, 200/201/203
unsupported type/event/version (AR), 207 a management rule broken; ERR-2
names segment, occurrence and field (``OBX(9)-5``), ERR-8 the rule.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Final, Literal

from adapters.hl7v2.ack import AckError, Outcome
from adapters.hl7v2.er7 import Message, Segment
from adapters.mssante.cda import Cda, CdaError, read_cda
from broker.errors import MessageError

PROFILE: Final = "CISIS_CDA_HL7_V2"
PROFILE_VERSION: Final = "2.1"
META: Final = "MetaDMPMSS"
REQUIRED_FLAGS: Final = (
    "MASQUE_PS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REP_LEGAUX",
    "CONNEXION_SECRETE",
    "MODIF_CONF_CODE",
    "DESTDMP",
    "DESTMSSANTEPS",
    "DESTMSSANTEPAT",
)
OPTIONAL_FLAGS: Final = ("ACK_RECEPTION", "ACK_LECTURE_MSS")
FLAG_ALIASES: Final = {"ACK_LECTURE": "ACK_LECTURE_MSS"}
BODIES: Final = {"CORPSMAIL_PS": "ps", "CORPSMAIL_PATIENT": "patient"}
PATIENT_DOMAIN: Final = "patient.mssante.fr"
INS_OIDS: Final = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10"})
# OBX-11 (table 0085) -> ORC-1 and the MDM event that must go with it.
STATUSES: Final = {"F": ("NW", "T02"), "C": ("RO", "T10"), "D": ("CA", "T04")}
EVENTS: Final = {"ORU": ("R01",), "MDM": ("T02", "T04", "T10")}
VERSIONS: Final = {"ORU": "2.5", "MDM": "2.6"}

Role = Literal["SB", "RCT", "REPLY"]


class CisisError(MessageError):
    """A CI-SIS request refused: its ERR (code, location, text) and AE (error) or AR (reject)."""

    def __init__(self, error: AckError, outcome: Outcome = "error") -> None:
        super().__init__(error.text, location=error.location, code=error.code)
        self.error = error
        self.outcome: Outcome = outcome


@dataclass(frozen=True)
class Document:
    """One CDA document of the request: where it was, its type and status, its bytes."""

    obx: int  # occurrence of the OBX segment in the message (1-based)
    code: str
    label: str
    status: str  # OBX-11: F, C, D
    cda: Cda = field(repr=False)


@dataclass(frozen=True)
class Participant:
    """A PRT segment: who (person, organisation, device), in which role, which address."""

    prt: int  # occurrence of the PRT segment in the message (1-based)
    role: str
    person_id: str = ""
    person_authority: str = ""
    person_id_type: str = ""
    organisation_id: str = ""
    organisation_name: str = ""
    device_id: str = ""
    address: str = field(default="", repr=False)

    @property
    def is_patient(self) -> bool:
        """Tell whether this is the patient (INS id, or a ``@patient.mssante.fr`` address)."""
        return (
            self.address.lower().endswith("@" + PATIENT_DOMAIN)
            or self.person_id_type.upper() == "INS"
            or self.person_authority in INS_OIDS
        )

    @property
    def identifier(self) -> str:
        """Return the id that may name a directory partner: person, organisation or device."""
        return self.person_id or self.organisation_id or self.device_id

    @property
    def where(self) -> str:
        """Return the field that names this participant (``PRT(3)-15.4``, ``PRT(2)-5.1`` ...)."""
        if self.address:
            return f"PRT({self.prt})-15.4"
        if self.person_id:
            return f"PRT({self.prt})-5.1"
        if self.organisation_id:
            return f"PRT({self.prt})-8.10"
        return f"PRT({self.prt})-10.1"


@dataclass(frozen=True)
class Request:
    """A checked CI-SIS request: documents, participants, flags, mail bodies."""

    message_type: str  # ORU or MDM
    event: str
    order_control: str
    status: str  # F, C, D (the documents')
    documents: tuple[Document, ...]
    participants: tuple[Participant, ...]
    flags: dict[str, bool]
    flag_obx: dict[str, int]
    bodies: dict[str, str] = field(default_factory=dict, repr=False)
    no_reply: bool = False  # NTE-4 FIN after DESTMSSANTEPAT: X-MSS-MES: FIN
    patient_class: str = ""  # PV1-2: the XDS contentTypeCode is mapped from it

    @property
    def recipients(self) -> list[Participant]:
        """Return the RCT participants, in message order."""
        return [p for p in self.participants if p.role == "RCT"]

    @property
    def sender(self) -> Participant | None:
        """Return the SB participant (who asks for the document to be sent)."""
        return next((p for p in self.participants if p.role == "SB"), None)

    @property
    def reply_to(self) -> str:
        """Return the REPLY address, or ""."""
        return next((p.address for p in self.participants if p.role == "REPLY"), "")

    @property
    def to_professionals(self) -> bool:
        """Tell whether DESTMSSANTEPS asks for the professionals' mailboxes."""
        return self.flags.get("DESTMSSANTEPS", False)

    @property
    def to_patient(self) -> bool:
        """Tell whether the patient's mailbox may receive it: asked for, and visible to them."""
        return self.flags.get("DESTMSSANTEPAT", False) and not self.flags.get(
            "INVISIBLE_PATIENT", True
        )

    @property
    def ack_reception(self) -> bool:
        """Tell whether the sender wants delivery notices (ZAM^Z02)."""
        return self.flags.get("ACK_RECEPTION", False)

    @property
    def ack_reading(self) -> bool:
        """Tell whether the sender wants read notices (ZAM^Z03)."""
        return self.flags.get("ACK_LECTURE_MSS", False)


def is_cisis(message: Message) -> bool:
    """Tell whether MSH-21 names the CI-SIS CDA-in-HL7v2 profile (any repetition)."""
    msh = message.msh
    return any(
        msh.get(21, rep, 2).strip() == PROFILE for rep in range(1, len(msh.repetitions(21)) + 1)
    )


def is_cisis_bytes(payload: bytes) -> bool:
    """Tell from the MSH segment's bytes alone whether a message uses the profile (cheap)."""
    end = payload.find(b"\r")
    header = payload[: end if end >= 0 else 4096]
    return PROFILE.encode() in header


def read(message: Message) -> Request:
    """Read and check a CI-SIS request; raise CisisError with the guide's ERR."""
    msh = message.msh
    kind, event = msh.get(9, comp=1).upper(), msh.get(9, comp=2).upper()
    if kind not in EVENTS:
        raise CisisError(
            AckError(200, f"{kind}: the CI-SIS profile carries ORU or MDM", "MSH-9"), "reject"
        )
    if event not in EVENTS[kind]:
        raise CisisError(
            AckError(201, f"{kind}^{event} is not an event of the CI-SIS profile", "MSH-9.2"),
            "reject",
        )
    version = msh.get(12, comp=1).strip()
    if not version.startswith(VERSIONS[kind]):
        raise CisisError(
            AckError(203, f"{kind} is HL7 v{VERSIONS[kind]} in this profile", "MSH-12"),
            "reject",
        )
    profile_version = _profile_version(msh)
    if profile_version != PROFILE_VERSION:
        raise CisisError(
            AckError(203, f"MSH-21 profile version must be {PROFILE_VERSION}", "MSH-21.1"),
            "reject",
        )
    for name in ("PID", "PV1", "ORC", "OBR") + (("TXA",) if kind == "MDM" else ()):
        if message.segment(name) is None:
            raise CisisError(AckError(100, f"{name} segment missing", name))
    order_control = message.get("ORC-1").strip().upper()
    if order_control not in {c for c, _ in STATUSES.values()}:
        raise CisisError(AckError(103, "ORC-1 must be NW, RO or CA", "ORC-1"))
    if kind == "MDM":
        if not message.get("TXA-12"):
            raise CisisError(AckError(101, "TXA-12 unique document number missing", "TXA-12"))
        if event == "T10" and not message.get("TXA-13"):
            raise CisisError(
                AckError(101, "TXA-13 replaced document number missing (T10)", "TXA-13")
            )
    documents: list[Document] = []
    flags: dict[str, bool] = {}
    flag_obx: dict[str, int] = {}
    bodies: dict[str, str] = {}
    no_reply = False
    after_patient_flag = False
    obx_seen = 0
    for segment in message.segments:
        if segment.name == "NTE" and after_patient_flag:
            no_reply = no_reply or segment.get(4, comp=1).strip().upper() == "FIN"
            continue
        if segment.name != "OBX":
            continue
        obx_seen += 1
        after_patient_flag = False
        code = segment.get(3, comp=1).strip().upper()
        code = FLAG_ALIASES.get(code, code)
        if code in REQUIRED_FLAGS or code in OPTIONAL_FLAGS:
            if code in flags:
                raise CisisError(AckError(198, f"{code} given twice", f"OBX({obx_seen})"))
            value = segment.get(5, comp=1).strip().upper()
            if value not in ("Y", "N"):
                raise CisisError(
                    AckError(103, f"{code} must be Y or N (table 0136)", f"OBX({obx_seen})-5")
                )
            flags[code], flag_obx[code] = value == "Y", obx_seen
            after_patient_flag = code == "DESTMSSANTEPAT"
        elif code in BODIES:
            if BODIES[code] in bodies:
                raise CisisError(AckError(198, f"{code} given twice", f"OBX({obx_seen})"))
            bodies[BODIES[code]] = _body(segment, obx_seen)
        elif segment.get(2).strip().upper() == "ED" and segment.get(3, comp=3) != META:
            documents.append(_document(segment, obx_seen))
    if not documents:
        raise CisisError(AckError(100, "no OBX of type ED carries a CDA document", "OBX"))
    limit = 1 if kind == "MDM" else 2
    if len(documents) > limit:
        where = f"OBX({documents[limit].obx})"
        raise CisisError(AckError(198, f"{kind} carries at most {limit} document(s)", where))
    statuses = {d.status for d in documents}
    if len(statuses) > 1:
        raise CisisError(
            AckError(207, "the documents' OBX-11 differ", f"OBX({documents[1].obx})-11")
        )
    status = documents[0].status
    expected_control, expected_event = STATUSES[status]
    if order_control != expected_control:
        raise CisisError(
            AckError(207, f"ORC-1 {order_control} does not match OBX-11 {status}", "ORC-1")
        )
    if kind == "MDM" and event != expected_event:
        raise CisisError(AckError(207, f"event {event} does not match OBX-11 {status}", "MSH-9.2"))
    for name in REQUIRED_FLAGS:
        if name not in flags:
            raise CisisError(AckError(100, f"metadata OBX {name} ({META}) missing", "OBX"))
    request = Request(
        message_type=kind,
        event=event,
        order_control=order_control,
        status=status,
        documents=tuple(documents),
        participants=tuple(_participants(message)),
        flags=flags,
        flag_obx=flag_obx,
        bodies=bodies,
        no_reply=no_reply,
        patient_class=message.get("PV1-2").strip().upper(),
    )
    check_rules(request)
    return request


def check_rules(request: Request) -> None:
    """Refuse a flag combination the management rules forbid (ERR 207 at the flag's OBX-5)."""
    flags = request.flags

    def refuse(flag: str, text: str) -> CisisError:
        return CisisError(AckError(207, text, f"OBX({request.flag_obx[flag]})-5"))

    to_ps, to_patient = flags["DESTMSSANTEPS"], flags["DESTMSSANTEPAT"]
    if to_ps and flags["MASQUE_PS"]:
        raise refuse(
            "DESTMSSANTEPS",
            "DESTMSSANTEPS=Y with MASQUE_PS=Y: a document hidden from professionals is not "
            "exchanged between them (regles-gestion-mssante)",
        )
    if to_patient and flags["INVISIBLE_PATIENT"]:
        raise refuse(
            "DESTMSSANTEPAT",
            "DESTMSSANTEPAT=Y with INVISIBLE_PATIENT=Y: a document invisible to the patient is "
            "not sent to the patient (regles-gestion-mssante)",
        )
    if to_patient and not to_ps and flags["CONNEXION_SECRETE"]:
        raise refuse(
            "CONNEXION_SECRETE",
            "CONNEXION_SECRETE=Y for a patient-only exchange (regles-gestion-mssante)",
        )
    recipients = request.recipients
    if to_ps and not any(not p.is_patient for p in recipients):
        raise CisisError(
            AckError(100, "DESTMSSANTEPS=Y but no PRT RCT names a professional recipient", "PRT")
        )
    if to_patient and not any(p.is_patient and p.address for p in recipients):
        raise CisisError(
            AckError(100, "DESTMSSANTEPAT=Y but no PRT RCT gives the patient's address", "PRT")
        )
    for participant in recipients:
        if participant.is_patient and not to_patient:
            continue  # left out by routing, never refused: the creator may list it anyway
        if not participant.address and not participant.identifier:
            raise CisisError(
                AckError(
                    101,
                    "PRT RCT names no address, person, organisation or device",
                    f"PRT({participant.prt})-15.4",
                )
            )


def _profile_version(msh: Segment) -> str:
    for rep in range(1, len(msh.repetitions(21)) + 1):
        if msh.get(21, rep, 2).strip() == PROFILE:
            return msh.get(21, rep, 1).strip()
    return ""


def _document(segment: Segment, obx: int) -> Document:
    where = f"OBX({obx})"
    status = segment.get(11).strip().upper()
    if status not in STATUSES:
        raise CisisError(AckError(103, "OBX-11 must be F, C or D", f"{where}-11"))
    if segment.get(5, comp=4).strip().upper() != "BASE64":
        raise CisisError(AckError(102, "OBX-5.4 must be Base64", f"{where}-5.4"))
    data = _base64(segment.get(5, comp=5), f"{where}-5.5")
    try:
        cda = read_cda(data)
    except CdaError as exc:
        raise CisisError(
            AckError(102, f"OBX-5.5 is not a CDA R2 document: {exc}", f"{where}-5.5")
        ) from exc
    return Document(obx, segment.get(3, comp=1), segment.get(3, comp=2), status, cda)


def _body(segment: Segment, obx: int) -> str:
    encoding = segment.get(5, comp=4).strip().upper()
    value = segment.get(5, comp=5)
    if encoding != "BASE64":
        return value
    data = _base64(value, f"OBX({obx})-5.5")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _base64(value: str, where: str) -> bytes:
    text = "".join(value.split())
    if not text:
        raise CisisError(AckError(101, "Base64 data missing", where))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CisisError(AckError(102, "not valid Base64", where)) from exc


def _participants(message: Message) -> list[Participant]:
    found = []
    for occurrence, prt in enumerate(message.all("PRT"), 1):
        found.append(
            Participant(
                prt=occurrence,
                role=prt.get(4, comp=1).strip().upper(),
                person_id=prt.get(5, comp=1).strip(),
                person_authority=prt.get(5, 1, 9, 2).strip(),
                person_id_type=prt.get(5, comp=13).strip(),
                organisation_id=(prt.get(8, comp=10) or prt.get(8, comp=3)).strip(),
                organisation_name=prt.get(8, comp=1).strip(),
                device_id=prt.get(10, comp=1).strip(),
                address=prt.get(15, comp=4).strip(),
            )
        )
    return found


def refusal_of(message: Message) -> tuple[AckError, Outcome] | None:
    """Return the ERR and outcome refusing a message that claims the profile, or None."""
    if not is_cisis(message):
        return None
    try:
        read(message)
    except CisisError as refusal:
        return refusal.error, refusal.outcome
    return None
