"""The chart renders, lints clean and validates against the Kubernetes API schema.

Two values sets: the defaults and ``ci/production-values.yaml`` (Strimzi Kafka
over SASL_SSL, CloudNativePG, MLLP over mutual TLS, autoscaling, Ingress,
ServiceMonitor). Beyond schema validity, the manifests must fit together: each
Service selects the pods it names, probes and Services use ports the container
declares, the environment parses back into the settings the values asked for.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
from pydantic import SecretStr

from broker.cli import build_parser
from broker.directory import load_directory
from broker.settings import ROLES, Settings, Variable, variables
from tests.chart.conftest import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    PRODUCTION_VALUES,
    PodStart,
    Rendered,
    flat_settings,
    load_yaml,
)

VALUE_SETS = {"defaults": None, "production": PRODUCTION_VALUES}
# Custom resources kubernetes-validate has no schema for; checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


def _values(which: str) -> dict[str, Any] | None:
    path = VALUE_SETS[which]
    return load_yaml(path) if path else None


@pytest.fixture(params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, render: Any) -> Rendered:
    result: Rendered = render(_values(request.param))
    return result


@pytest.mark.parametrize("which", sorted(VALUE_SETS))
def test_lints_clean(which: str) -> None:
    for kube_version in KUBE_VERSIONS:
        report = helm_python.lint(
            CHART, _values(which), strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}"
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not problems and not report["errors"], (problems, report["errors"])


def test_validates_against_the_kubernetes_api_schema(rendered: Rendered) -> None:
    for manifest in rendered.manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        for kube_version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {where}: {exc}")


def test_the_validator_does_reject_a_broken_manifest(render: Any) -> None:
    """Guard the guard: a misspelt field in a rendered Deployment must fail validation."""
    deployment = copy.deepcopy(render(None).deployments()["router"])
    deployment["spec"]["replcas"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)


def test_one_deployment_per_role_running_that_role(rendered: Rendered) -> None:
    deployments = rendered.deployments()
    assert sorted(deployments) == sorted(ROLES)
    parser = build_parser()
    for role, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["carebroker"]
        args = parser.parse_args(container["args"])
        assert (args.command, args.role) == ("run", [role])
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        for probe in ("startupProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
        # Liveness does not follow PostgreSQL/Kafka: a restart would not bring them back.
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["resources"]["requests"], role


def test_roles_can_be_switched_off(render: Any) -> None:
    rendered = render({"roles": {"fhir": {"enabled": False}, "console": {"enabled": False}}})
    assert sorted(rendered.deployments()) == sorted(set(ROLES) - {"fhir", "console"})
    services = {s["metadata"]["name"] for s in rendered.of_kind("Service")}
    assert "cb-carebroker-fhir" not in services and "cb-carebroker-mllp-tcp" in services


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_select_their_role_on_declared_ports(rendered: Rendered) -> None:
    pods = {
        role: (d["spec"]["template"]["metadata"]["labels"], d["spec"]["template"]["spec"])
        for role, d in rendered.deployments().items()
    }
    for service in rendered.of_kind("Service"):
        role = service["metadata"]["labels"]["app.kubernetes.io/component"]
        selector = service["spec"]["selector"]
        chosen = [r for r, (labels, _) in pods.items() if _selects(selector, labels)]
        assert chosen == [role], f"Service {service['metadata']['name']} selects {chosen}"
        declared = {p["name"] for p in pods[role][1]["containers"][0]["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, (service["metadata"]["name"], port)
    mllp = rendered.named("Service", "cb-carebroker-mllp-tcp")
    assert [p["name"] for p in mllp["spec"]["ports"]] == ["mllp"]


def test_disruption_budgets_cover_every_role(rendered: Rendered) -> None:
    deployments = rendered.deployments()
    budgets = rendered.of_kind("PodDisruptionBudget")
    covered = sorted(
        role
        for role, deployment in deployments.items()
        for budget in budgets
        if _selects(
            budget["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        )
    )
    assert covered == sorted(ROLES)


def test_container_environment_parses_into_the_settings_asked_for(
    rendered: Rendered, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each role's CAREBROKER_* environment, read by Settings, gives back the values' settings.

    This catches a misspelt variable name (nested ones included: carebroker refuses
    an unknown one at start), a number Helm prints in exponent form, a Secret that
    is passed where a file path is expected, and a file setting that points
    outside the volumes mounted.
    """
    which = request.node.callspec.params["rendered"]
    values = load_yaml(CHART / "values.yaml")
    if which == "production":
        values = _merged(values, load_yaml(PRODUCTION_VALUES))
    config_maps = {c["metadata"]["name"]: c["data"] for c in rendered.of_kind("ConfigMap")}
    secrets = _secrets_referenced(values)
    services = rendered.of_kind("Service")
    for role, deployment in rendered.deployments().items():
        expected = flat_settings(
            _merged(values["settings"], values["roles"][role].get("settings") or {})
        )
        pod = deployment["spec"]["template"]["spec"]
        start = PodStart(tmp_path / role, config_maps, secrets, services)
        settings = _settings_from(start.environment(pod, pod["containers"][0]))
        for variable in variables():
            name, wanted, got = variable.key, expected[variable.key], _value(settings, variable)
            if not _reaches(name, role):
                default = variable.field.get_default(call_default_factory=True)
                assert got == default, f"{role} gets {name}"
                continue
            if wanted is None:
                assert got == variable.field.default, f"{role}: {name}"
            elif name == "config":
                if wanted["directory"]:
                    assert got is not None
                    assert got.read_text() == wanted["directory"]
                    assert load_directory(got).partners, "the mounted directory loads"
                else:
                    assert got is None
            elif isinstance(wanted, dict):  # a Secret reference
                secret = secrets[wanted["secretName"]][wanted["key"]]
                if isinstance(got, SecretStr):
                    assert got.get_secret_value() == secret, f"{role}: {name}"
                else:  # a file setting: the path must lead to the Secret's content
                    assert got is not None and Path(got).read_text() == secret, f"{role}: {name}"
            elif isinstance(got, Path):
                assert str(got).endswith(wanted), f"{role}: {name}"
            else:
                assert got == wanted, f"{role}: {name} is {got!r}, values say {wanted!r}"


def _reaches(name: str, role: str) -> bool:
    """Whether a setting is passed to a role's pods (the chart's carebroker.settingReaches).

    The syslog client key stays with the audit role, and a nested model's settings
    (``mllp.*`` with its TLS private key, ``console.*``, ``fhir.*``) with the role
    of that name.
    """
    if name == "audit_syslog_key":
        return role == "audit"
    group, nested, _ = name.partition(".")
    if group == "mssante":  # the application mailbox: the delivery role sends and reads
        return role == "delivery"
    return not nested or group == role


def _value(settings: Settings, variable: Variable) -> Any:
    found: Any = settings
    for part in variable.path:
        found = getattr(found, part)
    return found


def test_role_settings_reach_their_role_only(render: Any) -> None:
    """The console's OIDC client secret is in the console pods' environment, nowhere else."""
    rendered = render(load_yaml(PRODUCTION_VALUES))
    for role, deployment in rendered.deployments().items():
        names = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        console = {n for n in names if n.startswith("CAREBROKER_CONSOLE__")}
        fhir = {n for n in names if n.startswith("CAREBROKER_FHIR__")}
        mssante = {n for n in names if n.startswith("CAREBROKER_MSSANTE__")}
        assert ("CAREBROKER_CONSOLE__OIDC_CLIENT_SECRET" in console) == (role == "console"), role
        assert bool(console) == (role == "console"), role
        assert bool(fhir) == (role == "fhir"), role
        # The mailbox's key and password: in the delivery pods, nowhere else.
        assert ("CAREBROKER_MSSANTE__KEY" in mssante) == (role == "delivery"), role
        assert bool(mssante) == (role == "delivery"), role


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _secrets_referenced(values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Invent the content of every Secret the settings refer to."""
    secrets: dict[str, dict[str, str]] = {}
    for name, value in flat_settings(values["settings"]).items():
        if isinstance(value, dict) and "secretName" in value:
            secrets.setdefault(value["secretName"], {})[value["key"]] = f"<{name}>"
    for credential in values.get("partnerCredentials", []):
        secrets.setdefault(credential["secretName"], {"token": "<partner>"})
    return secrets


def _settings_from(env: dict[str, str]) -> Settings:
    """Read ``env`` as carebroker does at start-up (unknown variable names refused)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CAREBROKER_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        return Settings.from_environment()
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def test_partner_directory_is_mounted_in_every_role_and_rolls_them(render: Any) -> None:
    values = load_yaml(PRODUCTION_VALUES)
    first = render(values)
    values["settings"]["config"]["directory"] += "routes: []\n"
    second = render(values)
    for role, deployment in first.deployments().items():
        before = deployment["spec"]["template"]["metadata"]["annotations"]
        after = second.deployments()[role]["spec"]["template"]["metadata"]["annotations"]
        assert before["checksum/partners"] != after["checksum/partners"], role
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert {"name": "partners", "configMap": {"name": "cb-carebroker-partners"}} in volumes


def test_an_existing_partner_config_map_is_mounted_not_created(render: Any) -> None:
    rendered = render({"settings": {"config": {"existingConfigMap": "region-partners"}}})
    assert rendered.of_kind("ConfigMap") == []
    pod = rendered.deployments()["router"]["spec"]["template"]["spec"]
    assert {"name": "partners", "configMap": {"name": "region-partners"}} in pod["volumes"]
    with pytest.raises(helm_python.HelmRenderError, match="not both"):
        render({"settings": {"config": {"existingConfigMap": "x", "directory": "partners: []"}}})


def test_secrets_are_referenced_never_created(rendered: Rendered) -> None:
    assert rendered.of_kind("Secret") == []
    assert not any("postgresql://" in text for text in rendered.files.values())


def test_partner_credentials_reach_delivery_only(render: Any) -> None:
    rendered = render(load_yaml(PRODUCTION_VALUES))
    for role, deployment in rendered.deployments().items():
        mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        paths = [m["mountPath"] for m in mounts if "partner-credentials" in m["mountPath"]]
        if role == "delivery":
            assert paths == [
                "/etc/carebroker/partner-credentials/chu-montpellier-client-cert",
                "/etc/carebroker/partner-credentials/msp-nord-fhir-token",
            ]
        else:
            assert paths == [], role


def test_migration_job_is_a_hook_that_runs_migrate(rendered: Rendered) -> None:
    (job,) = rendered.of_kind("Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert container["command"] == ["carebroker"] and args.command == "migrate"
    names = {e["name"] for e in container["env"]}
    assert "CAREBROKER_DATABASE_URL" in names
    # A pre-install hook runs before the chart's own ServiceAccount exists.
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]


def test_autoscalers_where_they_make_sense(render: Any) -> None:
    rendered = render(load_yaml(PRODUCTION_VALUES))
    scalers = {
        h["spec"]["scaleTargetRef"]["name"].removeprefix("cb-carebroker-"): h
        for h in rendered.of_kind("HorizontalPodAutoscaler")
    }
    assert sorted(scalers) == ["delivery", "mllp", "router"]
    router = scalers["router"]["spec"]
    assert router["maxReplicas"] == 24
    assert {m["type"] for m in router["metrics"]} == {"Resource", "External"}
    # The HPA owns the replica count of the Deployments it scales.
    assert "replicas" not in rendered.deployments()["router"]["spec"]
    assert rendered.deployments()["fhir"]["spec"]["replicas"] == 2


@pytest.mark.parametrize("role", ["router", "delivery"])
def test_more_consumers_than_partitions_is_refused(render: Any, role: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=f"roles.{role}: up to 13 instances"):
        render({"settings": {"kafka_partitions": 12}, "roles": {role: {"replicas": 13}}})
    scaled = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 20}}
    with pytest.raises(helm_python.HelmRenderError, match="kafka_partitions is 12"):
        render({"roles": {role: scaled}})


def test_ingress_reaches_the_http_services(render: Any) -> None:
    rendered = render(load_yaml(PRODUCTION_VALUES))
    (ingress,) = rendered.of_kind("Ingress")
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert [b["name"] for b in backends] == ["cb-carebroker-fhir", "cb-carebroker-console"]
    for backend in backends:
        ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        assert backend["port"]["name"] in ports
    with pytest.raises(helm_python.HelmRenderError, match="role fhir, which is not enabled"):
        render({"ingress": {"enabled": True}, "roles": {"fhir": {"enabled": False}}})


def test_network_policy_opens_the_declared_ports(rendered: Rendered) -> None:
    (policy,) = rendered.of_kind("NetworkPolicy")
    opened = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    declared = {
        port["name"]
        for d in rendered.deployments().values()
        for port in d["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert opened == declared == {"http", "metrics", "mllp"}
    (metrics_rule,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert {"podSelector": {}} in metrics_rule["from"], "only this namespace by default"


def test_service_monitor_scrapes_metrics_on_every_role(render: Any) -> None:
    rendered = render(load_yaml(PRODUCTION_VALUES))
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    # The metrics listener: /metrics is not served to the world on the HTTP port.
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "metrics"
    scraped = [
        s["metadata"]["labels"]["app.kubernetes.io/component"]
        for s in rendered.of_kind("Service")
        if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert sorted(scraped) == sorted(ROLES)
    for service in rendered.of_kind("Service"):
        if service["metadata"]["name"] != "cb-carebroker-mllp-tcp":
            assert [p["name"] for p in service["spec"]["ports"]] == ["http", "metrics"]
    assert render(None).of_kind("ServiceMonitor") == []


def test_readme_deployment_section_names_what_the_chart_renders(render: Any) -> None:
    """The commands the README gives name Deployments a release called carebroker has."""
    readme = (CHART.parent.parent / "README.md").read_text()
    section = readme[readme.index("## Deploying on Kubernetes") :]
    section = section[: section.index("\n## ", 1)]
    deployments = {d["metadata"]["name"] for d in render(None, "carebroker").of_kind("Deployment")}
    named = set(re.findall(r"deployment/(carebroker-[a-z]+)", section))
    loop = re.search(r"for role in ([a-z ]+); do", section)
    assert loop, "the upgrade loop over roles"
    named |= {f"carebroker-{role}" for role in loop.group(1).split()}
    assert named and named <= deployments, named - deployments
    sizing = section[section.index("### Sizing") : section.index("### Upgrades")]
    assert sorted(re.findall(r"^\| ([a-z]+) \|", sizing, re.MULTILINE)[1:]) == sorted(ROLES)


def test_pods_carry_no_service_variables(render: Any, tmp_path: Path) -> None:
    """No CAREBROKER_<SERVICE>_PORT=tcp://... beside the settings, and none would stop a pod.

    With the README's release name the Services are carebroker-mllp, carebroker-console
    ...: with service links on, the kubelet would add CAREBROKER_MLLP_PORT=tcp://...
    and the like to every pod of the namespace.
    """
    rendered = render(None, "carebroker")
    pods = [d["spec"]["template"]["spec"] for d in rendered.deployments().values()]
    pods += [j["spec"]["template"]["spec"] for j in rendered.of_kind("Job")]
    assert all(pod["enableServiceLinks"] is False for pod in pods)

    # Manifests of one's own may leave them on: carebroker tells them from settings.
    pod = {**rendered.deployments()["console"]["spec"]["template"]["spec"]}
    pod["enableServiceLinks"] = True
    secrets = {"carebroker-db-app": {"uri": "postgresql://app@db/app"}}
    start = PodStart(tmp_path, {}, secrets, rendered.of_kind("Service"))
    linked = start.environment(pod, pod["containers"][0])
    assert linked["CAREBROKER_MLLP_TCP_PORT"].startswith("tcp://10.96.")
    assert linked["CAREBROKER_CONSOLE_SERVICE_PORT_HTTP"] == "8080"
    assert _settings_from(linked).http_port == 8080


def test_the_files_role_mounts_its_drop_volume_where_its_settings_say(render: Any) -> None:
    claim = {"persistentVolumeClaim": {"claimName": "lab-drop"}}
    rendered = render(
        {
            "settings": {"files": {"directory": "/srv/lab-drop"}},
            "roles": {"files": {"dropVolume": claim}},
        }
    )
    deployments = rendered.deployments()
    pod = deployments["files"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "drop"]
    assert volume == {"name": "drop", **claim}
    assert {"name": "drop", "mountPath": "/srv/lab-drop"} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CAREBROKER_FILES__DIRECTORY"] == "/srv/lab-drop"
    for role, deployment in deployments.items():  # only the files pods get the drop
        if role != "files":
            other = deployment["spec"]["template"]["spec"]["containers"][0]
            assert all(e["name"] != "CAREBROKER_FILES__DIRECTORY" for e in other["env"])
            assert all(
                v["name"] != "drop" for v in deployment["spec"]["template"]["spec"]["volumes"]
            )
    with pytest.raises(helm_python.HelmRenderError, match=r"needs roles\.files\.dropVolume"):
        render({"settings": {"files": {"directory": "/srv/lab-drop"}}})
