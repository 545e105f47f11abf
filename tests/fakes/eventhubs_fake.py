"""A local Event Hubs namespace speaking AMQP 1.0 over TLS, as far as scalerd reads one.

The frames are Azure's, encoded and decoded with the AMQP codec that ships inside
``azure-eventhub`` (``azure.eventhub._pyamqp``), so the client under test is the real
``EventHubConsumerClient`` over a real socket. One connection goes through:

1. the SASL layer (``AMQP 3.1.0.0``): the server offers ``MSSBCBS`` and ``ANONYMOUS``,
   answers ``sasl-init`` with ``sasl-outcome`` ok;
2. the AMQP layer (``AMQP 0.1.0.0``): ``open``, ``begin``, then for each node the client
   attaches a sender and a receiver link (the management pattern);
3. ``$cbs``: a ``put-token`` request (application properties ``operation``, ``type``,
   ``name`` = the audience; body = the token) answered ``status-code`` 202, or 401 when
   tokens are refused (``reject_tokens``);
4. ``$management``: ``operation = READ`` with ``type = com.microsoft:eventhub`` (the hub's
   ``name``, ``created_at``, ``partition_ids``) or ``com.microsoft:partition`` (a
   partition's ``begin_sequence_number``, ``last_enqueued_sequence_number``,
   ``last_enqueued_offset``, ``last_enqueued_time_utc``, ``is_partition_empty``); a
   request must carry the ``security_token`` the client put on ``$cbs``. An unknown hub
   or partition is status 404 (``com.microsoft:entity-not-found``, as Event Hubs says it);
   ``busy(times)`` answers the next requests 503 ``com.microsoft:server-busy``.

Every management request is recorded (``requests``), without its token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from azure.eventhub._pyamqp import performatives
from azure.eventhub._pyamqp._decode import decode_frame, decode_payload
from azure.eventhub._pyamqp._encode import encode_frame, encode_payload
from azure.eventhub._pyamqp.constants import HEADER_FRAME, SASL_HEADER_FRAME
from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.message import Message, Properties
from azure.eventhub._pyamqp.outcomes import Accepted

__all__ = ["FakeEventHubs", "ManagementRequest"]

_AMQP_FRAME = b"\x00"
_SASL_FRAME = b"\x01"
_OPEN, _BEGIN, _ATTACH, _FLOW, _TRANSFER, _DISPOSITION, _DETACH, _END, _CLOSE = range(0x10, 0x19)
_SASL_INIT = 0x41
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class _Partition:
    begin: int
    last: int
    empty: bool


@dataclass
class _Hub:
    created_at: dt.datetime
    partitions: dict[str, _Partition]


@dataclass(frozen=True)
class ManagementRequest:
    """One request on ``$management``: its type, hub, partition and answered status."""

    type: str
    name: str
    partition: str | None
    status: int


@dataclass
class _Link:
    name: bytes
    handle: int
    address: str
    client_sends: bool
    delivery_count: int = 0


@dataclass
class _Session:
    channel: int
    links: dict[int, _Link] = field(default_factory=dict)  # by the client's handle
    next_outgoing_id: int = 0
    next_delivery_id: int = 0


class FakeEventHubs:
    """The AMQP server; ``FakeAzure`` starts one on a free loopback port with its TLS."""

    def __init__(self) -> None:
        self.requests: list[ManagementRequest] = []
        self.audiences: list[str] = []  # every put-token's audience
        self._hubs: dict[str, _Hub] = {}
        self._reject_tokens = False
        self._busy = 0
        self._tokens: set[str] = set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []
        self.port = 0

    # --------------------------------------------------------------------- what tests set

    def set_event_hub(self, name: str, partitions: dict[str, tuple[int, int] | None]) -> None:
        """Create or update a hub: partition id → (begin, last enqueued) sequence
        numbers, or None for a partition that holds no event (Event Hubs reports -1)."""
        self._hubs[name.lower()] = _Hub(
            dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC),
            {
                pid: _Partition(*span, empty=False) if span else _Partition(-1, -1, empty=True)
                for pid, span in partitions.items()
            },
        )

    def reject_tokens(self, reject: bool = True) -> None:
        """``$cbs`` answers every put-token 401, as for a wrong key or a missing role."""
        self._reject_tokens = reject

    def busy(self, times: int) -> None:
        """Answer the next ``times`` management requests 503 ``server-busy``."""
        self._busy = times

    # --------------------------------------------------------------------- lifecycle

    @contextlib.asynccontextmanager
    async def serving(self, tls: ssl.SSLContext) -> AsyncIterator[FakeEventHubs]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a bug in the fake: fail the test
            self.errors.append(error)
        finally:
            self._connections.discard(task)
            writer.close()

    # --------------------------------------------------------------------- requests

    def answer(self, address: str, request: Message) -> Message:
        """The response message to a request on node ``address``."""
        props = {_text(k): v for k, v in (request.application_properties or {}).items()}
        if address == "$cbs":
            return self._put_token(props, request)
        if address == "$management":
            return self._management(props)
        return _response(404, "The node does not exist.", "amqp:not-found")

    def _put_token(self, props: dict[str, Any], request: Message) -> Message:
        if _text(props.get("operation")) != "put-token":
            return _response(400, "Only put-token is supported.", "amqp:not-implemented")
        self.audiences.append(_text(props.get("name")))
        if self._reject_tokens:
            return _response(401, "InvalidSignature: The token has an invalid signature.")
        self._tokens.add(_text(request.value))
        return _response(202, "Accepted")

    def _management(self, props: dict[str, Any]) -> Message:
        kind, name = _text(props.get("type")), _text(props.get("name"))
        partition = props.get("partition")
        pid = _text(partition) if partition is not None else None

        def answered(status: int, *rest: Any) -> Message:
            self.requests.append(ManagementRequest(kind, name, pid, status))
            return _response(status, *rest)

        if _text(props.get("operation")) != "READ":
            return answered(400, "Only READ is supported.", "amqp:not-implemented")
        if _text(props.get("security_token")) not in self._tokens:
            return answered(401, "Unauthorized: no valid token was put on $cbs.")
        if self._busy:
            self._busy -= 1
            return answered(
                503,
                "The server is busy. Please try again later. TrackingId:fake, "
                f"SystemTracker:{name}, Timestamp:{_EPOCH.isoformat()}",
                "com.microsoft:server-busy",
            )
        hub = self._hubs.get(name.lower())
        if hub is None:
            return answered(
                404,
                f"The messaging entity '{name}' could not be found.",
                "com.microsoft:entity-not-found",
            )
        if kind == "com.microsoft:eventhub":
            body = {
                "name": name,
                "type": "com.microsoft:eventhub",
                "created_at": {"TYPE": "TIMESTAMP", "VALUE": _ms(hub.created_at)},
                "partition_count": len(hub.partitions),
                "partition_ids": {"TYPE": "ARRAY", "VALUE": list(hub.partitions)},
            }
            return answered(200, "OK", None, body)
        if kind == "com.microsoft:partition" and pid is not None:
            span = hub.partitions.get(pid)
            if span is None:
                return answered(
                    404,
                    f"The partition '{pid}' of '{name}' could not be found.",
                    "com.microsoft:entity-not-found",
                )
            last_time = hub.created_at + dt.timedelta(minutes=max(span.last, 0))
            body = {
                "name": name,
                "type": "com.microsoft:partition",
                "partition": pid,
                "begin_sequence_number": {"TYPE": "LONG", "VALUE": span.begin},
                "last_enqueued_sequence_number": {"TYPE": "LONG", "VALUE": span.last},
                "last_enqueued_offset": str(max(span.last, 0) * 512) if not span.empty else "-1",
                "last_enqueued_time_utc": {"TYPE": "TIMESTAMP", "VALUE": _ms(last_time)},
                "is_partition_empty": span.empty,
            }
            return answered(200, "OK", None, body)
        return answered(400, f"Unknown management type {kind!r}.", "amqp:not-implemented")


class _Connection:
    """One client connection: SASL, then AMQP frames until ``close``."""

    def __init__(
        self, fake: FakeEventHubs, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._fake = fake
        self._reader = reader
        self._writer = writer
        self._sessions: dict[int, _Session] = {}

    async def run(self) -> None:
        header = await self._reader.readexactly(8)
        if header == SASL_HEADER_FRAME:
            await self._sasl()
            header = await self._reader.readexactly(8)
        if header != HEADER_FRAME:
            self._writer.write(HEADER_FRAME)  # the version the server speaks, then close
            return
        self._writer.write(HEADER_FRAME)
        while True:
            frame = await self._frame()
            if frame is None:
                continue  # an empty (heartbeat) frame
            channel, performative, fields = frame
            if not await self._handle(channel, performative, fields):
                return

    async def _sasl(self) -> None:
        self._writer.write(SASL_HEADER_FRAME)
        self._send(0, performatives.SASLMechanism([b"MSSBCBS", b"ANONYMOUS"]), _SASL_FRAME)
        frame = await self._frame()
        assert frame is not None and frame[1] == _SASL_INIT, frame
        self._send(
            0, _performative(performatives.SASLOutcome, code=0, additional_data=None), _SASL_FRAME
        )

    async def _frame(self) -> tuple[int, int, list[Any]] | None:
        size = struct.unpack(">I", await self._reader.readexactly(4))[0]
        rest = await self._reader.readexactly(size - 4)
        doff, _frame_type, channel = rest[0], rest[1], struct.unpack(">H", rest[2:4])[0]
        body = memoryview(rest[doff * 4 - 4 :])
        if not body:
            return None
        performative, fields = decode_frame(body)
        return channel, performative, fields

    def _send(self, channel: int, frame: Any, frame_type: bytes = _AMQP_FRAME) -> None:
        header, data = encode_frame(frame, frame_type)
        # encode_frame leaves the channel bytes of its header at zero
        self._writer.write(header[:6] + struct.pack(">H", channel) + (data or b""))

    async def _handle(self, channel: int, performative: int, fields: list[Any]) -> bool:
        if performative == _OPEN:
            self._send(
                0,
                _performative(
                    performatives.OpenFrame,
                    container_id="fake-eventhubs",
                    hostname=None,
                    max_frame_size=65536,
                    channel_max=4999,
                    idle_timeout=None,
                ),
            )
        elif performative == _BEGIN:
            self._sessions[channel] = _Session(channel)
            self._send(
                channel,
                _performative(
                    performatives.BeginFrame,
                    remote_channel=channel,
                    next_outgoing_id=0,
                    incoming_window=5000,
                    outgoing_window=5000,
                    handle_max=255,
                ),
            )
        elif performative == _ATTACH:
            self._attach(self._sessions[channel], fields)
        elif performative == _TRANSFER:
            await self._transfer(self._sessions[channel], fields)
        elif performative == _DETACH:
            session = self._sessions[channel]
            session.links.pop(fields[0], None)
            self._send(
                channel, _performative(performatives.DetachFrame, handle=fields[0], closed=True)
            )
        elif performative == _END:
            self._sessions.pop(channel, None)
            self._send(channel, _performative(performatives.EndFrame, error=None))
        elif performative == _CLOSE:
            self._send(0, _performative(performatives.CloseFrame, error=None))
            await self._writer.drain()
            return False
        # flow and disposition from the client need no answer here
        await self._writer.drain()
        return True

    def _attach(self, session: _Session, fields: list[Any]) -> None:
        name, handle, client_is_receiver = fields[0], fields[1], fields[2]
        source, target = fields[5], fields[6]
        endpoint = source if client_is_receiver else target
        address = _text(endpoint[0]) if endpoint else ""
        link = _Link(name, handle, address, client_sends=not client_is_receiver)
        session.links[handle] = link
        self._send(
            session.channel,
            _performative(
                performatives.AttachFrame,
                name=name,
                handle=handle,
                role=not client_is_receiver,
                send_settle_mode=fields[3],
                rcv_settle_mode=fields[4],
                source=Source(address=_text(source[0])) if source else None,
                target=Target(address=_text(target[0])) if target else None,
                initial_delivery_count=0 if client_is_receiver else None,
                max_message_size=1024 * 1024,
            ),
        )
        if link.client_sends:  # credit for the requests
            self._send(
                session.channel,
                _performative(
                    performatives.FlowFrame,
                    next_incoming_id=0,
                    incoming_window=5000,
                    next_outgoing_id=session.next_outgoing_id,
                    outgoing_window=5000,
                    handle=handle,
                    delivery_count=0,
                    link_credit=100,
                ),
            )

    async def _transfer(self, session: _Session, fields: list[Any]) -> None:
        handle, delivery_id, settled, payload = fields[0], fields[1], fields[4], fields[-1]
        link = session.links[handle]
        request = decode_payload(payload)
        if not settled:
            self._send(
                session.channel,
                _performative(
                    performatives.DispositionFrame,
                    role=True,
                    first=delivery_id,
                    last=delivery_id,
                    settled=True,
                    state=Accepted(),
                    batchable=None,
                ),
            )
        response = self._fake.answer(link.address, request)
        request_id = request.properties.message_id if request.properties else None
        response = response._replace(properties=Properties(correlation_id=request_id))
        reply = next(
            (
                candidate
                for candidate in session.links.values()
                if not candidate.client_sends and candidate.address == link.address
            ),
            None,
        )
        assert reply is not None, f"no receiver link for {link.address}"
        body = bytearray()
        encode_payload(body, response)
        delivery = session.next_delivery_id
        session.next_delivery_id += 1
        session.next_outgoing_id += 1
        reply.delivery_count += 1
        self._send(
            session.channel,
            performatives.TransferFrame(
                handle=reply.handle,
                delivery_id=delivery,
                delivery_tag=delivery.to_bytes(4, "big"),
                message_format=0,
                settled=True,
                payload=bytes(body),
            ),
        )


def _performative(kind: Any, **fields: Any) -> Any:
    """A performative with the fields given; the others (no defaults in pyamqp) absent."""
    return kind(**{name: fields.get(name) for name in kind._fields})


def _response(
    status: int, description: str, condition: str | None = None, body: Any = None
) -> Message:
    properties: dict[str, Any] = {"status-code": status, "status-description": description}
    if condition is not None:
        properties["error-condition"] = condition
    return Message(application_properties=properties, value=body)


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8")
    return "" if value is None else str(value)


def _ms(moment: dt.datetime) -> int:
    return int((moment - _EPOCH).total_seconds() * 1000)
