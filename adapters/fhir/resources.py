"""Index a FHIR document's resources: by full URL, ``Type/id`` and ``#id`` (contained).

FHIR's references (R4 §2.3.0 Resource references, Bundle.entry.fullUrl)
resolve within a Bundle, or within a resource's ``contained`` list. The FHIR
gateway uses this index to find the sender and the patients of what it
receives (``adapters/fhir/auth.py``, ``extract.py``, ``gateway.py``) and the
FHIR-to-v2 translation to walk from one resource to another
(``adapters/translate/fhir_to_v2.py``). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class Resources:
    """The resources of a FHIR document, resolvable by full URL, ``Type/id`` or ``#id``."""

    def __init__(self, document: Json) -> None:
        self.items: list[Json] = []
        self.by_ref: dict[str, Json] = {}
        if document.get("resourceType") == "Bundle":
            for entry in document.get("entry", []) or []:
                resource = entry.get("resource")
                if isinstance(resource, dict):
                    self._add(resource, entry.get("fullUrl", ""))
        else:
            self._add(document, "")

    def _add(self, resource: Json, full_url: str) -> None:
        self.items.append(resource)
        if full_url:
            self.by_ref[full_url] = resource
        if resource.get("id"):
            self.by_ref[f"{resource['resourceType']}/{resource['id']}"] = resource
        for contained in resource.get("contained", []) or []:
            if contained.get("id"):
                self.by_ref[f"#{contained['id']}"] = contained

    def of_type(self, resource_type: str) -> list[Json]:
        """Return the resources of one type, in document order."""
        return [r for r in self.items if r.get("resourceType") == resource_type]

    def resolve(self, reference: Json | None) -> Json | None:
        """Return the resource a Reference points at; a logical reference yields a stub."""
        if not reference:
            return None
        target = reference.get("reference", "")
        if target:
            found = self.by_ref.get(target) or self.by_ref.get(target.rsplit("/_history", 1)[0])
            if found is None and "/" in target:  # absolute URL of a RESTful full URL
                found = self.by_ref.get("/".join(target.split("/")[-2:]))
            if found is not None:
                return found
        if reference.get("identifier"):
            return {"identifier": [reference["identifier"]], "display": reference.get("display")}
        if reference.get("display"):
            return {"name": [{"text": reference["display"]}]}
        return None

    def practitioner(self, reference: Json | None) -> Json | None:
        """Resolve a reference to a person only: a Practitioner, or a PractitionerRole's one."""
        found = self.resolve(reference)
        if found is not None and found.get("resourceType") == "PractitionerRole":
            found = self.resolve(found.get("practitioner"))
        if found is not None and found.get("resourceType") in ("Organization", "Location"):
            return None
        return found

    def person(self, reference: Json | None) -> Json | None:
        """Resolve a reference to a Practitioner, following PractitionerRole.practitioner."""
        found = self.resolve(reference)
        if found is not None and found.get("resourceType") == "PractitionerRole":
            return self.resolve(found.get("practitioner")) or self.resolve(
                found.get("organization")
            )
        return found


__all__ = ["Json", "Resources"]
