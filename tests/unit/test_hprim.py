"""HPRIM Santé reading (dialects, completeness, refusals) and HPRIM writing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.hl7v2.er7 import Message
from adapters.hprim import medecins, oru, records, sante
from adapters.hprim.records import HprimError
from tests.conftest import REPO

HPRIM = REPO / "tests" / "data" / "hprim"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def text_of(name: str) -> str:
    return records.decode((HPRIM / name).read_bytes())[0]


def results(hprim: sante.HprimFile) -> list[sante.Result]:
    return [r for p in hprim.patients for q in p.requests for r in q.results]


def test_delimiters_are_read_by_position_whatever_the_characters() -> None:
    standard = records.Delimiters.read("H|~^\\&|F.HPR")
    medintux = records.Delimiters.read("H|\\^&~|F.HPR")
    assert (standard.component, standard.repetition) == ("~", "^")
    assert (medintux.component, medintux.repetition, medintux.escape) == ("\\", "^", "&")
    nord = sante.parse(text_of("biolab-nord-h20.hpr"))
    ordering = nord.patients[0].requests[0].ordering
    assert (ordering.id, ordering.name, ordering.unit) == ("10007777777", "PETIT Marc", "MSP-NORD")
    assert [t.code for t in nord.patients[1].requests[0].tests] == ["TSH", "FT4"]


def test_continuation_lines_join_their_record_mid_word() -> None:
    sud = sante.parse(text_of("labo-sud-h22.hpr"))
    request = sud.patients[0].requests[0]
    assert request.ordering.unit_name == "Cabinet médical Dupont"
    assert request.status == "F"  # OBR-26, on the A| line
    nord = sante.parse(text_of("biolab-nord-h20.hpr"))
    [note] = results(nord)[-1].comments
    assert note.endswith("dans 6 semaines conseille")


@pytest.mark.parametrize(
    ("name", "codec", "patients", "count"),
    [
        ("labo-sud-h22.hpr", "iso-8859-1", 1, 4),
        ("biolab-nord-h20.hpr", "utf-8", 2, 6),
        ("labo-est-h24.hpr", "utf-8", 1, 4),
    ],
)
def test_each_dialect_reads_every_patient_and_result(
    name: str, codec: str, patients: int, count: int
) -> None:
    text, used = records.decode((HPRIM / name).read_bytes())
    assert used == codec and records.is_complete(text)
    hprim = sante.parse(text)
    assert (len(hprim.patients), len(results(hprim))) == (patients, count)


def test_ranges_in_components_or_words_are_kept_whole() -> None:
    est = results(sante.parse(text_of("labo-est-h24.hpr")))
    assert [r.reference_range for r in est] == ["0-5", "", "15-150", ""]
    nord = results(sante.parse(text_of("biolab-nord-h20.hpr")))
    assert nord[1].reference_range == "vr : 4000 a 10000"


@pytest.mark.parametrize(
    "cut",
    [b"L|1", b"OBX|3", b"OBX|3|NM|PLQ~Plaq"],
)
def test_a_file_without_its_end_record_is_not_complete(cut: bytes) -> None:
    data = (HPRIM / "labo-sud-h22.hpr").read_bytes()
    text = records.decode(data[: data.index(cut)])[0]
    assert not records.is_complete(text)
    with pytest.raises(HprimError, match="no L \\(end\\) record: the file is truncated"):
        sante.parse(text)


def test_trailing_blank_lines_and_a_dos_end_mark_do_not_hide_the_end() -> None:
    base = text_of("labo-sud-h22.hpr")
    assert records.is_complete(base + "\r\n\r\n\x1a")
    assert records.is_complete(base.replace("L|1", "L"))
    assert not records.is_complete("")
    assert not records.is_complete("MSH|^~\\&|LIS\rL|1")


@pytest.mark.parametrize(
    ("old", "new", "where", "code"),
    [
        ("H|~^\\&|", "X|~^\\&|", "record 1 H-1", 102),
        ("|ORU|", "|ADM|", "record 1 (H) H-7", 200),
        ("LABO-SUD~Laboratoire", "~Laboratoire", "record 1 (H) H-5", 101),
        ("|DUP-778|LS-PAT-42|", "|||", "record 2 (P) P-4", 101),
        ("|MARTIN~JEANNE|", "|~JEANNE|", "record 2 (P) P-6", 101),
        ("OBX|1|NM|GLY~", "OBX|1|XX|GLY~", "record 5 (OBX) OBX-3", 103),
        ("OBX|2|NM|HB~Hémoglobine~L|", "OBX|2|NM||", "record 6 (OBX) OBX-4", 101),
        ("\r\nL|1", "\r\nL|1\r\nC|1|L|late", "record 12 (C)", 100),
        ("C|1|L|Contrôle sur lame", "Q|1|ALL", "record 8 (Q) Q-1", 100),
    ],
)
def test_a_bad_file_names_the_record_and_field_never_a_value(
    old: str, new: str, where: str, code: int
) -> None:
    text = text_of("labo-sud-h22.hpr")
    assert old in text
    with pytest.raises(HprimError) as caught:
        sante.parse(text.replace(old, new, 1))
    assert str(caught.value).startswith(where + ":")
    assert caught.value.code == code
    assert "MARTIN" not in str(caught.value) and "6.4" not in str(caught.value)


def test_results_before_a_request_and_patients_without_one_are_refused() -> None:
    head = "H|~^\\&|F||LAB~Lab||ORU|||GP~Gp||P|H2.2~C|202611281000\r\n"
    patient = "P|1|A1|B1||NOM~PRENOM||19700101|F\r\n"
    result = "OBX|1|NM|GLY~Glycemie~L||5|mmol/L\r\n"
    with pytest.raises(HprimError, match="record 3 \\(OBX\\): a result \\(OBX\\) before any"):
        sante.parse(head + patient + result + "L|1\r\n")
    with pytest.raises(HprimError, match="record 2 \\(P\\): no request \\(OBR\\) follows"):
        sante.parse(head + patient + "L|1\r\n")


def test_the_oru_keeps_values_hl7_types_cannot_hold_as_sent() -> None:
    text = text_of("labo-est-h24.hpr").replace("||<0.5|", "||4,5|")
    [message] = oru.to_oru(sante.parse(text), ["C-1"], now=NOW)
    obx = Message(message).all("OBX")
    assert [(o.get(2), o.get(5)) for o in obx] == [
        ("NM", "4.5"),  # a decimal comma
        ("CE", "POS^Positif^L"),
        ("NM", ""),  # pending: no value yet, status I
        ("RP", "E26-7781.pdf^LABO-EST^AP^PDF"),
    ]
    [original] = oru.to_oru(sante.parse(text_of("labo-est-h24.hpr")), ["C-2"], now=NOW)
    crp = Message(original).segment("OBX")
    assert crp is not None and (crp.get(2), crp.field(5)) == ("SN", "<^0.5")
    words = text_of("labo-est-h24.hpr").replace("||<0.5|", "||non dosable|")
    [message] = oru.to_oru(sante.parse(words), ["C-3"], now=NOW)
    assert Message(message).get("OBX-2") == "ST" and Message(message).get("OBX-5") == (
        "non dosable"
    )


def test_a_patient_known_only_by_the_requester_keeps_that_id() -> None:
    text = text_of("labo-sud-h22.hpr").replace("|DUP-778|LS-PAT-42|", "|DUP-778||")
    [message] = oru.to_oru(sante.parse(text), ["C-1"], now=NOW)
    pid = Message(message).segment("PID")
    assert pid is not None and pid.field(3) == "DUP-778^^^LABO-SUD^PT" and pid.field(2) == ""


def test_hprim_sante_written_back_reads_the_same_results() -> None:
    for name in ("labo-sud-h22.hpr", "biolab-nord-h20.hpr", "labo-est-h24.hpr"):
        original = sante.parse(text_of(name))
        again = sante.parse(sante.write(original))
        assert again.header == original.header
        pick = [
            (r.test, r.value, r.parts, r.units, r.reference_range, r.flags, r.status)
            for r in results(again)
        ]
        assert pick == [
            (r.test, r.value, r.parts, r.units, r.reference_range, r.flags, r.status)
            for r in results(original)
        ]


def test_hprim_medecins_has_its_header_lines_results_and_end_marks() -> None:
    nord = sante.parse(text_of("biolab-nord-h20.hpr"))
    out = medecins.write(nord, recipient=("MSP-NORD", "Maison de santé Nord"))
    assert out.endswith("****FIN****\r\n****FINFICHIER****\r\n")
    reports = out.split("****FIN****\r\n")[:-1]
    assert len(reports) == 2  # one per patient
    first = reports[0].split("\r\n")
    assert first[:3] == ["NORD-1201", "PETIT", "LOUIS"]
    assert first[6:10] == ["14/12/1958", "", "261128BN01", "28/11/2026"]
    assert first[10] == "BIOLAB-NOR Biolab Nord" and first[11] == "MSP-NORD   Maison de santé Nord"
    lab = first[first.index("****LAB****") + 1 : -1]
    assert lab[2] == "RES|Globules rouges|GR|N|4.51|10*6/mm3|4.10|5.70|N|F|||||"


def test_the_ins_line_is_written_only_when_given() -> None:
    sud = sante.parse(text_of("labo-sud-h22.hpr"))
    assert medecins.write(sud).split("\r\n")[7] == ""
    assert medecins.write(sud, ins="277076322082910").split("\r\n")[7] == "277076322082910"
