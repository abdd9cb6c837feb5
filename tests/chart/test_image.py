"""The Dockerfile, checked without a Docker engine (there is none here).

What can be checked is checked: the build copies files that exist and that
.dockerignore lets through, the final stage is slim and non-root with the user
the chart expects, its entry point is the installed ``carebroker`` command and
its default command and every ``run --role ROLE`` parse, and the wheel that
``pip install .`` builds in the image carries the migrations and runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from broker.cli import build_parser
from broker.settings import ROLES, Settings
from tests.chart.conftest import dockerfile_stages, image_environment, load_yaml
from tests.conftest import REPO

COMPILERS = ("gcc", "g++", "build-essential", "clang", "rustc", "cargo")


def _final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def _exec_form(instruction: str) -> list[str]:
    (arguments,) = [a for i, a in _final_stage() if i == instruction]
    parsed: list[str] = json.loads(arguments)
    return parsed


def test_multi_stage_and_the_final_stage_has_no_build_tools() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build in one stage, copy the environment into a slim one"
    final = _final_stage()
    assert "slim" in final[0][1]
    run_lines = " ".join(a for i, a in final if i == "RUN")
    assert "pip install" not in run_lines and "apt-get install" not in run_lines
    assert not [c for c in COMPILERS if c in run_lines]
    copies = [a for i, a in final if i == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), "only the built venv"


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = [a for i, a in _final_stage() if i == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can check it"
    chart_pod = "runAsUser: " + uid
    helpers = (REPO / "charts" / "carebroker" / "templates" / "_helpers.tpl").read_text()
    assert chart_pod in helpers and f"runAsGroup: {gid}" in helpers


def test_entrypoint_is_the_installed_carebroker_command() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert _exec_form("ENTRYPOINT") == ["carebroker"]
    assert scripts["carebroker"] == "broker.cli:main"


def test_default_command_and_every_role_command_parse() -> None:
    parser = build_parser()
    default = parser.parse_args(_exec_form("CMD"))
    assert default.command == "run" and sorted(default.role) == sorted(ROLES)
    for role in ROLES:
        args = parser.parse_args(["run", "--role", role])
        assert args.role == [role] and callable(args.handler)
    assert parser.parse_args(["migrate"]).command == "migrate"


def test_image_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CAREBROKER_"):
            monkeypatch.delenv(name)
    for name, value in image_environment().items():
        if name.startswith("CAREBROKER_"):
            monkeypatch.setenv(name, value)
    settings = Settings.from_environment()
    assert settings.http_host == settings.mllp.host == "0.0.0.0"
    exposed = {int(p) for i, a in _final_stage() if i == "EXPOSE" for p in a.split()}
    defaults = load_yaml(REPO / "charts" / "carebroker" / "values.yaml")["settings"]
    assert exposed == {defaults["mllp"]["port"], defaults["http_port"]}


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch(path, p) or path == p or path.startswith(p.rstrip("/") + "/") for p in patterns
    )


def test_build_copies_what_exists_and_is_not_ignored() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for ignored in (".git", ".venv", "tests", ".carebroker"):
        assert _ignored(ignored, patterns), f".dockerignore should leave out {ignored}"
    build = dockerfile_stages()[0]
    sources = [
        part
        for instruction, arguments in build
        if instruction == "COPY"
        for part in arguments.split()[:-1]
        if not part.startswith("--")
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the build context"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in sources, f"the image would lack the {pattern} packages"


def test_the_wheel_the_image_installs_is_complete(image_site: Path) -> None:
    migrations = sorted(p.name for p in (REPO / "broker" / "store" / "migrations").glob("*.sql"))
    shipped = sorted(p.name for p in (image_site / "broker" / "store" / "migrations").glob("*.sql"))
    assert shipped == migrations
    (entry_points,) = image_site.glob("carebroker-*.dist-info/entry_points.txt")
    assert "carebroker = broker.cli:main" in entry_points.read_text()
    for package in ("broker", "adapters", "routing"):
        assert (image_site / package / "__init__.py").exists(), package


@pytest.mark.e2e
def test_the_installed_command_runs_from_the_wheel(image_site: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(image_site), "HOME": str(tmp_path)}
    where = subprocess.run(
        [sys.executable, "-c", "import broker.cli; print(broker.cli.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(image_site)), where.stdout
    helped = subprocess.run(
        [sys.executable, "-m", "broker", "run", "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "--role" in helped.stdout
