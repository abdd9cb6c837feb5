"""Data types that become resources of their own: who and where (v2-to-FHIR IG).

An HL7 v2 field naming an organisation, a person or a place becomes a
resource the referring resource points at, as the IG's data type maps say:
HD[Organization] (an assigning authority, MSH-4), XON[Organization],
XCN[Practitioner], XCN[PractitionerRole], XCN[RelatedPerson],
PL[Location] (one Location per level, ``partOf`` the next), HD[Location],
HD[Device], EI[Device]. Each function adds the resource to the Bundle being
built and returns the reference to it ("" when the value names nothing).

A resource named twice with the same v2 value is added once (the Bundle
builder keys it by type and raw value), so the ordering provider of ORC-12
and OBR-16 is one Practitioner, while two different spellings of a doctor
stay two resources: carebroker does not guess that they are one person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    address,
    cwe_string,
    hd_system,
    identifier_cx,
    identifier_ei,
    identifier_type,
    telecom,
    universal_id,
    universal_id_type,
    xcn_identifier,
    xcn_name,
)
from adapters.translate.vocabulary import V2_0203

if TYPE_CHECKING:
    from adapters.translate.v2_to_fhir import Context

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
RFC_3986 = "urn:ietf:rfc:3986"


# --- organisations -------------------------------------------------------------------


def hd_organization(value: Value | None) -> Json | None:
    """Return an Organization for an HD (HD[Organization]), not yet added.

    HD.1 is ``identifier[1].value``; HD.2 is ``identifier[2]``, a URI
    (``urn:oid:``, ``urn:uuid:``) when HD.3 says ISO or UUID, typed by HD.3
    (table 0301).
    """
    if not value:
        return None
    namespace, universal, kind = value.c(1), value.c(2), value.c(3)
    if not namespace and not universal:
        return None
    identifiers: list[Json] = []
    if namespace:
        identifiers.append({"value": namespace})
    if universal:
        uri = universal_id(universal, kind)
        second: Json = {"value": uri}
        if uri != universal:
            second["system"] = RFC_3986
        kind_concept = universal_id_type(kind)
        if kind_concept:
            second["type"] = kind_concept
        identifiers.append(second)
    return {"resourceType": "Organization", "identifier": identifiers}


def organization_hd(ctx: Context, value: Value | None) -> str:
    """Add the Organization an HD names (HD[Organization]); return its reference or ""."""
    if value is None:
        return ""
    key = f"Organization|HD|{value.raw}"
    found = ctx.builder.shared(key)
    if found:
        return found
    resource = hd_organization(value)
    if resource is None:
        return ""
    return ctx.builder.add_shared(resource, key)


def assigner(ctx: Context, value: Value, n: int) -> str:
    """Add the assigning authority in component ``n`` (an HD in subcomponents) as an Organization.

    Only an authority given in full (namespace, universal id and its type)
    becomes a resource; a bare namespace is already the identifier's system.
    """
    subs = value.subs(n)
    if len(subs) < 3 or not (subs[0] and subs[1] and subs[2]):
        return ""
    hd = value.component(n)
    return organization_hd(ctx, hd)


def identifier(ctx: Context, value: Value | None) -> Json | None:
    """Return an Identifier for a CX with its assigner Organization (CX[Identifier])."""
    result = identifier_cx(value)
    if result is None or value is None:
        return None
    if len(value.parts()) >= 4:
        ref = assigner(ctx, value, 4)
        if ref:
            result["assigner"] = {"reference": ref, **result.get("assigner", {})}
    return result


def xon_organization(ctx: Context, value: Value | None) -> Json | None:
    """Return an Organization for an XON (XON[Organization]), not yet added."""
    if not value:
        return None
    count = len(value.parts())
    name = value.c(1)
    ident: Json = {}
    ident_value = (value.c(10) if count >= 10 else "") or (value.c(3) if count >= 3 else "")
    if ident_value:
        ident["value"] = ident_value
    if count >= 6 and value.has(6):
        system = hd_system(value.s(6, 1), value.s(6, 2), value.s(6, 3))
        if system:
            ident["system"] = system
        ref = assigner(ctx, value, 6)
        if ref:
            ident["assigner"] = {"reference": ref, "display": value.s(6, 1)}
    if count >= 7 and value.c(7):
        code = value.c(7)
        target = maps.IDENTIFIER_TYPE.get(code)
        item: Json = {"code": code, "system": V2_0203}
        if target is not None:
            item["display"] = target[1]
        ident["type"] = {"coding": [item]}
    if not name and not ident.get("value"):
        return None
    resource: Json = {"resourceType": "Organization"}
    if name:
        resource["name"] = name
    if ident:
        resource["identifier"] = [ident]
    return resource


def organization_xon(
    ctx: Context, value: Value | None, *, source: str = "", **extra: object
) -> str:
    """Add the Organization an XON names (XON[Organization]); return its reference or "".

    ``extra`` elements (address, telecom ...) come from other fields, whose raw
    text ``source`` gives: the same organisation with other details is another
    resource, as it is in the message.
    """
    if value is None:
        return ""
    key = f"Organization|XON|{value.raw}|{source}"
    found = ctx.builder.shared(key)
    if found:
        return found
    resource = xon_organization(ctx, value)
    if resource is None:
        return ""
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, key)


def organization_name(ctx: Context, name: str, **extra: object) -> str:
    """Add an Organization known by its name only (XON[string], ST)."""
    if not name:
        return ""
    resource: Json = {"resourceType": "Organization", "name": name}
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, f"Organization|name|{name}|{sorted(extra)}")


# --- people ----------------------------------------------------------------------------


def xcn_practitioner(ctx: Context, value: Value | None) -> Json | None:
    """Return a Practitioner for an XCN (XCN[Practitioner]), not yet added."""
    if not value:
        return None
    ident = xcn_identifier(value)
    name = xcn_name(value)
    if ident is None and name is None:
        return None
    resource: Json = {"resourceType": "Practitioner"}
    if ident is not None:
        count = len(value.parts())
        if count >= 9:
            ref = assigner(ctx, value, 9)
            if ref:
                ident["assigner"] = {"reference": ref, **ident.get("assigner", {})}
        resource["identifier"] = [ident]
    if name is not None:
        resource["name"] = [name]
    degree = value.c(7)
    if degree:
        resource["qualification"] = [
            {
                "code": {
                    "coding": [
                        {"code": degree, "system": "http://terminology.hl7.org/CodeSystem/v2-0360"}
                    ]
                }
            }
        ]
    return resource


def practitioner(ctx: Context, value: Value | None) -> str:
    """Add the Practitioner an XCN names (XCN[Practitioner]); return its reference or ""."""
    if value is None:
        return ""
    key = f"Practitioner|{value.raw}"
    found = ctx.builder.shared(key)
    if found:
        return found
    resource = xcn_practitioner(ctx, value)
    if resource is None:
        return ""
    return ctx.builder.add_shared(resource, key)


def cnn_practitioner(ctx: Context, value: Value | None) -> str:
    """Add the Practitioner a CNN names (CNN[Practitioner], NDL.1 in OBR-32..35)."""
    if not value:
        return ""
    subs = value.subs(1)
    subs += [""] * (11 - len(subs))
    ident, family, given1, given2, suffix, prefix, degree = subs[:7]
    if not ident and not family:
        return ""
    resource: Json = {"resourceType": "Practitioner"}
    if ident:
        entry: Json = {"value": ident}
        system = hd_system(subs[8], subs[9], subs[10])
        if system:
            entry["system"] = system
        resource["identifier"] = [entry]
    name: Json = {}
    if family:
        name["family"] = family
    given = [g for g in (given1, given2) if g]
    if given:
        name["given"] = given
    suffixes = [s for s in (suffix, degree) if s]
    if suffixes:
        name["suffix"] = suffixes
    if prefix:
        name["prefix"] = [prefix]
    if name:
        resource["name"] = [name]
    return ctx.builder.add_shared(resource, f"Practitioner|CNN|{value.raw}")


def practitioner_role(
    ctx: Context,
    person: str,
    *,
    code: Json | None = None,
    key: str = "",
    **extra: object,
) -> str:
    """Add a PractitionerRole for a Practitioner reference and its role (XCN[PractitionerRole]).

    ``key`` names where the role comes from (a field, or a whole segment's raw
    text) and, with the person, identifies it: a caller whose ``code`` or
    ``extra`` vary under one key puts what varies in the key.
    """
    if not person and not any(extra.values()):
        return ""
    identity = f"PractitionerRole|{key}|{person}"
    found = ctx.builder.shared(identity)
    if found:
        return found
    resource: Json = {"resourceType": "PractitionerRole"}
    if code:
        resource["code"] = [code]
    if person:
        resource["practitioner"] = {"reference": person}
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, identity)


# --- places ----------------------------------------------------------------------------

# PL components from most to least granular (PL[Location]): bed, room, floor,
# point of care, building, facility. The IG leaves the point of care's
# physical type open ("-poc", to be defined); carebroker says ward ("wa"),
# the location-physical-type code for a care unit.
_PL_LEVELS = ((3, "bd"), (2, "ro"), (8, "lvl"), (1, "wa"), (7, "bu"), (4, "si"))


def _location_identifier(value: Value, n: int) -> Json | None:
    """HD[Location]: HD.2 is the Location's identifier when HD.3 says ISO or UUID."""
    universal, kind = value.s(n, 2), value.s(n, 3)
    if not universal:
        return None
    uri = universal_id(universal, kind)
    if uri == universal:
        return {"value": universal}
    return {"value": uri, "system": RFC_3986}


def location(ctx: Context, value: Value | None, **extra: object) -> str:
    """Add the Locations a PL names, bed ``partOf`` room ... facility (PL[Location]).

    Return the reference of the most granular Location given, as the IG says
    the referring resource must point at it; ``extra`` elements (an address,
    a type) go on that one.
    """
    if not value:
        return ""
    extra_key = "|".join(sorted(extra)) if extra else ""
    whole_key = f"Location|PL|{value.raw}|{extra_key}"
    done = ctx.builder.shared(whole_key)
    if done:
        return done
    count = len(value.parts())
    levels = [(n, kind) for n, kind in _PL_LEVELS if n <= count and value.has(n)]
    description = value.c(9) if count >= 9 else ""
    if not levels:
        if not description:
            return ""
        resource: Json = {"resourceType": "Location", "name": description, "mode": "instance"}
        resource.update({k: v for k, v in extra.items() if v})
        return ctx.builder.add_shared(resource, whole_key)
    parent = ""
    reference = ""
    last = len(levels) - 1
    for position, (n, kind) in enumerate(reversed(levels)):
        resource = {"resourceType": "Location"}
        name = value.s(n, 1) or value.s(n, 2)
        if name:
            resource["name"] = name
        identifiers = []
        found = _location_identifier(value, n)
        if found:
            identifiers.append(found)
        most_granular = position == last
        if most_granular and count >= 10:
            comprehensive = identifier_ei(value.component(10))
            if comprehensive:
                identifiers.append(comprehensive)
        if identifiers:
            resource["identifier"] = identifiers
        resource["mode"] = "instance"
        if most_granular and description:
            resource["description"] = description
        resource["physicalType"] = {"coding": [{"system": PHYSICAL_TYPE, "code": kind}]}
        if parent:
            resource["partOf"] = {"reference": parent}
        if most_granular:
            resource.update({k: v for k, v in extra.items() if v})
        levels_key = "|".join(str(m) for m, _ in levels[last - position :])
        reference = ctx.builder.add_shared(
            resource, f"Location|PL|{value.raw}|{levels_key}|{extra_key if most_granular else ''}"
        )
        parent = reference
    # The whole hierarchy is known by the PL's raw text from now on.
    ctx.builder.add_alias(whole_key, reference)
    return reference


def location_hd(ctx: Context, value: Value | None, kind: str = "si") -> str:
    """Add the Location an HD names (HD[Location]: a site, e.g. EVN-7, XON.8)."""
    if not value or not (value.c(1) or value.c(2)):
        return ""
    resource: Json = {"resourceType": "Location"}
    if value.c(1):
        resource["name"] = value.c(1)
    if value.c(2):
        uri = universal_id(value.c(2), value.c(3))
        resource["identifier"] = [
            {"value": uri, "system": RFC_3986} if uri != value.c(2) else {"value": uri}
        ]
    resource["physicalType"] = {"coding": [{"system": PHYSICAL_TYPE, "code": kind}]}
    return ctx.builder.add_shared(resource, f"Location|HD|{value.raw}")


def location_name(ctx: Context, name: str, **extra: object) -> str:
    """Add a Location known by a name or code only (IS/ST fields such as PV1-39)."""
    if not name:
        return ""
    resource: Json = {"resourceType": "Location", "name": name}
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, f"Location|name|{name}|{sorted(extra)}")


# --- devices -----------------------------------------------------------------------------


def device_hd(ctx: Context, value: Value | None, **extra: object) -> str:
    """Add the Device an HD names (HD[Device]: a sending or receiving application)."""
    if not value or not (value.c(1) or value.c(2)):
        return ""
    identifiers: list[Json] = []
    if value.c(1):
        identifiers.append({"value": value.c(1)})
    if value.c(2):
        uri = universal_id(value.c(2), value.c(3))
        second: Json = {"value": uri}
        if uri != value.c(2):
            second["system"] = RFC_3986
        kind = universal_id_type(value.c(3))
        if kind:
            second["type"] = kind
        identifiers.append(second)
    resource: Json = {"resourceType": "Device", "identifier": identifiers}
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, f"Device|HD|{value.raw}")


def device_ei(ctx: Context, value: Value | None, **extra: object) -> str:
    """Add the Device an EI names (EI[Identifier-Extension] for PRT-10, OBX-18)."""
    ident = identifier_ei(value)
    if ident is None or value is None:
        return ""
    resource: Json = {"resourceType": "Device", "identifier": [ident]}
    resource.update({k: v for k, v in extra.items() if v})
    return ctx.builder.add_shared(resource, f"Device|EI|{value.raw}")


# --- related people ----------------------------------------------------------------------


def xcn_related_person(ctx: Context, value: Value | None) -> Json | None:
    """Return the identifier and name part of a RelatedPerson from an XCN (XCN[RelatedPerson])."""
    if not value:
        return None
    result: Json = {}
    ident = xcn_identifier(value)
    if ident is not None:
        result["identifier"] = [ident]
    name = xcn_name(value)
    if name is not None:
        result["name"] = [name]
    return result or None


__all__ = [
    "address",
    "assigner",
    "cnn_practitioner",
    "cwe_string",
    "device_ei",
    "device_hd",
    "identifier",
    "identifier_type",
    "location",
    "location_hd",
    "location_name",
    "organization_hd",
    "organization_name",
    "organization_xon",
    "practitioner",
    "practitioner_role",
    "telecom",
]
