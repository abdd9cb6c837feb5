"""Translation between HL7 v2 and FHIR R4: pure functions, no I/O.

- :mod:`adapters.translate.v2_to_fhir` — HL7 v2 -> FHIR R4 message Bundle (v2-to-FHIR IG);
- :mod:`adapters.translate.fhir_to_v2` — FHIR R4 results and referrals -> HL7 v2;
- :mod:`routing.render` — what the router hands each recipient.
"""
