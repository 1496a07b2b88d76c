"""docker-compose.yml and docker/, checked without a Docker engine.

The compose-spec schema (check-jsonschema's vendored copy) catches malformed
keys; it does not check references, so this module does: services named in
depends_on, volumes, build contexts and Dockerfile targets, bind-mounted
paths, host ports, the scrape targets in prometheus.yml, the ECOMSTREAM_*
settings and the ``ecomstream`` commands the services run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ecomstream.config import Settings
from ecomstream.inference.settings import ScoringSettings
from ecomstream.launchers.kafka import KAFKA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LONG_RUNNING = {"kafka", "triton", "worker", "prometheus", "grafana"}


def _tool(name: str) -> str | None:
    """A console script of this virtualenv, else one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name)


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def _build(service: dict[str, Any]) -> tuple[Path, Path, str | None] | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = (REPO_ROOT / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile"), build.get("target")


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        mounts.append((source, target))
    return mounts


def _host_ports(service: dict[str, Any]) -> list[int]:
    ports = []
    for spec in service.get("ports", []):
        parts = str(spec).split("/")[0].split(":")
        if len(parts) >= 2:
            ports.append(int(parts[-2]))
    return ports


# --------------------------------------------------------------------------- schema


def test_compose_file_matches_the_compose_spec() -> None:
    tool = _tool("check-jsonschema")
    if tool is None:
        pytest.fail("check-jsonschema is not installed: it is a dev dependency (make setup)")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "Traceback" in result.stderr:  # the tool itself broke, e.g. against a newer click
        pytest.fail(f"check-jsonschema crashed, this is not a validation error:\n{result.stderr}")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian docker-compose absent")
def test_debian_docker_compose_accepts_it() -> None:
    """docker-compose 1.29 (no engine needed for `config`) rejects keys newer than it."""
    # A Debian (system python) tool: keep this virtualenv's python settings away from it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for profile in ([], ["--profile", "demo"]):
        result = subprocess.run(
            ["docker-compose", "-f", str(COMPOSE_FILE), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_keys_that_old_compose_rejects() -> None:
    assert "version" not in COMPOSE and "name" not in COMPOSE


# --------------------------------------------------------------------------- references


def test_depends_on_names_services_with_matching_checks() -> None:
    for name, service in SERVICES.items():
        for dep, condition in _depends_on(service).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            target = SERVICES[dep]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dep} healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dep} is one-shot: restart no"
            else:
                assert condition == "service_started", condition
            if "profiles" in target:
                assert set(service.get("profiles", [])) & set(target["profiles"]), (
                    f"{name} depends on {dep}, which only runs with profile {target['profiles']}"
                )


def test_start_order_has_no_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in _depends_on(SERVICES[name]):
            visit(dep, (*path, name))
        done.add(name)

    for name in SERVICES:
        visit(name, ())


def test_start_order_is_the_designed_one() -> None:
    assert _depends_on(SERVICES["worker"]) == {
        "kafka": "service_healthy",
        "triton": "service_healthy",
    }
    assert _depends_on(SERVICES["triton"]) == {"model-export": "service_completed_successfully"}
    assert SERVICES["simulator"]["profiles"] == ["demo"]


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in SERVICES.items():
        for source, _ in _mounts(service):
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
    assert declared == used, f"declared but unused: {declared - used}"


def test_bind_mounted_host_paths_exist() -> None:
    for name, service in SERVICES.items():
        for source, _ in _mounts(service):
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_build_contexts_dockerfiles_and_targets_exist() -> None:
    for name, service in SERVICES.items():
        build = _build(service)
        if build is None:
            assert "image" in service, f"{name} has neither build nor image"
            continue
        context, dockerfile, target = build
        assert context.is_dir(), f"{name}: no build context {context}"
        assert dockerfile.is_file(), f"{name}: no Dockerfile {dockerfile}"
        text = dockerfile.read_text()
        if target is not None:
            assert re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(target)}\s*$", text, re.M | re.I), (
                f"{name}: {dockerfile.name} has no stage {target}"
            )
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M):
            *sources, _ = shlex.split(line)
            for source in sources:
                if source.startswith("--"):
                    continue
                assert list(context.glob(source)) or "[" in source, (
                    f"{name}: COPY source {source} missing in {context}"
                )
        args = service["build"].get("args", {}) if isinstance(service["build"], dict) else {}
        for arg, value in args.items():
            default = re.search(rf"^ARG\s+{arg}=(\S+)", text, re.M)
            assert default is not None, f"{name}: build arg {arg} not declared in Dockerfile"
            assert default.group(1) == str(value), f"{name}: {arg} default differs from compose"


def test_host_ports_do_not_collide() -> None:
    ports = [port for service in SERVICES.values() for port in _host_ports(service)]
    assert len(ports) == len(set(ports)), ports


def test_worker_is_scalable() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker, "a fixed host port breaks --scale worker=N"
    assert [str(p) for p in worker["expose"]] == ["6066"]
    assert worker["environment"]["ECOMSTREAM_WEB_PORT"] == "6066"
    assert worker["environment"]["ECOMSTREAM_WEB_HOST"] == "0.0.0.0"
    for source, _ in _mounts(worker):
        assert source.startswith("."), "a named volume would be shared by all replicas"


def test_long_running_services_have_healthchecks() -> None:
    for name in LONG_RUNNING:
        assert "healthcheck" in SERVICES[name], name


def test_triton_reserves_a_gpu_and_serves_the_exported_models() -> None:
    triton = SERVICES["triton"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert "--model-repository=/models" in triton["command"]
    assert ("triton-models", "/models") in _mounts(triton)
    assert ("triton-models", "/models") in _mounts(SERVICES["model-export"])
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])


def test_prometheus_scrapes_compose_services_on_their_ports() -> None:
    mounts = dict(_mounts(SERVICES["prometheus"]))
    assert mounts["./prometheus"] == "/etc/prometheus"
    config = yaml.safe_load((REPO_ROOT / "prometheus" / "prometheus.yml").read_text())
    exposed = {
        "worker": {str(p) for p in SERVICES["worker"]["expose"]},
        "triton": {"8002"} if "--metrics-port=8002" in SERVICES["triton"]["command"] else set(),
    }
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                assert host in SERVICES, f"{job['job_name']}: {host} is not a service"
                assert str(sd["port"]) in exposed[host]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                if host == "localhost":
                    continue  # Prometheus itself
                assert host in SERVICES, f"{job['job_name']}: {host} is not a service"
                assert port in exposed[host], f"{target} is not a port {host} listens on"


# --------------------------------------------------------------------------- versions


def _image_tag(service: str) -> str:
    return str(SERVICES[service]["image"]).rsplit(":", 1)[1]


def test_kafka_image_is_the_launcher_release() -> None:
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_grafana_image_is_the_release_the_dashboards_are_validated_against() -> None:
    package = json.loads((REPO_ROOT / "tools" / "grafana-schema" / "package.json").read_text())
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana-oss:")
    assert _image_tag("grafana") == package["devDependencies"]["@grafana/schema"]


def test_prometheus_image_is_2x_like_the_promtool_that_tests_the_rules() -> None:
    assert _image_tag("prometheus").startswith("v2.")


# --------------------------------------------------------------------------- what runs


def test_environment_names_real_settings() -> None:
    fields = set(Settings.model_fields) | set(ScoringSettings.model_fields)
    for name, service in SERVICES.items():
        for key in service.get("environment", {}):
            if key.startswith("ECOMSTREAM_"):
                field = key.removeprefix("ECOMSTREAM_").lower()
                assert field in fields, f"{name}: {key} is not a setting"


def _ecomstream_commands(service: dict[str, Any]) -> list[list[str]]:
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        command = shlex.split(command)
    if command[:1] == ["sh"]:  # sh -ec SCRIPT: the ecomstream lines of the script
        script = command[-1].replace("\\\n", " ")
        found = []
        for line in script.splitlines():
            words = shlex.split(line)
            if "ecomstream" in words:
                found.append(words[words.index("ecomstream") :])
        return found
    return [command] if command[0] == "ecomstream" else []


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ecomstream_commands_parse(name: str) -> None:
    """Each `ecomstream ...` a service runs names real sub-commands and options."""
    from ecomstream.cli import main

    for argv in _ecomstream_commands(SERVICES[name]):
        command: click.Command = main
        args = argv[1:]
        while isinstance(command, click.Group) and args:
            sub = command.get_command(click.Context(command), args[0])
            path = " ".join(argv[: argv.index(args[0]) + 1])
            assert sub is not None, f"{name}: no command {path}"
            command, args = sub, args[1:]
        # Parses options and runs their callbacks (durations, ...) on a copy
        # whose paths need not exist (the container makes them at run time).
        command = copy.deepcopy(command)
        for param in command.params:
            if isinstance(param.type, click.Path):
                param.type = click.Path()
        try:
            command.make_context(argv[0], list(args), resilient_parsing=False)
        except click.UsageError as exc:
            pytest.fail(f"{name}: {' '.join(argv)}: {exc}")
