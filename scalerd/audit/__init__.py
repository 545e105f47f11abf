"""The audit stream: one record per evaluation of a target, written and read back.

``record`` defines the record (README: the audit record), ``sinks`` where it is written (a JSON-lines
file, a Redis stream with a local spool, memory), ``readers`` how ``scalerd audit`` and
``scalerd explain`` read it back, and ``render`` how it is shown to on-call.
"""

from .readers import (
    AuditLog,
    JsonlAuditLog,
    StreamAuditLog,
    chain_breaks,
    follow_jsonl,
    follow_stream,
    last_record,
    read_jsonl,
    read_stream,
)
from .record import (
    ACTIONS,
    Action,
    AuditRecord,
    format_ts,
    new_record_id,
    parse_ts,
    secret_looking,
)
from .render import render_explanation, render_table
from .sinks import AuditSink, JsonlSink, MemorySink, RecentRecords, RedisStreamSink

__all__ = [
    "ACTIONS",
    "Action",
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "JsonlAuditLog",
    "JsonlSink",
    "MemorySink",
    "RecentRecords",
    "RedisStreamSink",
    "StreamAuditLog",
    "chain_breaks",
    "follow_jsonl",
    "follow_stream",
    "format_ts",
    "last_record",
    "new_record_id",
    "parse_ts",
    "read_jsonl",
    "read_stream",
    "render_explanation",
    "render_table",
    "secret_looking",
]
