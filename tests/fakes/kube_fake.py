"""A local fake of the Kubernetes API server, speaking its real JSON, on loopback.

``FakeKubernetes.running()`` starts one aiohttp server on a free ``127.0.0.1`` port
(plain HTTP) and writes a kubeconfig file naming it (``fake.kubeconfig``), with a bearer
token the server checks: ``kubernetes_asyncio`` reaches it exactly as it reaches a real
cluster from a kubeconfig. ``running(tls=True)`` serves HTTPS instead, with a throwaway
self-signed certificate for ``IP:127.0.0.1`` (``fake.ca_path``, its PEM), as in-cluster
auth requires: ``fake.service_account(folder)`` writes the ``token`` and ``ca.crt`` a pod
finds in ``/var/run/secrets/kubernetes.io/serviceaccount``, and ``fake.port`` is what
``KUBERNETES_SERVICE_PORT`` says. What it serves, as the API server does:

* ``GET`` and ``PATCH`` ``/apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale``:
  an ``autoscaling/v1`` ``Scale``. The fake takes ``application/merge-patch+json`` only
  (415 otherwise, so a test sees which kind of patch was sent; the API server takes JSON
  and strategic merge patches too). A PATCH may change ``spec.replicas`` only (422 otherwise);
  the workload's ``status.replicas`` then follows at once, its ``readyReplicas`` does
  not (tests move it with ``set_ready``);
* ``GET /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}``: the workload,
  whose ``status`` leaves ``readyReplicas`` out when it is 0, as the API server does;
* ``GET /apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers``: a
  ``HorizontalPodAutoscalerList``;
* errors as ``Status`` objects (``kind: Status``, ``reason``, ``message``, ``code``): 401
  without the token, 404 for what does not exist, and what ``inject`` asks for (403, 409,
  429 with ``Retry-After`` and ``details.retryAfterSeconds``…).

Every request is logged (``requests``, ``calls``) with its method, path, content type
and parsed body.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from .azure_fake import _write_self_signed_cert

__all__ = ["FakeKubernetes", "KubeRequest"]

Json = dict[str, Any]
WorkloadKind = Literal["Deployment", "StatefulSet"]

TOKEN = "fake-service-account-token"
_PLURALS: dict[str, WorkloadKind] = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
_WORKLOAD = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>deployments|statefulsets)"
    r"/(?P<name>[^/]+)(?P<scale>/scale)?$"
)
_HPAS = re.compile(r"^/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers$")


@dataclass(frozen=True)
class KubeRequest:
    method: str
    path: str
    content_type: str
    body: Any  # parsed JSON, None when empty
    status: int


@dataclass
class _Workload:
    kind: WorkloadKind
    namespace: str
    name: str
    replicas: int  # spec.replicas
    status_replicas: int
    ready: int
    resource_version: int = 1


@dataclass
class _Fault:
    method: str | None
    path: re.Pattern[str]
    status: int
    message: str
    retry_after: int | None
    times_left: int | None


@dataclass
class FakeKubernetes:
    base_url: str = ""
    kubeconfig: Path = Path()
    port: int = 0
    ca_path: Path | None = None  # with tls: the PEM of the server's certificate
    requests: list[KubeRequest] = field(default_factory=list)
    _workloads: dict[tuple[str, str, str], _Workload] = field(default_factory=dict)
    _hpas: dict[tuple[str, str], Json] = field(default_factory=dict)
    _faults: list[_Fault] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *, tls: bool = False) -> AsyncIterator[FakeKubernetes]:
        fake = cls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        with tempfile.TemporaryDirectory(prefix="kube-fake-") as folder:
            context = None
            if tls:
                cert, key = _write_self_signed_cert(Path(folder))
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(cert, key)
                fake.ca_path = cert
            # a socket bound before the site starts: no race for a free port
            listening = socket.socket()
            listening.bind(("127.0.0.1", 0))
            fake.port = listening.getsockname()[1]
            await web.SockSite(runner, listening, ssl_context=context).start()
            fake.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{fake.port}"
            fake.kubeconfig = Path(folder) / "kubeconfig"
            fake.kubeconfig.write_text(fake.kubeconfig_text())
            try:
                yield fake
            finally:
                await runner.cleanup()

    def service_account(self, folder: Path, token: str = TOKEN) -> Path:
        """Write what a pod's service-account mount holds (``token``, ``ca.crt``) to
        ``folder``; the fake must run with ``tls=True``."""
        if self.ca_path is None:
            raise ValueError("in-cluster auth needs https: start the fake with tls=True")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "token").write_text(token)
        shutil.copy(self.ca_path, folder / "ca.crt")
        return folder

    def kubeconfig_text(self, token: str = TOKEN) -> str:
        """A kubeconfig with one cluster, one user (a bearer token) and one context."""
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": self.base_url}}],
                "users": [{"name": "scalerd", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "scalerd"}}],
                "current-context": "fake",
            }
        )

    # ------------------------------------------------------------------ state

    def add_workload(
        self,
        kind: WorkloadKind,
        namespace: str,
        name: str,
        replicas: int,
        ready: int | None = None,
    ) -> None:
        self._workloads[(namespace, kind, name)] = _Workload(
            kind, namespace, name, replicas, replicas, replicas if ready is None else ready
        )

    def replicas(self, kind: WorkloadKind, namespace: str, name: str) -> int:
        """``spec.replicas`` as it stands."""
        return self._workloads[(namespace, kind, name)].replicas

    def set_ready(self, kind: WorkloadKind, namespace: str, name: str, ready: int) -> None:
        self._workloads[(namespace, kind, name)].ready = ready

    def set_status_replicas(
        self, kind: WorkloadKind, namespace: str, name: str, replicas: int
    ) -> None:
        self._workloads[(namespace, kind, name)].status_replicas = replicas

    def add_hpa(
        self, namespace: str, name: str, target_kind: str, target_name: str, **spec: Any
    ) -> None:
        self._hpas[(namespace, name)] = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"hpa-{namespace}-{name}",
                "resourceVersion": "1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": target_kind,
                    "name": target_name,
                },
                "minReplicas": spec.get("minReplicas", 2),
                "maxReplicas": spec.get("maxReplicas", 10),
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
            "status": {"currentReplicas": 2, "desiredReplicas": 2},
        }

    def inject(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str = "",
        message: str = "",
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer matching requests (``path`` a regex searched in the path) with a Status."""
        self._faults.append(_Fault(method, re.compile(path), status, message, retry_after, times))

    def calls(self, method: str, path: str = "") -> list[KubeRequest]:
        return [
            request
            for request in self.requests
            if request.method == method and re.search(path, request.path)
        ]

    # ------------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        body = json.loads(text) if text else None
        response = self._answer(request, body)
        self.requests.append(
            KubeRequest(request.method, request.path, request.content_type, body, response.status)
        )
        return response

    def _answer(self, request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized")
        for fault in self._faults:
            if (fault.method is None or fault.method == request.method) and fault.path.search(
                request.path
            ):
                if fault.times_left is not None:
                    fault.times_left -= 1
                    if fault.times_left <= 0:
                        self._faults.remove(fault)
                return _status(fault.status, fault.message, retry_after=fault.retry_after)
        if match := _HPAS.match(request.path):
            if request.method != "GET":
                return _status(405, "method not allowed")
            return self._hpa_list(match["ns"])
        if match := _WORKLOAD.match(request.path):
            kind = _PLURALS[match["plural"]]
            workload = self._workloads.get((match["ns"], kind, match["name"]))
            if workload is None:
                return _status(
                    404,
                    f'{match["plural"]}.apps "{match["name"]}" not found',
                    details={"name": match["name"], "group": "apps", "kind": match["plural"]},
                )
            if not match["scale"]:
                if request.method != "GET":
                    return _status(405, "method not allowed")
                return web.json_response(_workload_body(workload))
            if request.method == "GET":
                return web.json_response(_scale_body(workload))
            if request.method == "PATCH":
                return self._patch_scale(workload, request.content_type, body)
            return _status(405, "method not allowed")
        return _status(404, "the server could not find the requested resource")

    def _patch_scale(self, workload: _Workload, content_type: str, body: Any) -> web.Response:
        if content_type != "application/merge-patch+json":
            return _status(415, f"the body of the request was in an unknown format: {content_type}")
        spec = body.get("spec") if isinstance(body, dict) else None
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if set(body or {}) - {"spec"} or set(spec or {}) - {"replicas"}:
            return _status(
                422, f"Scale.autoscaling is invalid: only spec.replicas may change: {body}"
            )
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            return _status(
                422, f'Scale.autoscaling "{workload.name}" is invalid: spec.replicas: {replicas}'
            )
        workload.replicas = workload.status_replicas = replicas
        workload.ready = min(workload.ready, replicas)
        workload.resource_version += 1
        return web.json_response(_scale_body(workload))

    def _hpa_list(self, namespace: str) -> web.Response:
        items = [
            {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", **hpa}
            for (ns, _), hpa in sorted(self._hpas.items())
            if ns == namespace
        ]
        return web.json_response(
            {
                "kind": "HorizontalPodAutoscalerList",
                "apiVersion": "autoscaling/v2",
                "metadata": {"resourceVersion": "100"},
                "items": items,
            }
        )


def _metadata(workload: _Workload) -> Json:
    return {
        "name": workload.name,
        "namespace": workload.namespace,
        "uid": f"uid-{workload.namespace}-{workload.name}",
        "resourceVersion": str(workload.resource_version),
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }


def _scale_body(workload: _Workload) -> Json:
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": _metadata(workload),
        "spec": {"replicas": workload.replicas},
        "status": {"replicas": workload.status_replicas, "selector": f"app={workload.name}"},
    }


def _workload_body(workload: _Workload) -> Json:
    status: Json = {
        "observedGeneration": workload.resource_version,
        "replicas": workload.status_replicas,
    }
    if workload.ready:  # the API server omits a zero readyReplicas
        status["readyReplicas"] = workload.ready
        status["availableReplicas"] = workload.ready
    labels = {"app": workload.name}
    spec: Json = {
        "replicas": workload.replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": workload.name, "image": "example/app:1"}]},
        },
    }
    if workload.kind == "StatefulSet":
        spec["serviceName"] = workload.name
    return {
        "kind": workload.kind,
        "apiVersion": "apps/v1",
        "metadata": {**_metadata(workload), "generation": workload.resource_version},
        "spec": spec,
        "status": status,
    }


def _status(
    code: int, message: str, *, retry_after: int | None = None, details: Json | None = None
) -> web.Response:
    body: Json = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
        details = {**(details or {}), "retryAfterSeconds": retry_after}
    if details:
        body["details"] = details
    return web.json_response(body, status=code, headers=headers)
