"""values.yaml mirrors broker/settings.py field for field, and its schema rejects typos.

Whoever adds a field to ``Settings`` is told here, by name, to add it to
``charts/carebroker/values.yaml`` (with a comment) and ``values.schema.json``.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import helm_python
import pytest
from pydantic import SecretStr

from broker.settings import Settings
from tests.chart.conftest import CHART, load_yaml

VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
FIELDS = Settings.model_fields


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def _settings_schema() -> dict[str, Any]:
    properties: dict[str, Any] = _schema()["$defs"]["settingsShape"]["properties"]
    return properties


def _annotation_types(name: str) -> set[type]:
    annotation = FIELDS[name].annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {a for a in typing.get_args(annotation) if a is not type(None)}
    return {annotation} if isinstance(annotation, type) else set()


def test_every_setting_has_a_value_in_the_chart() -> None:
    settings = load_yaml(VALUES)["settings"]
    missing = [name for name in FIELDS if name not in settings]
    assert not missing, (
        f"Settings field(s) {', '.join(missing)} have no value under `settings:` in "
        f"{VALUES.relative_to(CHART.parent.parent)}: add each (null when unset) with a "
        "comment saying what it does, and its entry in values.schema.json"
    )
    unknown = [name for name in settings if name not in FIELDS]
    assert not unknown, f"values.yaml settings not in broker/settings.py: {', '.join(unknown)}"


def test_every_setting_is_documented_where_it_is_set() -> None:
    lines = VALUES.read_text().splitlines()
    start = lines.index("settings:")
    undocumented = []
    for number, line in enumerate(lines[start + 1 :], start + 1):
        if line and not line.startswith((" ", "#")):
            break  # the next top-level key
        key = line.strip().partition(":")[0]
        at_setting_level = line.startswith("  ") and not line.startswith("   ")
        if at_setting_level and key in FIELDS and not lines[number - 1].strip().startswith("#"):
            undocumented.append(key)
    assert not undocumented, f"values.yaml settings without a comment above: {undocumented}"


def test_schema_names_every_setting_and_no_other() -> None:
    properties = _settings_schema()
    missing = sorted(set(FIELDS) - set(properties))
    assert not missing, f"values.schema.json $defs.settingsShape lacks: {', '.join(missing)}"
    extra = sorted(set(properties) - set(FIELDS))
    assert not extra, f"values.schema.json names settings that do not exist: {extra}"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_schema_constraints_agree_with_the_settings_model(name: str) -> None:
    """The chart may be stricter than the model (port 0 means nothing in a pod), never looser."""
    model = Settings.model_json_schema()["properties"][name]
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
    if SecretStr in _annotation_types(name):
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
