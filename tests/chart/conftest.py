"""Render the Helm chart with the real Helm library, and stand in for the kubelet.

``render`` goes through ``helm_python`` (Helm's own Go engine, no ``helm``
binary, no cluster): the same templates, schema validation and value merging
as ``helm install``. ``PodStart`` does what a kubelet does before a container
starts (writes its ConfigMap and Secret volumes, resolves its environment) so
a rendered Deployment can be started here as the ``carebroker`` command.
"""

from __future__ import annotations

import shlex
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from broker.settings import groups
from tests.conftest import REPO
from tests.e2e.conftest import carebroker  # noqa: F401 - the fixture, for the role-start test

CHART = REPO / "charts" / "carebroker"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
DOCKERFILE = REPO / "Dockerfile"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
# kubernetes-validate knows.
KUBE_VERSIONS = ("1.29.0", "1.37.0")
RELEASE = "cb"
NAMESPACE = "care"


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Values' ``settings`` by dotted name (``console.cookie_secure``), as ``Variable.key``.

    Nested models (``console``, ``fhir``) are opened; other maps (Secret
    references, the partner directory) are values.
    """
    nested = groups()
    flat: dict[str, Any] = {}
    for name, value in settings.items():
        if name in nested and isinstance(value, dict):
            flat.update({f"{name}.{field}": inner for field, inner in value.items()})
        else:
            flat[name] = value
    return flat


@dataclass
class Rendered:
    """The manifests one ``helm install`` would apply, parsed."""

    files: dict[str, str]
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
        return found[0]

    def deployments(self) -> dict[str, dict[str, Any]]:
        """Deployments by role (the app.kubernetes.io/component label)."""
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in self.of_kind("Deployment")
        }


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> Iterator[Any]:
    """Return ``render(values, release) -> Rendered``; Helm errors propagate."""
    with helm_python.Config(namespace=NAMESPACE) as config:

        def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> Rendered:
            files = config.render(chart, values, name=release, namespace=NAMESPACE, is_install=True)
            manifests = [
                doc
                for name, text in sorted(files.items())
                if name.endswith(".yaml")
                for doc in yaml.safe_load_all(text)
                if doc
            ]
            return Rendered(files, manifests)

        yield render


# --- the image -------------------------------------------------------------------


def dockerfile_stages(path: Path = DOCKERFILE) -> list[list[tuple[str, str]]]:
    """Return the Dockerfile's stages, each a list of (INSTRUCTION, arguments)."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        instruction, _, arguments = logical.partition(" ")
        logical = ""
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def image_environment() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_stages()[-1]:
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="session")
def image_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel the image installs (``pip install .``) and unpack it.

    Running from this tree rather than the editable checkout shows that what the
    image would hold (package data such as migrations included) is complete.
    """
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("carebroker-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


# --- the kubelet's part ----------------------------------------------------------


@dataclass
class PodStart:
    """Lay out one container's volumes under ``root`` and resolve its environment.

    ``config_maps`` are the rendered ConfigMaps; ``secrets`` stand for the Secrets
    an operator created (name -> key -> value). A reference to anything missing
    fails, as the pod would not start. ``services`` are the namespace's Services,
    whose variables the kubelet adds unless the pod sets ``enableServiceLinks:
    false`` (a Service ``carebroker-mllp`` gives ``CAREBROKER_MLLP_PORT=tcp://...``).
    """

    root: Path
    config_maps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]
    services: list[dict[str, Any]] = field(default_factory=list)

    def environment(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """Return the container's environment with mount paths moved under ``root``."""
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounted: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            target = self.root / mount["name"]
            self._materialise(volumes[mount["name"]], target)
            mounted[mount["mountPath"]] = target
        # The container's own variables win over the Services' (as in the kubelet).
        env: dict[str, str] = (
            self.service_links() if pod.get("enableServiceLinks", True) is not False else {}
        )
        for var in container.get("env", []):
            if "value" in var:
                value = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref["name"] in self.secrets, f"{var['name']}: no Secret {ref['name']}"
                value = self.secrets[ref["name"]][ref["key"]]
            env[var["name"]] = self._relocate(value, mounted)
        return env

    def service_links(self) -> dict[str, str]:
        """Return the variables the kubelet derives from the Services (docker-link style)."""
        env: dict[str, str] = {}
        for number, service in enumerate(self.services, 1):
            name = service["metadata"]["name"].upper().replace("-", "_")
            address = f"10.96.0.{number}"
            ports = service["spec"]["ports"]
            env[f"{name}_SERVICE_HOST"] = address
            env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
            first = f"{ports[0].get('protocol', 'TCP').lower()}://{address}:{ports[0]['port']}"
            env[f"{name}_PORT"] = first
            for port in ports:
                protocol = port.get("protocol", "TCP")
                if "name" in port:
                    env[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(
                        port["port"]
                    )
                link = f"{name}_PORT_{port['port']}_{protocol}"
                env[link] = f"{protocol.lower()}://{address}:{port['port']}"
                env[f"{link}_PROTO"] = protocol.lower()
                env[f"{link}_PORT"] = str(port["port"])
                env[f"{link}_ADDR"] = address
        return env

    def _materialise(self, volume: dict[str, Any], target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            assert name in self.config_maps, f"volume {volume['name']}: no ConfigMap {name}"
            data, items = self.config_maps[name], volume["configMap"].get("items")
        else:
            name = volume["secret"]["secretName"]
            assert name in self.secrets, f"volume {volume['name']}: no Secret {name}"
            data, items = self.secrets[name], volume["secret"].get("items")
        for item in items or [{"key": k, "path": k} for k in data]:
            assert item["key"] in data, f"volume {volume['name']}: {name} has no {item['key']}"
            (target / item["path"]).write_text(data[item["key"]])

    @staticmethod
    def _relocate(value: str, mounted: dict[str, Path]) -> str:
        for path, target in mounted.items():
            if value == path or value.startswith(path + "/"):
                return str(target) + value[len(path) :]
        return value
