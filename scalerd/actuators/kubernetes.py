"""``kind = "kubernetes"``: replicas of a Deployment or StatefulSet, through its ``scale``.

Capacity is read from the workload's ``scale`` subresource and the workload itself:
provisioned is ``status.replicas`` (the pods the controller has created, starting ones
included), ready is the workload's ``status.readyReplicas`` (left out by the API server
when 0).

A decision reads ``spec.replicas`` from ``scale`` first and writes only when it differs,
as the JSON merge patch ``{"spec": {"replicas": N}}`` on ``.../scale``: the one field, so
nothing else of the workload is touched, and the RBAC needed is ``patch`` on
``deployments/scale`` (or ``statefulsets/scale``), not on the workload.

scalerd refuses to fight a HorizontalPodAutoscaler: before each write it lists the
``autoscaling/v2`` HPAs of the namespace, and if one targets the same workload the write
is refused with an error that names it (each would undo the other's changes).

Authentication is the pod's service account (in-cluster, the default) or a ``kubeconfig``
file; the client is created on first use, as loading a kubeconfig is asynchronous.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

import aiohttp
from kubernetes_asyncio import client as kube
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import (
    ConfigException,
    load_incluster_config,
    new_client_from_config,
)
from pydantic import Field

from ..core.durations import Duration
from ..core.model import Capacity, Decision
from ..errors import ActuatorError, Throttled
from ..plugins import Actuator, ActuatorConfig, Applied, BuildContext, Plugin

__all__ = ["PLUGIN", "KubernetesConfig", "KubernetesScale"]

_MERGE_PATCH = "application/merge-patch+json"
# a 429 without Retry-After (the API server's priority and fairness always sends one)
_DEFAULT_RETRY_AFTER = 1.0
# where the kubelet mounts the pod's service-account token and the cluster's CA
_SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class KubernetesConfig(ActuatorConfig):
    kind: Literal["kubernetes"]
    namespace: str = Field(pattern=_DNS_LABEL, max_length=63)
    # the kind of the workload (``kind`` itself names the plugin)
    workload_kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    # the workload's name
    workload: str = Field(pattern=_DNS_SUBDOMAIN, max_length=253)
    # a kubeconfig file (relative to the config file's folder); unset: the pod's service
    # account (in-cluster)
    kubeconfig: str | None = None
    # the kubeconfig context to use (default: its current-context)
    context: str | None = None
    # how long one request to the API server may take
    timeout: Duration = timedelta(seconds=30)

    def describe(self) -> str:
        auth = f"kubeconfig {self.kubeconfig}" if self.kubeconfig else "in-cluster"
        return (
            f"{self.kind} '{self.name}' ({self.workload_kind} {self.namespace}/{self.workload}, "
            f"{auth})"
        )


class KubernetesScale:
    """The ``scale`` of one workload, read and patched with ``kubernetes_asyncio``."""

    def __init__(
        self,
        config: KubernetesConfig,
        kubeconfig: Path | None,
        *,
        service_account: Path = _SERVICE_ACCOUNT,
    ) -> None:
        self._namespace = config.namespace
        self._workload_kind = config.workload_kind
        self._workload = config.workload
        self._kubeconfig = kubeconfig
        self._service_account = service_account
        self._context = config.context
        self._timeout = config.timeout.total_seconds()
        self._client: kube.ApiClient | None = None
        self.label = f"{config.workload_kind} {config.namespace}/{config.workload}"

    async def current(self) -> Capacity:
        scale = await self._read_scale()
        async with self._calling("reading"):
            apps = kube.AppsV1Api(await self._api())
            read = (
                apps.read_namespaced_deployment
                if self._workload_kind == "Deployment"
                else apps.read_namespaced_stateful_set
            )
            workload = await read(self._workload, self._namespace, _request_timeout=self._timeout)
        provisioned = (scale.status.replicas if scale.status else None) or 0
        ready = (workload.status.ready_replicas if workload.status else None) or 0
        return Capacity(provisioned=provisioned, ready=min(ready, provisioned))

    async def apply(self, decision: Decision) -> Applied:
        await self._refuse_if_an_hpa_scales_it()
        scale = await self._read_scale()
        replicas = (scale.spec.replicas if scale.spec else None) or 0
        desired = decision.desired
        if replicas == desired:
            return Applied(
                notes=(f"{self.label} is already at spec.replicas={desired}: nothing written",)
            )
        async with self._calling("scaling"):
            apps = kube.AppsV1Api(await self._api())
            patch = (
                apps.patch_namespaced_deployment_scale
                if self._workload_kind == "Deployment"
                else apps.patch_namespaced_stateful_set_scale
            )
            await patch(
                self._workload,
                self._namespace,
                {"spec": {"replicas": desired}},
                # the method takes _content_type, its stub omits it; without it the
                # client sends a strategic merge patch
                _content_type=_MERGE_PATCH,  # type: ignore[call-arg]
                _request_timeout=self._timeout,
            )
        return Applied(notes=(f"spec.replicas {replicas} -> {desired}",))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _read_scale(self) -> kube.V1Scale:
        async with self._calling("reading the scale of"):
            apps = kube.AppsV1Api(await self._api())
            read = (
                apps.read_namespaced_deployment_scale
                if self._workload_kind == "Deployment"
                else apps.read_namespaced_stateful_set_scale
            )
            return await read(self._workload, self._namespace, _request_timeout=self._timeout)

    async def _refuse_if_an_hpa_scales_it(self) -> None:
        async with self._calling("listing the HorizontalPodAutoscalers for"):
            autoscaling = kube.AutoscalingV2Api(await self._api())
            hpas = await autoscaling.list_namespaced_horizontal_pod_autoscaler(
                self._namespace, _request_timeout=self._timeout
            )
        for hpa in hpas.items:
            target = hpa.spec.scale_target_ref
            group = (target.api_version or "apps/v1").partition("/")[0]
            if (target.kind, target.name, group) == (self._workload_kind, self._workload, "apps"):
                raise ActuatorError(
                    f"HorizontalPodAutoscaler {self._namespace}/{hpa.metadata.name} already "
                    f"scales {self.label}: scalerd does not fight it (each would undo the "
                    "other's changes); delete the HPA or stop scaling this workload with scalerd",
                    code="HorizontalPodAutoscalerConflict",
                )

    async def _api(self) -> kube.ApiClient:
        if self._client is None:
            try:
                if self._kubeconfig is None:
                    configuration = kube.Configuration()
                    load_incluster_config(  # type: ignore[no-untyped-call]
                        client_configuration=configuration,
                        token_filename=str(self._service_account / "token"),
                        cert_filename=str(self._service_account / "ca.crt"),
                    )
                    self._client = kube.ApiClient(configuration)
                else:
                    self._client = await new_client_from_config(
                        config_file=str(self._kubeconfig),
                        context=self._context,
                        persist_config=False,
                    )
            except (ConfigException, OSError, ValueError) as problem:
                source = f"kubeconfig {self._kubeconfig}" if self._kubeconfig else "in-cluster"
                raise ActuatorError(
                    f"{self.label}: cannot load the {source} configuration: {problem}",
                    code="ConfigurationInvalid",
                ) from None
        return self._client

    @contextlib.asynccontextmanager
    async def _calling(self, doing: str) -> AsyncIterator[None]:
        """Turns the API server's answers into scalerd's errors, with its reason as code."""
        try:
            yield
        except ApiException as problem:
            reason, message, retry_after = _status_of(problem)
            text = f"{doing} {self.label}: {message}"
            if problem.status == 429:
                raise Throttled(text, retry_after or _DEFAULT_RETRY_AFTER, reason) from None
            raise ActuatorError(text, reason) from None
        except (aiohttp.ClientError, TimeoutError) as problem:
            detail = str(problem) or type(problem).__name__
            raise ActuatorError(
                f"{doing} {self.label}: the API server did not answer: {detail}",
                code="Unreachable",
            ) from None


def _status_of(problem: ApiException) -> tuple[str, str, float | None]:
    """The reason, message and retry delay of an error, from its ``Status`` body (the
    ``Retry-After`` header first, then ``details.retryAfterSeconds``)."""
    reason = str(problem.reason or problem.status)
    message = f"HTTP {problem.status}"
    retry_after: float | None = None
    try:
        status = json.loads(problem.body or b"")
    except ValueError:
        status = None
    if isinstance(status, dict):
        reason = str(status.get("reason") or reason)
        message = str(status.get("message") or message)
        details = status.get("details")
        if isinstance(details, dict) and isinstance(details.get("retryAfterSeconds"), int):
            retry_after = float(details["retryAfterSeconds"])
    header = problem.headers.get("Retry-After") if problem.headers is not None else None
    if header is not None:
        with contextlib.suppress(ValueError):
            retry_after = float(header)
    return reason, message, retry_after


def build(config: KubernetesConfig, ctx: BuildContext) -> Actuator:
    kubeconfig = ctx.base_dir / config.kubeconfig if config.kubeconfig else None
    return KubernetesScale(config, kubeconfig)


PLUGIN = Plugin(
    kind="kubernetes",
    config=KubernetesConfig,
    build=build,
    summary="replicas of a Kubernetes Deployment or StatefulSet, through its scale subresource",
)
