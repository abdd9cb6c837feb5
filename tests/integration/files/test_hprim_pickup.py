"""HPRIM Santé files dropped by three labs reach an HL7 v2 GP and HPRIM GPs with every result.

Each lab writes its own dialect (tests/data/hprim/README.md). What a GP must
see is written out here from the sample files, not from carebroker's reader:
for each result its code, value, unit, reference range and abnormal flag.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapters.files.pickup import FileIntake
from adapters.hl7v2.er7 import Message
from adapters.hprim import records, sante
from tests.conftest import wait_for
from tests.integration.files.conftest import HPRIM, MAILBOX_TOKEN, Drop

# (code, value, unit, reference range, flag) as each lab sent them.
SUD = [
    ("GLY", "6.4", "mmol/L", "3.9-5.8", "H"),
    ("HB", "11.2", "g/dL", "12.0 - 16.0", "L"),
    ("PLQ", "245", "G/L", "150 - 400", "N"),
    ("AU", "412", "µmol/L", "150-360", "H"),
]
# RES|label|code|type|value|unit|low|high|flag|status: what HPRIM Médecins readers file.
NORD_1 = [
    ("NFS010", "A", ".", "", "", "", ""),
    ("GB", "N", "5960", "/mm3", "", "", "N"),  # a range in words stays in the text
    ("GR", "N", "4.51", "10*6/mm3", "4.10", "5.70", "N"),
    ("VGM", "N", "101", "fl", "", "", "H"),
]
NORD_2 = [
    ("TSH", "N", "7.85", "mUI/L", "0.40", "4.00", "H"),
    ("FT4", "N", "9.1", "pmol/L", "", "", "N"),
]
EST = [
    ("CRP", "N", "<0.5", "mg/L", "0", "5", "N"),
    ("TOXOG", "A", "Positif", "", "", "", "A"),
    ("FER", "A", "", "µg/L", "15", "150", ""),
    ("CR", "A", "[fichier E26-7781.pdf]", "", "", "", ""),
]


async def _waiting(client: httpx.AsyncClient, url: str) -> list[dict[str, str]]:
    response = await client.get(url)
    assert response.status_code == 200
    messages: list[dict[str, str]] = response.json()["messages"]
    return messages


def hpm_reports(folder: Path) -> dict[str, tuple[list[str], list[tuple[str, ...]]]]:
    """Return each HPRIM Médecins report by patient name: its 12 header lines, its RES lines."""
    reports = {}
    for path in folder.glob("*.hpm"):
        lines = path.read_bytes().decode("iso-8859-1").split("\r\n")
        assert lines[-2:] == ["****FINFICHIER****", ""], path.name
        header = lines[:12]
        lab = lines[lines.index("****LAB****") + 1 : lines.index("****FIN****")]
        res = [tuple(line.split("|")) for line in lab]
        assert all(r[0] == "RES" and r[-1] == "" for r in res)
        reports[header[1]] = (header, [(r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in res])
    return reports


async def test_three_labs_dialects_reach_each_gp_with_every_result_unit_and_flag(
    drop: Drop,
) -> None:
    for sample in ("labo-sud-h22.hpr", "biolab-nord-h20.hpr", "labo-est-h24.hpr"):
        drop.drop(sample)
    await wait_for(lambda: len(list((drop.inbox / "done").iterdir())) == 3, timeout=30)
    await wait_for(lambda: len(list(drop.hprim_gp.glob("*.hpm"))) == 3, timeout=30)
    await wait_for(lambda: len(list(drop.sante_gp.glob("*.hpr"))) == 1, timeout=30)
    await wait_for(lambda: len(drop.dupont.processed) == 1, timeout=30)

    # HL7 v2 GP: the ORU^R01 labo-sud's file became, over MLLP.
    oru = Message(drop.dupont.processed[0].text)
    assert oru.message_type == "ORU^R01" and oru.get("MSH-4") == "LABO-SUD"
    assert oru.get("PID-3.1") == "LS-PAT-42" and oru.get("PID-5.1") == "MARTIN"
    assert oru.get("OBR-16.1") == "10001234567"
    got = [
        (o.get(3, comp=1), o.get(5), o.get(6, comp=1), o.get(7), o.get(8)) for o in oru.all("OBX")
    ]
    assert got == SUD
    assert [n.get(3) for n in oru.all("NTE")] == [
        "Prélèvement à jeun confirmé",
        "Contrôle sur lame",
    ]

    # HPRIM Santé GP: the same results, as records it reads.
    [hpr] = drop.sante_gp.glob("*.hpr")
    written = sante.parse(records.decode(hpr.read_bytes())[0])
    assert written.header.sender_id == "LABO-SUD" and written.header.receiver_id == "CAB-SANTE"
    results = [r for p in written.patients for q in p.requests for r in q.results]
    assert [(r.test.code, r.value, r.units, r.reference_range, r.flags) for r in results] == SUD

    # HPRIM Médecins GP: one report per patient, header and structured results.
    reports = hpm_reports(drop.hprim_gp)
    assert sorted(reports) == ["BERTRAND", "LEGRAND", "PETIT"]
    header, res = reports["PETIT"]
    assert header[:3] == ["NORD-1201", "PETIT", "LOUIS"]
    assert header[5:7] == ["59000 LILLE", "14/12/1958"]
    assert header[10].split()[0] == "BIOLAB-NOR" and header[11].startswith("CAB-HPRIM")
    assert [r[:1] + r[1:] for r in res] == NORD_1
    assert reports["LEGRAND"][1] == NORD_2
    assert reports["BERTRAND"][1] == EST
    assert reports["BERTRAND"][0][6] == "17/04/1992"

    # A GP without an interface: the same report, fetched from its mailbox.
    async with httpx.AsyncClient(
        base_url=drop.pipeline.url, headers={"Authorization": f"Bearer {MAILBOX_TOKEN}"}
    ) as client:
        listing = await wait_for(
            lambda: _waiting(client, "/mailbox/cabinet-boite/messages"), timeout=30
        )
        [entry] = listing
        fetched = await client.get(f"/mailbox/cabinet-boite/messages/{entry['id']}")
    assert fetched.headers["content-type"] == "text/x-hprim-medecins; charset=iso-8859-1"
    mailbox_lines = fetched.content.decode("iso-8859-1").split("\r\n")
    lab = mailbox_lines[mailbox_lines.index("****LAB****") + 1 : mailbox_lines.index("****FIN****")]
    assert [tuple(line.split("|")[2:9]) for line in lab] == EST

    files = await drop.pipeline.ctx.stores.files.pickups(str(drop.inbox))
    assert sorted((f["name"], f["outcome"], len(f["message_ids"])) for f in files) == [
        ("biolab-nord-h20.hpr", "accepted", 2),
        ("labo-est-h24.hpr", "accepted", 1),
        ("labo-sud-h22.hpr", "accepted", 1),
    ]
    received = [e for e in await drop.pipeline.audit() if e["kind"] == "received"]
    assert sorted(e["partner"] for e in received) == [
        "biolab-nord",
        "biolab-nord",
        "labo-est",
        "labo-sud",
    ]
    assert {e["detail"]["channel"] for e in received} == {"file"}


async def test_a_file_still_being_written_is_never_taken_until_its_end_record(
    drop: Drop,
) -> None:
    drop.intake.incomplete_after_s = 3600.0  # this writer is slow, not dead
    data = (HPRIM / "labo-sud-h22.hpr").read_bytes()
    cut = data.index(b"OBX|3")
    path = drop.inbox / "LS-SLOW.HPR"
    path.write_bytes(data[:cut])  # written in place, no temporary name: the worst case
    seen = drop.intake.scans
    # Scans that looked at it once it stayed unchanged longer than settle_s.
    await wait_for(lambda: drop.intake.scans >= seen + 5, timeout=30)
    assert path.exists() and not (drop.inbox / "done" / path.name).exists()
    assert await drop.pipeline.pool.fetchval("SELECT count(*) FROM messages") == 0

    with path.open("ab") as handle:
        handle.write(data[cut:])
    await wait_for(lambda: (drop.inbox / "done" / path.name).exists(), timeout=30)
    await wait_for(lambda: len(drop.dupont.processed) == 1, timeout=30)
    oru = Message(drop.dupont.processed[0].text)
    assert [o.get(3, comp=1) for o in oru.all("OBX")] == ["GLY", "HB", "PLQ", "AU"]


async def test_a_truncated_file_is_refused_naming_the_file_and_kept(drop: Drop) -> None:
    data = (HPRIM / "biolab-nord-h20.hpr").read_bytes()
    path = drop.inbox / "BN-CUT.HPR"
    path.write_bytes(data[: data.index(b"P|0002")])  # the transfer broke after patient 1
    error = drop.inbox / "error"
    await wait_for(lambda: (error / "BN-CUT.HPR").exists(), timeout=30)
    reason = (error / "BN-CUT.HPR.reason.txt").read_text()
    assert "file: BN-CUT.HPR" in reason
    assert "truncated: file BN-CUT.HPR: no L (end) record" in reason
    row = await drop.pipeline.pool.fetchrow("SELECT * FROM messages")
    assert (row["status"], row["channel"], row["format"], row["sender"]) == (
        "rejected",
        "file",
        "hprim",
        "biolab-nord",
    )
    assert row["reason"].startswith("truncated: file BN-CUT.HPR: no L (end) record")
    stored = await drop.pipeline.pool.fetchval("SELECT data FROM payloads")
    assert stored == data[: data.index(b"P|0002")]
    # Nothing of patient 1 went anywhere: a file is taken whole or not at all.
    assert await drop.pipeline.pool.fetchval("SELECT count(*) FROM deliveries") == 0
    assert not list(drop.hprim_gp.iterdir())


async def test_a_malformed_file_is_refused_naming_record_and_field(drop: Drop) -> None:
    sample = (HPRIM / "labo-est-h24.hpr").read_bytes()
    data = sample.replace(b"|CE|TOXOG~Toxoplasmose IgG~L|", b"|CE||")
    (drop.inbox / "LE-BAD.HPR").write_bytes(data)
    await wait_for(lambda: (drop.inbox / "error" / "LE-BAD.HPR").exists(), timeout=30)
    row = await drop.pipeline.pool.fetchrow("SELECT reason, sender FROM messages")
    assert row["reason"] == (
        "malformed: file LE-BAD.HPR: record 5 (OBX) OBX-4: result without a test code"
    )
    assert row["sender"] == "labo-est"
    [event] = [e for e in await drop.pipeline.audit() if e["kind"] == "rejected"]
    assert (event["detail"]["record"], event["detail"]["field"], event["detail"]["code"]) == (
        5,
        "OBX-4",
        101,
    )
    assert "Immunité" not in str(event)  # ids and locations, never the content


async def test_the_same_file_dropped_twice_is_delivered_once(drop: Drop) -> None:
    drop.drop("labo-sud-h22.hpr", "LS0001.HPR")
    await wait_for(lambda: (drop.inbox / "done" / "LS0001.HPR").exists(), timeout=30)
    drop.drop("labo-sud-h22.hpr", "LS0001-resent.HPR")
    await wait_for(lambda: (drop.inbox / "done" / "LS0001-resent.HPR").exists(), timeout=30)
    files = await drop.pipeline.ctx.stores.files.pickups(str(drop.inbox))
    assert [(f["name"], f["outcome"]) for f in files] == [
        ("LS0001.HPR", "accepted"),
        ("LS0001-resent.HPR", "duplicate"),
    ]
    assert files[0]["message_ids"] == files[1]["message_ids"]
    await wait_for(lambda: len(drop.dupont.processed) == 1, timeout=30)
    assert await drop.pipeline.pool.fetchval("SELECT count(*) FROM messages") == 1
    assert await drop.pipeline.pool.fetchval("SELECT duplicates FROM ingress_keys") == 1


class Killed(BaseException):
    """The process dying between two statements (what SIGKILL does, without a subprocess)."""


async def test_a_file_stored_but_not_moved_is_taken_again_without_a_duplicate(
    drop: Drop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = drop.pipeline.ctx
    inbox = tmp_path / "other-lab"  # not the role's: this test drives its own intake
    inbox.mkdir()

    def intake() -> FileIntake:
        made = FileIntake(
            inbox,
            messages=ctx.stores.messages,
            files=ctx.stores.files,
            directory=lambda: ctx.directory,
            pseudonymizer=ctx.pseudonymizer,
            settle_s=0.0,
        )
        made.prepare()
        return made

    (inbox / "LS0001.HPR").write_bytes((HPRIM / "labo-sud-h22.hpr").read_bytes())
    crashing = intake()

    def killed(*args: object) -> None:
        raise Killed

    monkeypatch.setattr(crashing, "_move", killed)
    await crashing.scan()  # sees it
    with pytest.raises(Killed):
        await crashing.scan()  # stores it, then dies before the move
    assert (inbox / "LS0001.HPR").exists()
    assert await drop.pipeline.pool.fetchval("SELECT count(*) FROM messages") == 1

    restarted = intake()  # a new process: nothing remembered but the store
    await restarted.scan()
    await restarted.scan()
    assert (inbox / "done" / "LS0001.HPR").exists() and not (inbox / "LS0001.HPR").exists()
    files = await ctx.stores.files.pickups(str(inbox))
    assert [f["outcome"] for f in files] == ["accepted", "duplicate"]
    assert await drop.pipeline.pool.fetchval("SELECT count(*) FROM messages") == 1
    [message_id] = files[0]["message_ids"]
    await drop.pipeline.wait_status([message_id], {"delivered"})
    assert drop.dupont.processed_ids() == [drop.dupont.processed[0].control_id]
    assert drop.dupont.resent == []
