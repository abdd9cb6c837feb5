"""Rebuild the examples of exemples.md (CI-SIS CDA-in-HL7v2 v2.1) as whole messages.

The guide prints extracts (OBX and PRT segments, wrapped lines, a truncated
address, Base64 of a sentence instead of a document). Each file here is that
extract made a complete message: MSH/PID/PV1/ORC/OBR (and EVN/TXA for MDM)
around it, segments unwrapped, the document a real CDA R2 of this folder
(``{{file.xml}}`` is replaced by its Base64 when a test loads the message),
the guide's flags, PRT and bodies kept as printed (ORU examples 0 and 2 keep
the guide's ``ACK_LECTURE`` spelling). Run ``python make_examples.py`` here
to write them again.
"""

from __future__ import annotations

from pathlib import Path

PS = (
    "Q2hlciBjb25mcsOocmUsIHZvdXMgdHJvdXZlcmV6IGNpLWpvaW50IGxlIENSIGTigJlpbWFnZXJpZSBkZSBNLkR1"
    "cG9udA=="
)
PAT = "Qm9uam91ciBNLkR1cG9udCwgY2ktam9pbnQgdm90cmUgQ1IgZOKAmWltYWdlcmllLg=="
SB = (
    "PRT||UC||SB^Send by^participation|801234567866^Dupont^Jean^^^^^^ASIP-SANTE-PS"
    "&1.2.250.1.71.4.2.1&ISO^D^^^RPPS|||Organisation-X^^^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO"
    "^FINEG^^^300017985"
)
HODA = (
    "PRT||UC||RCT^Results Copies To^participation|101234567897^Hoda^Adam^^^^^^ASIP-SANTE-PS"
    "&1.2.250.1.71.4.2.1&ISO^D^^^RPPS||||||||||^^X.400^adam.hoda@test-ci-sis.mssante.fr"
)
APPLI = (
    "PRT||UC||RCT^Results Copies To^participation||||||12|||||"
    "^^X.400^appliExemple@hopitalB.mssante.fr"
)
RADIO = (
    "PRT||UC||RCT^Results Copies To^participation||||Radiologie^^^^^120456789^UF^^^3435"
    "|||||||^^X.400^radiologie@hopitalA.mssante.fr"
)
PATIENT = (
    "PRT||UC||RCT^Results Copies To^participation|||||||||||"
    "^^X.400^146026322000196@patient.mssante.fr"
)
REPLY = "PRT||UC||REPLY^Reply to^participation|||||||||||^^X.400^adam.hoda@test-ci-sis.mssante.fr"
NAMES = {
    "MASQUE_PS": "Masqué aux professionnels de Santé",
    "INVISIBLE_PATIENT": "Document Non Visible par le patient",
    "INVISIBLE_REP_LEGAUX": "Non visible par les représentants Légaux du patient",
    "CONNEXION_SECRETE": "Connexion Secrete",
    "MODIF_CONF_CODE": "Modification Confidentiality Code",
    "DESTDMP": "Destinataire DMP",
    "DESTMSSANTEPS": "Destinataire (Professionnel de Santé, organisation ou BAL applicative)",
    "DESTMSSANTEPAT": "Destinataire Patient",
    "ACK_RECEPTION": "Accusé de réception",
    "ACK_LECTURE_MSS": "Accusé de lecture",
    "ACK_LECTURE": "Accusé de lecture",
}
PID = (
    "PID|||146026322000196^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"
    "~IPP-000123^^^LABO&1.2.250.1.71.4.2.7.120456789&ISO^PI||PATIENT-TEST^CAMILLE^^^^^L"
    "||19460203|F" + "|" * 24 + "VALI"
)
LABELS = {"11502-2": "CR d'examens biologiques", "18748-4": "CR d\u2019imagerie médicale"}
CONTROLS = {"F": "NW", "C": "RO", "D": "CA"}


def flags(kind: str, start: int, values: list[tuple[str, str]], fin: bool) -> tuple[list[str], int]:
    out, n = [], start
    for name, value in values:
        out.append(
            f"OBX|{n}|{kind}|{name}^{NAMES[name]}^MetaDMPMSS||{value}^^expandedYes-NoIndicator"
            "||||||F|"
        )
        n += 1
        if fin and name == "DESTMSSANTEPAT":
            out.append("NTE|1|||FIN|")
    return out, n


def body(n: int, which: str, data: str) -> str:
    label = "Corps du mail pour un PS" if which == "PS" else "Corps du mail pour le patient"
    return f"OBX|{n}|ED|CORPSMAIL_{which}^{label}^MetaDMPMSS||^TEXT^^Base64^{data}||||||F|"


def values(*flags: str, ack: str = "Y", reading: str = "Y") -> list[tuple[str, str]]:
    names = list(NAMES)[:8]
    return [*zip(names, flags, strict=True), ("ACK_RECEPTION", ack), ("ACK_LECTURE_MSS", reading)]


def oru(
    control: str,
    status: str,
    code: str,
    documents: list[str],
    prts: list[str],
    flag_values: list[tuple[str, str]],
    bodies: list[tuple[str, str]],
    *,
    fin: bool = False,
    reading_flag: str = "ACK_LECTURE_MSS",
) -> str:
    label = LABELS[code]
    segments = [
        "MSH|^~\\&|SIL-Y|labo|PFI-X|Organisation-X|20261130093100||ORU^R01^ORU_R01|"
        f"{control}|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        PID,
        "PV1|1|O",
        f"ORC|{CONTROLS[status]}|",
        f"OBR|1|||{code}^{label}^LN",
        f"OBX|1|ED|{code}^{label}^LN||^TEXT^XML^Base64^{{{{{documents[0]}}}}}||||||{status}|",
        *prts,
    ]
    n = 2
    for extra in documents[1:]:
        segments.append(
            f"OBX|{n}|ED|{code}^{label}^LN||^TEXT^XML^Base64^{{{{{extra}}}}}||||||{status}|"
        )
        n += 1
    renamed = [(reading_flag if k == "ACK_LECTURE_MSS" else k, v) for k, v in flag_values]
    lines, n = flags("CE", n, renamed, fin)
    segments += lines
    segments += [body(n + i, which, data) for i, (which, data) in enumerate(bodies)]
    return "\n".join(segments) + "\n"


def mdm(
    control: str,
    event: str,
    status: str,
    document: str,
    prts: list[str],
    flag_values: list[tuple[str, str]],
    bodies: list[tuple[str, str]],
) -> str:
    label = LABELS["18748-4"]
    ids = (
        "1.2.250.1.213.1.1.9.1.IMG-0001-V2|1.2.250.1.213.1.1.9.1.IMG-0001"
        if event == "T10"
        else "1.2.250.1.213.1.1.9.1.IMG-0001|"
    )
    segments = [
        "MSH|^~\\&|RIS-Y|Organisation-Y|PFI-Y|Organisation-Y|20261130093100||"
        f"MDM^{event}^MDM_T02|{control}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        "EVN||20261130093000",
        PID,
        "PV1|1|O",
        f"ORC|{CONTROLS[status]}|",
        f"OBR|1|||18748-4^{label}^LN",
        f"TXA|1|18748-4|TEXT|20261130093000||||||||{ids}||||AU",
        f"OBX|1|ED|18748-4^{label}^LN||^text^XML^Base64^{{{{{document}}}}}||||||{status}|",
        *prts,
    ]
    lines, n = flags("CWE", 2, flag_values, False)
    segments += lines
    segments += [body(n + i, which, data) for i, (which, data) in enumerate(bodies)]
    return "\n".join(segments) + "\n"


EXAMPLES = {
    "oru_ex0.hl7": oru(
        "ORU-EX0",
        "F",
        "11502-2",
        ["cr_bio_n3.xml", "cr_bio_n1.xml"],
        [SB, HODA, APPLI, PATIENT, REPLY],
        values("N", "N", "N", "N", "N", "Y", "Y", "Y"),
        [("PS", PS)],
        reading_flag="ACK_LECTURE",
    ),
    "oru_ex1.hl7": oru(
        "ORU-EX1",
        "F",
        "18748-4",
        ["cr_imagerie_n1.xml"],
        [SB, PATIENT],
        values("Y", "N", "N", "N", "N", "Y", "N", "Y"),
        [("PATIENT", PAT)],
        fin=True,
    ),
    "oru_ex2.hl7": oru(
        "ORU-EX2",
        "D",
        "18748-4",
        ["cr_imagerie_n1.xml"],
        [SB, RADIO, HODA],
        values("N", "N", "N", "N", "N", "Y", "Y", "N"),
        [("PS", PS)],
        reading_flag="ACK_LECTURE",
    ),
    "oru_ex3.hl7": oru(
        "ORU-EX3",
        "C",
        "18748-4",
        ["cr_imagerie_n1_v2.xml"],
        [SB, HODA, PATIENT],
        values("N", "N", "N", "N", "N", "Y", "Y", "Y"),
        [("PS", PS)],
    ),
    "oru_ex4.hl7": oru(
        "ORU-EX4",
        "C",
        "18748-4",
        ["cr_imagerie_n1_v2.xml"],
        [SB, HODA, APPLI, PATIENT, REPLY],
        values("N", "N", "N", "N", "Y", "Y", "Y", "Y"),
        [],
    ),
    "mdm_ex0.hl7": mdm(
        "MDM-EX0",
        "T02",
        "F",
        "cr_imagerie_n1.xml",
        [SB, HODA, APPLI, RADIO, PATIENT, REPLY],
        values("N", "N", "N", "N", "N", "Y", "Y", "Y"),
        [("PS", PS)],
    ),
    "mdm_ex1.hl7": mdm(
        "MDM-EX1",
        "T02",
        "F",
        "cr_imagerie_n1.xml",
        [SB, PATIENT],
        values("Y", "N", "N", "N", "N", "Y", "N", "Y"),
        [("PATIENT", PAT)],
    ),
    "mdm_ex2.hl7": mdm(
        "MDM-EX2",
        "T04",
        "D",
        "cr_imagerie_n1.xml",
        [SB, HODA],
        values("N", "N", "N", "N", "N", "Y", "Y", "N"),
        [("PS", PS)],
    ),
    "mdm_ex3.hl7": mdm(
        "MDM-EX3",
        "T10",
        "C",
        "cr_imagerie_n1_v2.xml",
        [SB, HODA, PATIENT],
        values("N", "N", "N", "N", "N", "Y", "Y", "Y"),
        [("PS", PS)],
    ),
    "mdm_ex4.hl7": mdm(
        "MDM-EX4",
        "T10",
        "C",
        "cr_imagerie_n1_v2.xml",
        [SB, HODA, APPLI, PATIENT, REPLY],
        values("N", "N", "N", "N", "Y", "Y", "Y", "Y"),
        [],
    ),
}

if __name__ == "__main__":
    here = Path(__file__).parent
    for name, text in EXAMPLES.items():
        (here / name).write_text(text, encoding="utf-8")
