"""An INS breaking the rules from a ``strip`` sender reaches the GP without it, flagged."""

from __future__ import annotations

import json

from adapters.hl7v2.er7 import Message
from tests.integration.routing.conftest import Pipeline
from tests.messages import ORU

LOCAL = "LS-PAT-42^^^LABO-SUD&1.2.250.1.999.1&ISO^PI"


async def test_a_bad_ins_is_stripped_on_the_way_and_each_rule_is_flagged(
    pipeline: Pipeline,
) -> None:
    # A wrong key and a provisional identity: labo-sud's policy is the default, strip.
    raw = ORU.replace(b"277076322082910", b"277076322082911").replace(b"|VALI\r", b"|PROV\r")
    raw = raw.replace(b"|LS-0001|", b"|INS-STRIP-1|")
    [env] = await pipeline.accept((raw, "labo-sud"))
    assert env.identity.issues == ["key_mismatch", "not_qualified"]
    await pipeline.wait_status([env.message_id], {"delivered"})

    [received] = [r for r in pipeline.dupont.processed if r.control_id == "INS-STRIP-1"]
    pid = Message(received.text).segment("PID")
    assert pid is not None
    assert pid.field(3) == LOCAL  # the INS repetition is gone, the local id stays
    assert pid.get(32) == "PROV"  # the status travels as sent, never upgraded
    deliveries = await pipeline.deliveries(env.message_id)
    assert deliveries["cabinet-dupont"]["flags"] == [
        "ins_stripped",
        "ins_key_mismatch",
        "ins_not_qualified",
    ]
    # The FHIR recipient's Bundle is translated from the stripped message: no INS either.
    [bundle] = [b for b in pipeline.fhir.bundles if str(env.message_id) in json.dumps(b)]
    assert "277076322082911" not in json.dumps(bundle)
    assert "1.2.250.1.213.1.4.8" not in json.dumps(bundle)
    routed = [e for e in await pipeline.audit(env.message_id) if e["kind"] == "routed"]
    assert {e["recipient"] for e in routed} == {"cabinet-dupont", "maison-sante-nord"}
    assert all("ins_key_mismatch" in e["detail"]["flags"] for e in routed)
