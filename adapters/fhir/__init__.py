"""The FHIR edge: the REST/messaging gateway, validation, and envelopes for FHIR input."""
