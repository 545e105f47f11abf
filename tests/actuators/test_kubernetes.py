"""The kubernetes actuator through the real ``kubernetes_asyncio`` client against
``FakeKubernetes``, reached through a kubeconfig file: what it reads, the exact PATCH it
sends, the errors it turns the API server's answers into, and the HPA it will not fight."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon.build import write_config
from daemon.test_tick import _runtime
from fakes.kube_fake import TOKEN, FakeKubernetes
from pydantic import ValidationError

from scalerd.actuators import ACTUATORS
from scalerd.actuators.kubernetes import KubernetesConfig, KubernetesScale
from scalerd.clock import ManualClock
from scalerd.config import load_config
from scalerd.core.model import Capacity, Decision
from scalerd.daemon.tick import evaluate
from scalerd.errors import ActuatorError, Throttled
from scalerd.plugins import Actuator, BuildContext

NS = "shop"
SCALE = rf"/namespaces/{NS}/deployments/web/scale$"


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes.running() as fake:
        yield fake


@pytest.fixture
async def web(kube: FakeKubernetes) -> AsyncIterator[Actuator]:
    built = build(kube)
    yield built
    await built.aclose()


def build(kube: FakeKubernetes, **keys: Any) -> Actuator:
    config = KubernetesConfig.model_validate(
        {
            "kind": "kubernetes",
            "name": "web",
            "namespace": NS,
            "workload": "web",
            "kubeconfig": str(kube.kubeconfig),
            **keys,
        }
    )
    return ACTUATORS.get("kubernetes").build(config, BuildContext())


def decision(desired: int) -> Decision:
    return Decision(
        target="web",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        current=Capacity.steady(1),
        recommended=desired,
        desired=desired,
        steps=(),
        inputs=(),
        rules=(),
        not_scaled_reason=None,
    )


def patches(kube: FakeKubernetes) -> list[Any]:
    return [(call.content_type, call.body) for call in kube.calls("PATCH")]


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param({"workload_kind": "DaemonSet"}, "'Deployment' or 'StatefulSet'", id="kind"),
        pytest.param({"namespace": "Shop_1"}, "should match pattern", id="namespace"),
        pytest.param({"workload": ""}, "should match pattern", id="no workload"),
        pytest.param({"replicas": 3}, "Extra inputs are not permitted", id="unknown key"),
    ],
)
def test_invalid_config_is_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KubernetesConfig.model_validate(
            {"kind": "kubernetes", "name": "web", "namespace": NS, "workload": "web", **keys}
        )


# ---------------------------------------------------------------------- current()


async def test_capacity_is_status_replicas_and_ready_replicas(
    kube: FakeKubernetes, web: Actuator
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=5, ready=3)
    kube.set_status_replicas("Deployment", NS, "web", 4)  # one pod not created yet

    assert await web.current() == Capacity(provisioned=4, ready=3)


async def test_no_ready_replicas_on_the_wire_is_zero_ready(
    kube: FakeKubernetes, web: Actuator
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2, ready=0)

    assert await web.current() == Capacity(provisioned=2, ready=0)


async def test_a_statefulset_is_read_and_scaled_through_its_own_paths(
    kube: FakeKubernetes,
) -> None:
    kube.add_workload("StatefulSet", NS, "db", replicas=3, ready=3)
    db = build(kube, workload_kind="StatefulSet", workload="db")
    try:
        assert await db.current() == Capacity.steady(3)
        await db.apply(decision(5))
    finally:
        await db.aclose()

    assert kube.replicas("StatefulSet", NS, "db") == 5
    (patch,) = kube.calls("PATCH")
    assert patch.path == f"/apis/apps/v1/namespaces/{NS}/statefulsets/db/scale"


async def test_a_missing_workload_is_a_not_found_error(web: Actuator) -> None:
    with pytest.raises(ActuatorError, match=r'deployments.apps "web" not found') as raised:
        await web.current()
    assert raised.value.code == "NotFound"


# ---------------------------------------------------------------------- apply()


@pytest.mark.parametrize(("before", "desired"), [(2, 6), (6, 3)], ids=["up", "down"])
async def test_a_change_is_one_merge_patch_of_spec_replicas_after_a_read(
    kube: FakeKubernetes, web: Actuator, before: int, desired: int
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=before)

    applied = await web.apply(decision(desired))

    assert patches(kube) == [("application/merge-patch+json", {"spec": {"replicas": desired}})]
    assert kube.replicas("Deployment", NS, "web") == desired
    assert applied.notes == (f"spec.replicas {before} -> {desired}",)
    # read before write: the scale was read, then patched
    methods = [(call.method, call.path) for call in kube.requests if call.path.endswith("/scale")]
    assert methods[-2:] == [("GET", methods[-1][1]), ("PATCH", methods[-1][1])]


async def test_no_patch_when_spec_replicas_is_already_there(
    kube: FakeKubernetes, web: Actuator
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=4, ready=1)

    applied = await web.apply(decision(4))

    assert patches(kube) == []
    assert "nothing written" in applied.notes[0]


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        pytest.param(
            403,
            "Forbidden",
            'deployments.apps "web" is forbidden: User "system:serviceaccount:scalerd:scalerd" '
            'cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"',
            id="403",
        ),
        pytest.param(
            409,
            "Conflict",
            'Operation cannot be fulfilled on deployments.apps "web": the object has been '
            "modified; please apply your changes to the latest version and try again",
            id="409",
        ),
    ],
)
async def test_a_refused_write_is_an_error_with_the_api_servers_reason(
    kube: FakeKubernetes, web: Actuator, status: int, reason: str, message: str
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    kube.inject(status, method="PATCH", path=SCALE, message=message)

    with pytest.raises(ActuatorError) as raised:
        await web.apply(decision(5))

    assert raised.value.code == reason
    assert str(raised.value) == f"scaling Deployment {NS}/web: {message}"
    assert not isinstance(raised.value, Throttled)
    assert kube.replicas("Deployment", NS, "web") == 2
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_429_is_throttled_with_its_retry_after(
    kube: FakeKubernetes, web: Actuator, method: str
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    kube.inject(429, method=method, path=SCALE, message="Too many requests", retry_after=7)

    with pytest.raises(Throttled) as raised:
        await web.apply(decision(5))

    assert raised.value.retry_after == 7
    assert raised.value.code == "TooManyRequests"
    assert kube.replicas("Deployment", NS, "web") == 2


async def test_an_hpa_on_the_same_deployment_is_refused_and_named(
    kube: FakeKubernetes, web: Actuator
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    kube.add_hpa(NS, "other", "Deployment", "api")  # another workload: no conflict
    kube.add_hpa("elsewhere", "web", "Deployment", "web")  # another namespace: none either
    await web.apply(decision(3))
    kube.add_hpa(NS, "web-cpu", "Deployment", "web")

    with pytest.raises(ActuatorError) as raised:
        await web.apply(decision(5))

    assert raised.value.code == "HorizontalPodAutoscalerConflict"
    assert f"HorizontalPodAutoscaler {NS}/web-cpu already scales Deployment {NS}/web" in str(
        raised.value
    )
    assert patches(kube) == [("application/merge-patch+json", {"spec": {"replicas": 3}})]


async def test_an_hpa_on_a_statefulset_of_the_same_name_is_no_conflict(
    kube: FakeKubernetes, web: Actuator
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    kube.add_hpa(NS, "web", "StatefulSet", "web")

    await web.apply(decision(3))

    assert kube.replicas("Deployment", NS, "web") == 3


# ---------------------------------------------------------------------- auth


async def test_a_wrong_token_is_unauthorized_and_the_token_never_shows(
    kube: FakeKubernetes, tmp_path: Path
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    wrong = tmp_path / "kubeconfig"
    wrong.write_text(kube.kubeconfig_text(token="s3cret-wrong-token"))
    web = build(kube, kubeconfig=str(wrong))
    try:
        with pytest.raises(ActuatorError) as raised:
            await web.current()
    finally:
        await web.aclose()
    assert raised.value.code == "Unauthorized"
    assert "s3cret" not in str(raised.value)


async def test_outside_a_cluster_in_cluster_auth_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = KubernetesConfig(kind="kubernetes", name="web", namespace=NS, workload="web")
    web = ACTUATORS.get("kubernetes").build(config, BuildContext())

    with pytest.raises(ActuatorError, match="cannot load the in-cluster configuration"):
        await web.current()


async def test_in_cluster_auth_reaches_the_api_server_with_the_pods_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a pod: KUBERNETES_SERVICE_HOST/PORT name the API server, which serves https
    with the cluster's CA (``ca.crt``); the token file is the bearer token."""
    async with FakeKubernetes.running(tls=True) as kube:
        kube.add_workload("Deployment", NS, "web", replicas=2, ready=2)
        mount = kube.service_account(tmp_path / "serviceaccount")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
        config = KubernetesConfig(kind="kubernetes", name="web", namespace=NS, workload="web")
        web = KubernetesScale(config, None, service_account=mount)
        try:
            assert await web.current() == Capacity(provisioned=2, ready=2)
            await web.apply(decision(5))
        finally:
            await web.aclose()

        assert kube.replicas("Deployment", NS, "web") == 5
        assert all(call.status < 300 for call in kube.requests)  # no 401: the token was sent


async def test_in_cluster_auth_with_another_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeKubernetes.running(tls=True) as kube:
        kube.add_workload("Deployment", NS, "web", replicas=2)
        mount = kube.service_account(tmp_path / "serviceaccount", token="someone-elses")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
        config = KubernetesConfig(kind="kubernetes", name="web", namespace=NS, workload="web")
        web = KubernetesScale(config, None, service_account=mount)
        try:
            with pytest.raises(ActuatorError) as refused:
                await web.current()
        finally:
            await web.aclose()

        assert refused.value.code == "Unauthorized"
        assert "someone-elses" not in str(refused.value)


async def test_in_cluster_auth_checks_the_clusters_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ca.crt that did not sign the server's certificate: nothing is sent to it."""
    async with FakeKubernetes.running(tls=True) as kube, FakeKubernetes.running(tls=True) as other:
        kube.add_workload("Deployment", NS, "web", replicas=2)
        mount = other.service_account(tmp_path / "serviceaccount")  # the wrong cluster's CA
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
        config = KubernetesConfig(kind="kubernetes", name="web", namespace=NS, workload="web")
        web = KubernetesScale(config, None, service_account=mount)
        try:
            with pytest.raises(ActuatorError, match="the API server did not answer") as raised:
                await web.current()
        finally:
            await web.aclose()

        assert raised.value.code == "Unreachable"
        assert "certificate verify failed" in str(raised.value)
        assert kube.requests == []


async def test_an_api_server_that_does_not_answer_is_unreachable(
    kube: FakeKubernetes, tmp_path: Path
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nowhere = tmp_path / "kubeconfig"
    nowhere.write_text(kube.kubeconfig_text().replace(kube.base_url, f"http://127.0.0.1:{port}"))
    web = build(kube, kubeconfig=str(nowhere))
    try:
        with pytest.raises(ActuatorError, match="the API server did not answer") as raised:
            await web.current()
    finally:
        await web.aclose()
    assert raised.value.code == "Unreachable"


# ---------------------------------------------------------------------- one tick


def tick_config(kubeconfig: str) -> str:
    return f"""
[[sources]]
name = "queue"
kind = "replay"
values = [40, 40, 40, 40]
step = "60s"

[[actuators]]
name = "web"
kind = "kubernetes"
namespace = "{NS}"
workload = "web"
kubeconfig = "{kubeconfig}"

[[targets]]
name = "web"
actuator = "web"
max = 20
[[targets.track]]
metric = "queue"
type = "total"
target = 5
"""


@pytest.mark.parametrize(
    ("status", "action", "error"),
    [
        (None, "scaled", None),
        (403, "failed", "Forbidden: scaling Deployment shop/web: forbidden by RBAC"),
        (409, "failed", "Conflict: scaling Deployment shop/web: the object has been modified"),
        (429, "skipped", "throttled: retry after 7s: scaling Deployment shop/web"),
    ],
    ids=["scaled", "403", "409", "429"],
)
async def test_a_tick_audits_the_write_as_the_api_server_answered(
    kube: FakeKubernetes,
    tmp_path: Path,
    manual_clock: ManualClock,
    status: int | None,
    action: str,
    error: str | None,
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=2)
    if status is not None:
        message = {403: "forbidden by RBAC", 409: "the object has been modified"}.get(status, "")
        kube.inject(status, method="PATCH", path=SCALE, message=message, retry_after=7)
    runtime, context, sink = _runtime(tmp_path, manual_clock, tick_config(str(kube.kubeconfig)))
    try:
        record = await evaluate(runtime, context)
    finally:
        await runtime.actuator.aclose()

    assert record.action == action
    assert sink.records == [record]
    if error is None:
        assert record.error is None
        assert kube.replicas("Deployment", NS, "web") == record.desired == 6
    else:
        assert record.error is not None and error in record.error
        assert kube.replicas("Deployment", NS, "web") == 2


async def test_the_kubeconfig_path_is_relative_to_the_config_file(
    kube: FakeKubernetes, tmp_path: Path
) -> None:
    kube.add_workload("Deployment", NS, "web", replicas=3, ready=2)
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "config").write_text(kube.kubeconfig.read_text())
    config = load_config(write_config(tmp_path, tick_config("kube/config")))
    actuator = config.targets[0].actuator
    web = ACTUATORS.get("kubernetes").build(actuator, BuildContext(base_dir=tmp_path))
    try:
        assert await web.current() == Capacity(provisioned=3, ready=2)
    finally:
        await web.aclose()


# ---------------------------------------------------------------------- RBAC


def _verb_and_resource(method: str, path: str) -> tuple[str, str, str]:
    """The RBAC (verb, group, resource) the API server checks for a request."""
    match = re.fullmatch(
        r"/apis/(?P<group>[^/]+)/[^/]+/namespaces/[^/]+/(?P<plural>[^/]+)"
        r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?",
        path,
    )
    assert match is not None, path
    resource = match["plural"] + (f"/{match['sub']}" if match["sub"] else "")
    verb = {"PATCH": "patch"}.get(method, "get" if match["name"] else "list")
    return verb, match["group"], resource


ROOT = Path(__file__).parents[2]


def _shipped_role() -> dict[str, Any]:
    documents = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "role.yaml").read_text())
    (role,) = [doc for doc in documents if doc and doc["kind"] == "Role"]
    return dict(role)


def test_the_readme_shows_the_role_that_ships() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- kubernetes-rbac:start -->\n```yaml\n(.*?)```\n<!-- kubernetes-rbac:end -->",
        readme,
        flags=re.S,
    )
    assert block is not None
    assert yaml.safe_load(block[1])["rules"] == _shipped_role()["rules"]


async def test_the_shipped_role_grants_exactly_what_the_actuator_asks(
    kube: FakeKubernetes,
) -> None:
    granted = {
        (verb, group, resource)
        for rule in _shipped_role()["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for workload_kind in ("Deployment", "StatefulSet"):
        kube.add_workload(workload_kind, NS, "web", replicas=2)
        web = build(kube, workload_kind=workload_kind)
        try:
            await web.current()
            await web.apply(decision(4))
        finally:
            await web.aclose()

    assert all(call.status < 300 for call in kube.requests)
    asked = {_verb_and_resource(call.method, call.path) for call in kube.requests}
    assert asked == granted
