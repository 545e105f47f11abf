"""Every payload in tests/events/wire (copied from shared/wire_events) through the HTTP
endpoints of a running daemon: each reaches the targets it should and triggers one
evaluation, the handshakes answer as the specs say, and what is not a whole event is
refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .build import SECRETS, WIRE, Served, config_text, served

pytestmark = pytest.mark.usefixtures("secrets")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _headers_and_body(name: str) -> tuple[dict[str, str], bytes]:
    """A `headers, blank line, body` sample as a header dict and the body bytes."""
    head, _, body = (WIRE / name).read_text().partition("\n\n")
    headers = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" ") and " " not in key:
            headers[key.strip()] = value.strip()
    headers.pop("Host", None)
    headers.pop("Content-Length", None)
    return headers, body.encode()


# file, endpoint, extra headers, targets, the value the target's metric must see (None:
# its source's own value), the trigger's event id
ACCEPTED = [
    pytest.param(
        "azuremonitor_commonschema_metric_static_fired.json",
        "alerts",
        {},
        ["web"],
        ("cpu", 100.0),
        id="alert-metric-static-fired",
    ),
    pytest.param(
        "azuremonitor_commonschema_metric_dynamic_fired.json",
        "alerts",
        {},
        ["web"],
        ("cpu", 78.09),
        id="alert-metric-dynamic-fired",
    ),
    pytest.param(
        "azuremonitor_commonschema_metric_static_resolved.json",
        "alerts",
        {},
        ["web"],
        ("cpu", 50.0),  # a resolved alert offers no value: the poll's source is read
        id="alert-metric-resolved",
    ),
    pytest.param(
        "azuremonitor_commonschema_log_alerts_v2_fired.json",
        "alerts",
        {},
        ["workers"],
        ("depth", 10.0),  # its value is offered to "cpu", which workers does not read
        id="alert-log-v2-fired",
    ),
    pytest.param(
        "azuremonitor_commonschema_activity_log_fired.json",
        "alerts",
        {},
        ["web"],
        ("cpu", 50.0),
        id="alert-activity-log",
    ),
    pytest.param(
        "azuremonitor_legacy_metric_alert_static.json",
        "alerts",
        {},
        ["web"],
        ("cpu", 100.0),
        id="alert-legacy-metric",
    ),
    *[
        pytest.param(name, "grid", {"aeg-event-type": "Notification"}, [target], None, id=name)
        for name, target in [
            ("eventgrid_servicebus_active_no_listeners_egschema.json", "workers"),
            ("eventgrid_servicebus_deadletter_no_listeners_egschema.json", "workers"),
            ("eventgrid_servicebus_active_periodic_egschema.json", "workers"),
            ("eventgrid_servicebus_active_no_listeners_ceschema.json", "workers"),
            ("eventgrid_servicebus_deadletter_no_listeners_ceschema.json", "workers"),
            ("eventgrid_storage_blob_created_egschema.json", "ingest"),
            ("eventgrid_storage_blob_created_ceschema.json", "ingest"),
            ("eventgrid_resources_resource_write_success_egschema.json", "ingest"),
        ]
    ],
    pytest.param(
        "cloudevents_structured_json_object_data.json",
        "apps",
        {"Content-Type": "application/cloudevents+json"},
        ["workers"],
        ("depth", 123.0),
        id="cloudevents-structured",
    ),
    pytest.param(
        "cloudevents_batch.json",
        "apps",
        {"Content-Type": "application/cloudevents-batch+json"},
        ["workers"],
        ("depth", 123.0),  # two events, one evaluation; the second carries the value
        id="cloudevents-batch",
    ),
    pytest.param(
        "cloudevents_binary_mode_headers_and_body.txt",
        "apps",
        None,
        ["workers"],
        ("depth", 123.0),
        id="cloudevents-binary",
    ),
]


@pytest.mark.parametrize(("name", "endpoint", "headers", "targets", "seen"), ACCEPTED)
async def test_each_example_reaches_its_targets_and_triggers_one_evaluation(
    tmp_path: Path,
    name: str,
    endpoint: str,
    headers: dict[str, str] | None,
    targets: list[str],
    seen: tuple[str, float] | None,
) -> None:
    if headers is None:
        headers, body = _headers_and_body(name)
    else:
        body = (WIRE / name).read_bytes()
    async with served(tmp_path, config_text()) as running:
        before = len(running.records)
        response = await running.post(endpoint, body, **headers)
        assert response.status_code == 202, response.text
        assert response.json()["targets"] == targets
        await running.wait_for(lambda records: len(records) > before)
        await running.settled()
        new = running.records[before:]
        assert [record.target for record in new] == targets  # one evaluation each
        (record,) = new
        trigger = record.trigger
        assert trigger is not None and trigger["type"] == "event"
        assert trigger["endpoint"] == endpoint and trigger["kind"] == _kind(endpoint)
        assert trigger["id"] and trigger["source"] is not None
        if seen is not None:
            metric, value = seen
            (report,) = [i for i in record.inputs if i["metric"] == metric]
            assert report["value"] == value


def _kind(endpoint: str) -> str:
    return {"alerts": "azure-monitor-alert", "grid": "event-grid", "apps": "cloudevents"}[endpoint]


async def test_a_fired_alert_says_what_fired_in_the_audit_record(tmp_path: Path) -> None:
    body = (WIRE / "azuremonitor_commonschema_metric_static_fired.json").read_bytes()
    async with served(tmp_path, config_text()) as running:
        response = await running.http.post(
            "/events/alerts", params={"code": SECRETS["SCALERD_TEST_ALERTS"]}, content=body
        )
        assert response.status_code == 202
        await running.wait_for(lambda records: bool(running.event_records("web")))
        (record,) = running.event_records("web")
        assert record.trigger is not None
        assert record.trigger["summary"] == "alert 'test-metricAlertRule' fired at 100"
        assert record.trigger["values"] == {"cpu": 100.0}
        assert record.trigger["id"].endswith("/alerts/eeeeeeee-4444-5555-6666-ffffffffffff")
        # 100 % CPU on 2 replicas tracking 50 %: 4 replicas
        assert (record.action, record.desired) == ("scaled", 4)


async def test_event_grid_validation_answers_the_code_with_200(tmp_path: Path) -> None:
    body = (WIRE / "eventgrid_subscription_validation_event_egschema.json").read_bytes()
    expected = json.loads((WIRE / "eventgrid_subscription_validation_response.json").read_text())
    async with served(tmp_path, config_text()) as running:
        before = len(running.records)
        response = await running.post("grid", body, **{"aeg-event-type": "SubscriptionValidation"})
        assert response.status_code == 200  # the docs: 202 is not accepted here
        assert response.json() == expected
        await running.settled()
        assert len(running.records) == before  # a handshake evaluates nothing


@pytest.mark.parametrize("endpoint", ["grid", "apps"])
async def test_cloudevents_webhook_validation_answers_origin_and_rate(
    tmp_path: Path, endpoint: str
) -> None:
    request, _ = _headers_and_body("cloudevents_webhook_validation_request_headers.txt")
    expected, _ = _headers_and_body("cloudevents_webhook_validation_response_headers.txt")
    async with served(tmp_path, config_text()) as running:
        response = await running.http.options(
            f"/events/{endpoint}", params={"code": SECRETS["SCALERD_TEST_GRID"]}, headers=request
        )
        assert response.status_code == 200
        for key, value in expected.items():  # the spec's example answer, exactly
            assert response.headers[key] == value
        assert response.headers["Allow"] == "POST"  # SHOULD
        missing = await running.http.options(
            f"/events/{endpoint}", params={"code": SECRETS["SCALERD_TEST_GRID"]}
        )
        assert missing.status_code == 400
        assert "WebHook-Request-Origin" in missing.json()["error"]


async def test_an_alert_endpoint_does_not_do_the_options_handshake(tmp_path: Path) -> None:
    async with served(tmp_path, config_text()) as running:
        response = await running.http.options(
            "/events/alerts",
            params={"code": SECRETS["SCALERD_TEST_ALERTS"]},
            headers={"WebHook-Request-Origin": "eventemitter.example.com"},
        )
        assert response.status_code == 400
        assert "WebHook-Allowed-Origin" not in response.headers


# samples that are not whole events as published: refused with a reason, evaluating nothing
REFUSED = [
    pytest.param(
        "azuremonitor_commonschema_activity_log_autoscale_alertcontext_fragment.json",
        "alerts",
        {},
        "schemaId must be",
        id="alert-context-fragment",
    ),
    pytest.param(
        "cloudevents_binary_mode_http_post.txt",
        "apps",
        None,
        "the body is not JSON",
        id="binary-post-with-placeholders",
    ),
    pytest.param(
        "cloudevents_batch_http_put.txt",
        "apps",
        None,
        "the body is not JSON",
        id="batch-put-with-placeholders",
    ),
    pytest.param(
        "teams_incoming_webhook_adaptive_card_message.json",
        "apps",
        {"Content-Type": "application/cloudevents+json"},
        "the body is not JSON",  # as published it has a trailing comma
        id="not-an-event",
    ),
]


@pytest.mark.parametrize(("name", "endpoint", "headers", "reason"), REFUSED)
async def test_samples_that_are_not_whole_events_are_refused_with_a_reason(
    tmp_path: Path, name: str, endpoint: str, headers: dict[str, str] | None, reason: str
) -> None:
    if headers is None:
        headers, body = _headers_and_body(name)
    else:
        body = (WIRE / name).read_bytes()
    async with served(tmp_path, config_text()) as running:
        before = len(running.records)
        response = await running.post(endpoint, body, **headers)
        assert response.status_code == 400
        assert reason in response.json()["error"]
        await running.settled()
        assert len(running.records) == before


async def test_every_example_is_used_by_a_test() -> None:
    used = {p.values[0] for p in [*ACCEPTED, *REFUSED]} | {
        "eventgrid_subscription_validation_event_egschema.json",
        "eventgrid_subscription_validation_response.json",
        "cloudevents_webhook_validation_request_headers.txt",
        "cloudevents_webhook_validation_response_headers.txt",
    }
    assert {p.name for p in WIRE.iterdir()} - {"INDEX.md"} == used


__all__ = ["Served"]
