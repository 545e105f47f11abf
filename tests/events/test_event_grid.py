"""Event Grid delivery in both schemas, and the subscription validation handshake by
answer and by its validation URL (served on loopback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from scalerd.events.base import EventRejected, EventRequest
from scalerd.events.event_grid import EventGridConfig, EventGridReceiver

from .build import SECRET, SECRETS, WIRE, config_text, served

CONFIG = EventGridConfig(kind="event-grid", name="grid", targets=("w",))


def _parse(name: str, config: EventGridConfig = CONFIG) -> object:
    return EventGridReceiver(config).parse(EventRequest("POST", {}, (WIRE / name).read_bytes()))


def test_both_schemas_give_the_same_event() -> None:
    (grid,) = _parse("eventgrid_storage_blob_created_egschema.json").events  # type: ignore[attr-defined]
    (cloud,) = _parse("eventgrid_storage_blob_created_ceschema.json").events  # type: ignore[attr-defined]
    for event in (grid, cloud):
        assert event.kind == "event-grid"
        assert event.type == "Microsoft.Storage.BlobCreated"
        assert event.subject == "/blobServices/default/containers/test-container/blobs/new-file.txt"
        assert event.properties["blobType"] == "BlockBlob"
    assert grid.id == cloud.id and grid.source == cloud.source


def test_value_field_reads_the_data() -> None:
    config = CONFIG.model_copy(update={"value_field": "data.contentLength"})
    (event,) = _parse("eventgrid_storage_blob_created_egschema.json", config).events  # type: ignore[attr-defined]
    assert event.value == 524288


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(EventRejected, match="JSON array of event objects"):
        EventGridReceiver(CONFIG).parse(EventRequest("POST", {}, b"[]"))


async def test_validation_by_url_gets_the_url_after_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    confirmed = asyncio.Event()

    async def validate(request: web.Request) -> web.Response:
        assert request.query["token"] == "1A1A1A1A"
        confirmed.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/eventsubscriptions/myeventsub/validate", validate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sample = json.loads(
        (WIRE / "eventgrid_subscription_validation_event_egschema.json").read_text()
    )
    # the sample's URL, pointed at the local stand-in (https is what Event Grid sends)
    url = sample[0]["data"]["validationUrl"].replace(
        "rp-eastus2.eventgrid.azure.net:553", f"localhost:{port}"
    )
    sample[0]["data"]["validationUrl"] = url
    extra = '\n[[events]]\nname = "grid-url"\nkind = "event-grid"\ntargets = ["workers"]\nvalidation = "url"\nsecret_env = "SCALERD_TEST_GRID"\n'
    try:
        async with served(tmp_path, config_text(extra=extra)) as running:
            hub = running.daemon.events
            assert hub is not None
            hub._http = downgrading = _plain_http()
            response = await running.http.post(
                "/events/grid-url",
                content=json.dumps(sample).encode(),
                headers={"X-Scalerd-Secret": SECRET, "aeg-event-type": "SubscriptionValidation"},
            )
            assert response.status_code == 200 and response.json() == {}
            await asyncio.wait_for(confirmed.wait(), 10)
            await hub.aclose()
            await downgrading.aclose()
    finally:
        await runner.cleanup()


def _plain_http() -> httpx.AsyncClient:
    """The validation URL is https; the stand-in speaks http on loopback."""

    class Downgrade(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(scheme="http")
            return await self._inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return httpx.AsyncClient(transport=Downgrade())
