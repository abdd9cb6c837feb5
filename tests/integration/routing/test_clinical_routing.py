"""Results and referrals reach the right partners over real MLLP and HTTP, and nobody else."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.integration.routing.conftest import Pipeline
from tests.messages import ORU, REF


async def test_result_reaches_ordering_gp_over_mllp_and_copies_to_over_fhir_only(
    pipeline: Pipeline,
) -> None:
    [env] = await pipeline.accept((ORU, "labo-sud"))
    await pipeline.wait_status([env.message_id], {"delivered"})

    deliveries = await pipeline.deliveries(env.message_id)
    assert set(deliveries) == {"cabinet-dupont", "maison-sante-nord"}
    assert deliveries["cabinet-dupont"]["rules"] == ["ordering-provider", "patient-gp"]
    assert deliveries["maison-sante-nord"]["rules"] == ["copies-to"]
    assert await pipeline.message_status(env.message_id) == "routed"

    assert pipeline.dupont.processed_ids() == ["LS-0001"]
    assert pipeline.dupont.processed[0].receiving_facility == "CAB-DUPONT"
    assert pipeline.chu.received == []
    # maison-sante-nord reads FHIR: a real FHIR message Bundle, translated from the ORU^R01.
    [bundle] = pipeline.fhir.bundles
    Bundle.model_validate(bundle)
    header = bundle["entry"][0]["resource"]
    assert (header["resourceType"], header["eventCoding"]["code"]) == ("MessageHeader", "R01")
    assert header["destination"][0]["name"] == "maison-sante-nord"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "DiagnosticReport", "Observation"} <= kinds
    assert bundle["identifier"]["value"] == f"urn:uuid:{env.message_id}"

    events = await pipeline.audit(env.message_id)
    kinds = [(e["kind"], e.get("recipient")) for e in events]
    for recipient in ("cabinet-dupont", "maison-sante-nord"):
        assert ("routed", recipient) in kinds
        assert ("delivered", recipient) in kinds
    # Only the FHIR recipient's copy was translated, and the audit says into what.
    [translated] = [e for e in events if e["kind"] == "translated"]
    assert translated["recipient"] == "maison-sante-nord"
    assert translated["detail"]["from"] == "hl7v2" and translated["detail"]["to"] == "fhir"
    assert translated["detail"]["produced"]["DiagnosticReport"] == 1


async def test_referral_reaches_the_specialist_and_the_answer_goes_back(
    pipeline: Pipeline,
) -> None:
    [ref] = await pipeline.accept((REF, "cabinet-dupont"))
    await pipeline.wait_status([ref.message_id], {"delivered"})
    assert pipeline.chu.processed_ids() == ["CD-REF-77"]
    assert pipeline.dupont.received == []
    assert (await pipeline.deliveries(ref.message_id))["chu-montpellier"]["rules"] == [
        "referred-to"
    ]

    answer = (
        REF.replace(b"|LGC|CAB-DUPONT|", b"|DPI|CHU-MTP|")
        .replace(b"REF^I12^REF_I12", b"RRI^I12^RRI_I12")
        .replace(b"|CD-REF-77|", b"|CHU-RRI-1|")
    )
    [rri] = await pipeline.accept((answer, "chu-montpellier"))
    await pipeline.wait_status([rri.message_id], {"delivered"})
    assert pipeline.dupont.processed_ids() == ["CHU-RRI-1"]
    assert pipeline.chu.processed_ids() == ["CD-REF-77"]  # not echoed to the sender
    assert (await pipeline.deliveries(rri.message_id))["cabinet-dupont"]["rules"] == ["referrer"]


async def test_unroutable_message_is_kept_with_its_reason(pipeline: Pipeline) -> None:
    raw = (
        ORU.replace(b"10001234567", b"19999999999")
        .replace(b"10007777777", b"19999999998")
        .replace(b"10003456789", b"19999999997")
    )
    [env] = await pipeline.accept((raw, "labo-sud"))

    async def unroutable() -> bool:
        return await pipeline.message_status(env.message_id) == "unroutable"

    from tests.conftest import wait_for

    await wait_for(unroutable, timeout=30)
    async with pipeline.api() as api:
        body = (await api.get(f"/api/messages/{env.message_id}")).json()
    assert body["status"] == "unroutable"
    assert "OBR-16=19999999999 is not in the directory" in body["reason"]
    assert body["deliveries"] == []
    assert [e["kind"] for e in await pipeline.audit(env.message_id)] == ["received", "unroutable"]
