"""deploy/, checked offline (no container engine, no cluster, no kustomize binary here):

- the kustomize overlays rendered (a renderer for the subset of kustomize the files use;
  any other key fails the test) and every object validated against the Kubernetes schemas
  (kubernetes-validate, strict: unknown fields are errors), then the wiring between them;
- the Envoy front-proxy config parsed against Envoy's API types (envoy-data-plane, which
  refuses unknown fields, bad enums and durations) and its retry rule checked against the
  operation table: retries on UNAVAILABLE for idempotent RPCs only;
- the Dockerfile's commands run outside a container: the build stage's RUN installs this
  tree into a fresh virtualenv (offline: dependencies come from the test's own
  environment), then the runtime stage's ENTRYPOINT and CMD start the gateway with the
  ConfigMap's config and its HEALTHCHECK command reports SERVING.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sysconfig
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import Config
from gateway.operations import OPERATIONS
from gateway.supervisor import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
#: The oldest Kubernetes release the manifests must be valid for (lifecycle sleep: 1.30+).
K8S_VERSION = "1.31"
OVERLAYS = ["base", "overlays/production"]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
#: envoy-data-plane's own models use a pydantic idiom pydantic now deprecates: not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using `@model_validator`:DeprecationWarning")

# -- a renderer for the kustomize subset used here -------------------------------------------

_KUSTOMIZATION_KEYS = {
    "apiVersion", "kind", "namespace", "resources", "images", "configMapGenerator",
    "generatorOptions", "patches",
}  # fmt: skip


def render(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build directory`, for the features deploy/kubernetes uses."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _KUSTOMIZATION_KEYS
    assert not unknown, f"{directory}: kustomize features this renderer lacks: {unknown}"
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in spec.get("configMapGenerator", []):
        assert set(generator) <= {"name", "files", "behavior"}, generator
        data = {Path(f).name: (directory / f).read_text() for f in generator["files"]}
        made = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}}
        made["data"] = data
        existing = _find(objects, "ConfigMap", generator["name"])
        if generator.get("behavior", "create") == "replace":
            assert existing is not None, f"nothing to replace: {generator['name']}"
            objects[objects.index(existing)] = made
        else:
            assert existing is None, f"generated twice: {generator['name']}"
            objects.append(made)
    if "generatorOptions" in spec:
        assert spec["generatorOptions"] == {"disableNameSuffixHash": True}
    for patch in spec.get("patches", []):
        assert set(patch) == {"path"}, patch
        change = yaml.safe_load((directory / patch["path"]).read_text())
        target = _find(objects, change["kind"], change["metadata"]["name"])
        assert target is not None, f"patch target missing: {patch}"
        _merge(target, change)
    for image in spec.get("images", []):
        for container in _containers(objects):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def _merge(target: dict[str, Any], change: dict[str, Any]) -> None:
    """A strategic merge patch: maps merge, lists of named items merge by name."""
    for key, value in change.items():
        old = target.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            _merge(old, value)
        elif isinstance(value, list) and isinstance(old, list) and _named(value + old):
            by_name = {item["name"]: item for item in old}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    old.append(item)
        else:
            target[key] = value


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def _containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield from obj["spec"]["template"]["spec"]["containers"]


def one(objects: list[dict[str, Any]], kind: str, name: str = "mlgw") -> dict[str, Any]:
    found = _find(objects, kind, name)
    assert found is not None, f"no {kind} {name}"
    return found


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(KUBERNETES / request.param)


# -- Kubernetes ------------------------------------------------------------------------------


def test_every_object_is_valid_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    kinds = {obj["kind"] for obj in rendered}
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    expected |= {"ConfigMap", "ServiceAccount", "NetworkPolicy"}
    assert expected <= kinds
    for obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_validator_catches_a_wrong_manifest() -> None:
    deployment = copy.deepcopy(one(render(KUBERNETES / "base"), "Deployment"))
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment["spec"]["replicas"] = 3
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def gateway_config(objects: list[dict[str, Any]]) -> Config:
    text = one(objects, "ConfigMap", "mlgw-config")["data"]["gateway.toml"]
    return Config.from_dict(tomllib.loads(text))


def test_the_deployment_drains_and_probes_through_grpc_health(
    rendered: list[dict[str, Any]],
) -> None:
    config = gateway_config(rendered)  # the gateway's own schema accepts the ConfigMap
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = config.server.port
    assert {"name": "grpc", "containerPort": port} in container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": port}, probe
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # SIGKILL must not cut the drain short: preStop, then the server's grace, then exit.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + config.server.grace_seconds + 2
    assert container["resources"]["requests"]["cpu"] == str(config.server.workers)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_user()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert container["args"] == ["--config", "/etc/mlgw/gateway.toml"]


def test_config_and_secrets_are_wired(rendered: list[dict[str, Any]]) -> None:
    config = gateway_config(rendered)
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes[mounts["/etc/mlgw/gateway.toml"]["name"]]["configMap"]["name"] == "mlgw-config"
    # Every file the config names is on a mounted Secret (never in the ConfigMap itself).
    for path in (config.redis.password_file, config.redis.tls_ca_file):
        if path:
            mount = next(m for p, m in mounts.items() if path.startswith(p + "/"))
            assert "secret" in volumes[mount["name"]], path
    assert "password" not in config.redis.url.split("@")[0]
    account = one(rendered, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role)
    env = {e["name"] for e in container["env"]}
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & env  # the role, never keys


def test_services_autoscaler_budget_and_policy_select_the_pods(
    rendered: list[dict[str, Any]],
) -> None:
    deployment = one(rendered, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    headless, cluster_ip = one(rendered, "Service", "mlgw-headless"), one(rendered, "Service")
    assert headless["spec"]["clusterIP"] == "None"
    assert cluster_ip["spec"]["type"] == "ClusterIP"
    for service in (headless, cluster_ip):
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "grpc"
    hpa = one(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    assert hpa["spec"]["minReplicas"] >= 2  # a replica lost still leaves one
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = one(rendered, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert gateway_config(rendered).server.port in ingress_ports


def test_production_pins_a_released_image_in_its_namespace() -> None:
    objects = render(KUBERNETES / "overlays/production")
    (container,) = _containers(objects)
    name, _, tag = container["image"].rpartition(":")
    assert name.endswith("/mlgw")
    assert tag not in ("", "latest")
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {
        "mlgw"
    }
    config = gateway_config(objects)
    assert config.redis.url.startswith("rediss://")
    assert config.limits.replicas == one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]


# -- Envoy -----------------------------------------------------------------------------------


def _type_urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "@type" in node:
            yield node["@type"]
        for value in node.values():
            yield from _type_urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _type_urls(value)


def envoy_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())
    return loaded


def test_the_envoy_config_parses_against_envoys_api() -> None:
    data = envoy_config()
    for url in set(_type_urls(data)):  # register each typed_config's message type
        package = url.removeprefix("type.googleapis.com/").rsplit(".", 1)[0]
        importlib.import_module(f"envoy_data_plane.{package}")
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bootstrap = Bootstrap.from_dict(data)
    deprecated = [str(w.message) for w in caught if "is deprecated" in str(w.message)]
    assert not deprecated  # fields Envoy is removing
    (cluster,) = bootstrap.static_resources.clusters
    options = cluster.typed_extension_protocol_options
    assert list(options) == ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    (check,) = cluster.health_checks
    assert check.grpc_health_check is not None
    with pytest.raises((KeyError, ValueError)):  # the parser is strict: a typo fails
        Bootstrap.from_dict({**data, "static_resourcez": {}})


def test_envoy_retries_unavailable_for_idempotent_rpcs_only() -> None:
    hcm = envoy_config()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    (host,) = hcm["typed_config"]["route_config"]["virtual_hosts"]
    for op in OPERATIONS:
        route = next(r for r in host["routes"] if _matches(r["match"], op.full_method))
        retry = route["route"].get("retry_policy")
        assert (retry is not None) == op.idempotent, op.name
        if retry is not None:
            assert retry["retry_on"] == "unavailable", op.name
    assert _matches(host["routes"][-1]["match"], "/mlgw.jobs.v1.JobsService/SubmitJob")
    assert "retry_policy" not in host["routes"][-1]["route"]  # new RPCs: never retried


def _matches(match: dict[str, Any], path: str) -> bool:
    if "safe_regex" in match:
        return re.fullmatch(match["safe_regex"]["regex"], path) is not None
    return path.startswith(match["prefix"])


# -- the container image ---------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuations joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def dockerfile_user() -> int:
    users = [args for word, args in dockerfile() if word == "USER"]
    return int(users[-1].split(":")[0])


def test_the_image_is_multi_stage_slim_pinned_and_non_root() -> None:
    steps = dockerfile()
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    bases = [a.split()[0].replace("${BASE}", args.get("BASE", "")) for w, a in steps if w == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert dockerfile_user() != 0
    (healthcheck,) = [a for w, a in steps if w == "HEALTHCHECK"]
    assert "healthcheck.py" in healthcheck
    for word, arguments in steps:
        if word == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), source


class ImageRun:
    """Runs the Dockerfile's instructions in a directory standing for the image's root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workdir = "/"
        site = sysconfig.get_paths()["purelib"]
        # Offline: pip may not download, so dependencies come from this environment's
        # site-packages (on PYTHONPATH, which skips its .pth files: this tree's editable
        # install is not visible, only what the image's commands install).
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "PYTHONPATH": site,
            "PIP_NO_INDEX": "1",
            "PIP_NO_DEPS": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
        }
        self.entrypoint: list[str] = []
        self.cmd: list[str] = []
        self.healthcheck: list[str] = []

    def path(self, container_path: str) -> Path:
        if not container_path.startswith("/"):
            container_path = f"{self.workdir.rstrip('/')}/{container_path}"
        return self.root / container_path.lstrip("/")

    def rooted(self, command: str) -> str:
        return re.sub(r"(?<![\w./-])/(opt|src|etc)\b", lambda m: f"{self.root}/{m[1]}", command)

    def step(self, word: str, arguments: str) -> None:
        if word == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                value = value.replace("$PATH", self.env["PATH"])
                self.env[name] = self.rooted(value)
        elif word == "WORKDIR":
            self.workdir = arguments
            self.path(arguments).mkdir(parents=True, exist_ok=True)
        elif word == "COPY" and not arguments.startswith("--from"):
            *sources, dest = arguments.split()
            for source in sources:
                target = self.path(dest)
                if (ROOT / source).is_dir():  # a directory's contents, as COPY does
                    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info")
                    shutil.copytree(ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
                else:
                    if dest.endswith("/"):
                        target = target / Path(source).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, target)
        elif word == "RUN" and not arguments.startswith("useradd"):  # no users outside
            command = self.rooted(arguments)
            subprocess.run(
                ["bash", "-c", command], cwd=self.path(self.workdir), env=self.env, check=True,
                capture_output=True, timeout=300,
            )  # fmt: skip
        elif word in ("ENTRYPOINT", "CMD"):
            setattr(self, word.lower(), json.loads(arguments))
        elif word == "HEALTHCHECK":
            self.healthcheck = json.loads(arguments.split(" CMD ", 1)[1])


def test_the_image_commands_build_a_gateway_that_serves(tmp_path: Path) -> None:
    image = ImageRun(tmp_path)
    for word, arguments in dockerfile():
        image.step(word, arguments)
    config = tmp_path / "gateway.toml"  # the ConfigMap's file, mounted at the CMD's path
    config.write_text(
        one(render(KUBERNETES / "base"), "ConfigMap", "mlgw-config")["data"]["gateway.toml"]
    )
    port = free_port()
    cmd = [str(config) if arg == "/etc/mlgw/gateway.toml" else arg for arg in image.cmd]
    command = [
        *image.entrypoint,
        *cmd,
        "--port",
        str(port),
        "--workers",
        "1",
        "--metrics-port",
        "0",
    ]
    env = {
        **image.env,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
    }
    binary = Path(image.env["PATH"].split(":")[0]) / command[0]
    assert binary.is_relative_to(tmp_path)  # the installed entry point, not this tree's
    server = subprocess.Popen(
        [str(binary), *command[1:]],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        check = [
            str(binary.parent / "python")
            if image.healthcheck[0] == "python"
            else image.healthcheck[0]
        ]
        check += [image.rooted(a) for a in image.healthcheck[1:-1]] + [f"127.0.0.1:{port}"]
        healthy = False
        for _ in range(300):
            if server.poll() is not None:
                break
            if subprocess.run(check, env=env, capture_output=True, timeout=10).returncode == 0:
                healthy = True
                break
        assert healthy, server.stdout.read().decode() if server.stdout else ""
        origin = subprocess.run(
            [str(binary.parent / "python"), "-c", "import gateway; print(gateway.__file__)"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert Path(origin.strip()).is_relative_to(tmp_path)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0  # drained and exited cleanly
