"""values.yaml mirrors broker/settings.py field for field, and its schema rejects typos.

Whoever adds a field to ``Settings`` (or to one of its nested models,
``ConsoleSettings``, ``FhirGatewaySettings``) is told here, by its dotted name,
to add it to ``charts/carebroker/values.yaml`` (with a comment) and
``values.schema.json``.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import helm_python
import pytest
from pydantic import BaseModel, SecretStr

from broker.settings import Settings, Variable, groups, variables
from tests.chart.conftest import CHART, flat_settings, load_yaml

VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
VARIABLES = {v.key: v for v in variables()}
GROUPS = groups()


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def _resolved(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``) of the values schema."""
    ref = node.get("$ref")
    if not ref:
        return node
    resolved: dict[str, Any] = _schema()["$defs"][ref.removeprefix("#/$defs/")]
    return resolved


def _settings_schema() -> dict[str, dict[str, Any]]:
    """The chart's schema of every setting, by dotted name, nested models' fields included."""
    top: dict[str, Any] = _schema()["$defs"]["settingsShape"]["properties"]
    flat: dict[str, dict[str, Any]] = {}
    for name, node in top.items():
        if name in GROUPS:
            for field, inner in _resolved(node)["properties"].items():
                flat[f"{name}.{field}"] = inner
        else:
            flat[name] = node
    return flat


def _model_schema(variable: Variable) -> dict[str, Any]:
    """The pydantic JSON schema of one field, in the model that declares it."""
    model: type[BaseModel] = Settings
    for part in variable.path[:-1]:
        model = groups(model)[part]
    properties: dict[str, Any] = model.model_json_schema()["properties"]
    return dict(properties[variable.path[-1]])


def _annotation_types(variable: Variable) -> set[type]:
    annotation = variable.field.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {a for a in typing.get_args(annotation) if a is not type(None)}
    return {annotation} if isinstance(annotation, type) else set()


def test_every_setting_has_a_value_in_the_chart() -> None:
    settings = flat_settings(load_yaml(VALUES)["settings"])
    missing = [name for name in VARIABLES if name not in settings]
    assert not missing, (
        f"Settings field(s) {', '.join(missing)} have no value under `settings:` in "
        f"{VALUES.relative_to(CHART.parent.parent)}: add each (null when unset) with a "
        "comment saying what it does, and its entry in values.schema.json"
    )
    unknown = [name for name in settings if name not in VARIABLES]
    assert not unknown, f"values.yaml settings not in broker/settings.py: {', '.join(unknown)}"


def test_the_mirror_test_sees_nested_fields() -> None:
    """Guard the guard: a console field dropped from the values is named as missing."""
    settings = load_yaml(VALUES)["settings"]
    del settings["console"]["cookie_secure"]
    assert "console.cookie_secure" not in flat_settings(settings)
    assert "console.cookie_secure" in VARIABLES and "fhir.base_url" in VARIABLES


def test_every_setting_is_documented_where_it_is_set() -> None:
    lines = VALUES.read_text().splitlines()
    start = lines.index("settings:")
    undocumented = []
    group = ""
    for number, line in enumerate(lines[start + 1 :], start + 1):
        if line and not line.startswith((" ", "#")):
            break  # the next top-level key
        key = line.strip().partition(":")[0]
        indent = len(line) - len(line.lstrip(" "))
        if indent == 2 and not line.lstrip().startswith("#"):
            group = key if key in GROUPS else ""
        name = key if indent == 2 else f"{group}.{key}" if group and indent == 4 else ""
        if name in VARIABLES and not lines[number - 1].strip().startswith("#"):
            undocumented.append(name)
    assert not undocumented, f"values.yaml settings without a comment above: {undocumented}"


def test_schema_names_every_setting_and_no_other() -> None:
    properties = _settings_schema()
    missing = sorted(set(VARIABLES) - set(properties))
    assert not missing, f"values.schema.json $defs.settingsShape lacks: {', '.join(missing)}"
    extra = sorted(set(properties) - set(VARIABLES))
    assert not extra, f"values.schema.json names settings that do not exist: {extra}"


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_schema_constraints_agree_with_the_settings_model(name: str) -> None:
    """The chart may be stricter than the model (port 0 means nothing in a pod), never looser."""
    variable = VARIABLES[name]
    model = _model_schema(variable)
    variants = [v for v in model.get("anyOf", [model]) if v.get("type") != "null"]
    model_bounds = variants[0] if variants else {}
    chart = _settings_schema()[name]
    if "enum" in model_bounds:
        chart_enum = [v for v in chart.get("enum", []) if v is not None]
        assert chart_enum == model_bounds["enum"], f"settings.{name}: enum differs from the model"
        assert (None in chart.get("enum", [])) == ("anyOf" in model), f"settings.{name}: null"
    if "minimum" in model_bounds:
        assert chart.get("minimum", -1) >= model_bounds["minimum"], f"settings.{name}: minimum"
    if "maximum" in model_bounds:
        assert chart.get("maximum", 1 << 62) <= model_bounds["maximum"], f"settings.{name}: max"
    if "exclusiveMinimum" in model_bounds:
        assert chart.get("exclusiveMinimum") == model_bounds["exclusiveMinimum"], name
    if SecretStr in _annotation_types(variable):
        # Secrets are referenced, never written into values: only a Secret reference fits.
        refs = [chart, *chart.get("oneOf", [])]
        assert any(r.get("$ref") == "#/$defs/secretRef" for r in refs), name
        assert "type" not in chart and "enum" not in chart, f"settings.{name} accepts a literal"


def test_defaults_satisfy_the_schema(chart: helm_python.Chart) -> None:
    chart.validate_schema({})


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"settings": {"kafka_partiton": 3}}, "kafka_partiton"),
        ({"roles": {"routr": {"replicas": 2}}}, "routr"),
        ({"roles": {"router": {"replica": 2}}}, "replica"),
        ({"roles": {"audit": {"autoscaling": {"enabled": True}}}}, "autoscaling"),
        ({"roles": {"console": {"settings": {"log_levl": "DEBUG"}}}}, "log_levl"),
        ({"settings": {"log_level": "LOUD"}}, "log_level"),
        ({"settings": {"database_url": "postgresql://app:secret@db/app"}}, "database_url"),
        ({"settings": {"pseudonym_key": {"secretName": "k"}}}, "missing property 'key'"),
        ({"settings": {"http_port": 0}}, "http_port"),
        ({"settings": {"console": {"cookie_secur": True}}}, "cookie_secur"),
        ({"settings": {"console": {"session_idle_timeout_s": 30}}}, "session_idle_timeout_s"),
        ({"settings": {"console": {"oidc_client_secret": "app:secret"}}}, "oidc_client_secret"),
        ({"settings": {"console": {"oidc_default_role": "root"}}}, "oidc_default_role"),
        ({"roles": {"fhir": {"settings": {"fhir": {"base_ur": "https://x"}}}}}, "base_ur"),
        ({"imagee": {"tag": "1"}}, "imagee"),
    ],
)
def test_schema_rejects_typos_and_literal_secrets(
    render: Any, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as failure:
        render(values)
    assert named in str(failure.value)
    assert "app:secret" not in str(failure.value), "the error must not echo a secret value"


def test_values_files_are_plain_yaml_helm_reads_the_same() -> None:
    """Helm's YAML reader and PyYAML agree on the values files (no surprise coercions)."""
    for path in (VALUES, CHART / "ci" / "production-values.yaml"):
        helm_view = helm_python.values_from_yaml(path.read_text())
        python_view = json.loads(json.dumps(load_yaml(path)))
        assert helm_view == python_view, path.name
