"""deploy/: the Kubernetes manifests validate against the schemas of a current Kubernetes
(shipped inside ``kubernetes-validate``: no network), the compose file and the Container
Apps YAML say what deploy/README.md says, and every config they carry is a valid one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scalerd.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# the oldest Kubernetes minor still supported upstream when this was written, and the
# newest whose schemas the package ships
VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in _documents(path):
            found[document["kind"]] = document
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", sorted(KUBERNETES.glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifest_validates_strictly(path: Path, version: str) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    """The check can fail: a typo'd field and a missing required one are caught."""
    deployment = _manifests()["Deployment"]
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, VERSIONS[-1], strict=True)
    headless = {
        **deployment,
        "spec": {k: v for k, v in deployment["spec"].items() if k != "selector"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(headless, VERSIONS[-1], strict=True)


def test_kubernetes_set_is_complete_and_hardened(tmp_path: Path) -> None:
    manifests = _manifests()
    assert set(manifests) == {
        *("ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget"),
        *("Role", "RoleBinding", "Service", "ServiceAccount"),
    }
    deployment = manifests["Deployment"]["spec"]
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["replicas"] == 2
    account = manifests["ServiceAccount"]["metadata"]["name"]
    assert pod["serviceAccountName"] == account
    # the kubernetes actuator's in-cluster auth needs the token mounted, and its Role bound
    assert pod["automountServiceAccountToken"] is True
    binding = manifests["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": manifests["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "default"}
    ]
    egress_ports = {
        p["port"] for rule in manifests["NetworkPolicy"]["spec"]["egress"] for p in rule["ports"]
    }
    assert {443, 6443} <= egress_ports  # the API server, behind its service or not
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/scalerd"]["readOnly"] is True and "/var/lib/scalerd" in mounts
    labels = deployment["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        spec = manifests[kind]["spec"]
        selector = spec.get("selector") or spec.get("podSelector")
        chosen = selector.get("matchLabels", selector)
        assert chosen.items() <= labels.items(), kind
    # the ConfigMap's config.toml is a config scalerd accepts, and fits the pod
    config_file = tmp_path / "config.toml"
    config_file.write_text(manifests["ConfigMap"]["data"]["config.toml"])
    config = load_config(config_file)
    assert config.daemon.listen == "0.0.0.0:8080"
    secret_envs = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {config.daemon.control_token_env, config.redis.password_env} <= secret_envs  # type: ignore[union-attr]
    assert config.audit.spool.startswith("/var/lib/scalerd/")
    # the state is in Redis, so [cluster] is on and the two replicas share the targets
    assert config.state.store == "redis" and config.cluster.name == "scalerd"


def test_compose_parses_and_names_only_images_that_exist(tmp_path: Path) -> None:
    """No registry is reachable here, so "exists" means: the official Redis image at a
    released tag, and the image built from this repository's Dockerfile."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "scalerd"}
    assert re.fullmatch(r"redis:\d+\.\d+(-alpine|-bookworm)?", services["redis"]["image"])
    scalerd = services["scalerd"]
    context = (DEPLOY / scalerd["build"]["context"]).resolve()
    assert context == ROOT and (context / scalerd["build"]["dockerfile"]).is_file()
    # every bind mount exists; the config the command names is one of them
    binds = {}
    for volume in scalerd["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            assert (DEPLOY / source).exists(), source
            binds[target] = DEPLOY / source
        else:
            assert source in compose["volumes"], source
    command = scalerd["command"]
    config_path = command[command.index("--config") + 1]
    assert config_path in binds and config_path.startswith("/var/lib/scalerd/")
    assert command[command.index("--listen") + 1] == "0.0.0.0:8080"
    assert scalerd["depends_on"]["redis"]["condition"] == "service_healthy"
    # the URL the environment gives replaces the example's (url_env), and names the service
    url = scalerd["environment"]["SCALERD_REDIS_URL"]
    assert url.startswith("redis://redis:")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCALERD_REDIS_URL", url)
        config = load_config(binds[config_path])
    assert config.redis is not None and config.redis.url == url


def test_dockerfile_base_images_are_official_python() -> None:
    bases = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim-bookworm", base) for base in bases)


def test_container_apps_yaml_and_bicep_agree() -> None:
    (app,) = _documents(DEPLOY / "containerapps" / "scalerd.yaml")
    bicep = (DEPLOY / "containerapps" / "scalerd.bicep").read_text()
    template = app["properties"]["template"]
    (container,) = template["containers"]
    assert app["identity"]["type"] == "UserAssigned"
    assert template["scale"] == {"minReplicas": 2, "maxReplicas": 2}
    assert "param replicas int = 2" in bicep
    probes = {probe["type"]: probe["httpGet"]["path"] for probe in container["probes"]}
    assert probes == {"Startup": "/healthz", "Liveness": "/healthz", "Readiness": "/readyz"}
    for kind, path in probes.items():
        assert re.search(rf"type: '{kind}', httpGet: {{ path: '{path}', port: 8080 }}", bicep)
    secrets = {secret["name"] for secret in app["properties"]["configuration"]["secrets"]}
    env = {e["name"]: e.get("secretRef") for e in container["env"]}
    for name in ("SCALERD_REDIS_URL", "SCALERD_REDIS_PASSWORD", "SCALERD_CONTROL_TOKEN"):
        assert env[name] in secrets, name
        assert f"{{ name: '{name}', secretRef: '{env[name]}' }}" in bicep
    (config_volume,) = [v for v in template["volumes"] if v["name"] == "config"]
    assert config_volume["storageType"] == "Secret"
    assert config_volume["secrets"] == [{"secretRef": "config-toml", "path": "config.toml"}]
    # the Bicep file creates the role from azure-role.json itself, not a copy of it
    assert "loadJsonContent('../azure-role.json')" in bicep
    assert "'Microsoft.ManagedIdentity/userAssignedIdentities@" in bicep


# the examples show sections; a config needs a target besides (none is an error)
_A_TARGET = """
[[sources]]
name = "load"
kind = "replay"
values = [1]
step = "60s"

[[actuators]]
name = "pool"
kind = "recording"

[[targets]]
name = "pool"
actuator = "pool"
max = 2
[[targets.track]]
metric = "load"
type = "total"
target = 1
"""


def test_every_toml_example_in_deploy_readme_is_a_valid_config(tmp_path: Path) -> None:
    """The sovereign-cloud, CA-bundle and image examples load as they are written."""
    blocks = re.findall(r"```toml\n(.*?)```", (DEPLOY / "README.md").read_text(), flags=re.S)
    azure = [block for block in blocks if "[azure]" in block]
    assert len(azure) >= 3
    for number, block in enumerate(blocks):
        path = tmp_path / f"example-{number}.toml"
        path.write_text(block + ("" if "[[targets]]" in block else _A_TARGET))
        config = load_config(path)
        if "arm_endpoint" in block:
            cloud = config.azure.arm_endpoint
            assert cloud.endswith((".usgovcloudapi.net", ".chinacloudapi.cn")), cloud
            assert config.azure.metrics_audience.rsplit(".", 1)[1] in ("us", "cn")


def _role_table() -> dict[str, list[str]]:
    """deploy/README.md's table: plugin kind -> the action names of its row, as written
    (in full, or shortened to ``…/tail`` or ``/write`` after a full one)."""
    text = (DEPLOY / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+?) \| .+ \|$", text, flags=re.M)
    return {
        kind: [
            a for a in re.findall(r"`([^`]+)`", actions) if a.startswith(("Microsoft.", "…/", "/"))
        ]
        for kind, actions in rows
    }


def test_the_azure_role_holds_exactly_what_the_readme_says_each_plugin_needs() -> None:
    from scalerd.actuators import ACTUATORS
    from scalerd.sources import SOURCES

    definition = json.loads((DEPLOY / "azure-role.json").read_text())
    # data actions (Event Hubs, blobs) are checked like the control-plane actions
    role = [action.lower() for action in definition["Actions"] + definition["DataActions"]]
    table = _role_table()
    azure_kinds = {
        plugin.kind
        for registry in (SOURCES, ACTUATORS)
        for plugin in registry
        if plugin.kind.startswith("azure-") or plugin.kind in ("log-analytics", "servicebus")
    }
    assert azure_kinds <= set(table), f"no row in deploy/README.md for {azure_kinds - set(table)}"
    named: list[tuple[str, str]] = []  # (provider, the full action or its "…/tail")
    for kind in azure_kinds:
        last = ""
        for name in (name.lower() for name in table[kind]):
            if name.startswith("microsoft."):
                last = name
            elif name.startswith("/"):  # "`…/read` and `/write`": the same parent
                name = last.rsplit("/", 1)[0] + name
            named.append((last.split("/", 1)[0], name))
    # every action the README names is in the role
    for provider, name in named:
        assert any(
            action == name or (action.startswith(provider) and action.endswith(name[1:]))
            for action in role
        ), f"deploy/README.md names {name} ({provider}), azure-role.json does not hold it"
    # every action of the role is named in the row of a plugin of its provider
    for action in role:
        assert any(
            action == name or (action.startswith(provider) and action.endswith(name[1:]))
            for provider, name in named
        ), f"{action} is in azure-role.json but no plugin's row in deploy/README.md names it"
