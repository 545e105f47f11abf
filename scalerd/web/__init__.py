"""The on-call web page: an overview of every target, a timeline per target, one page per
decision, all server-rendered HTML and SVG from the audit records (no external assets)."""

from .describe import target_info
from .model import PageData, TargetInfo, Threshold, Timeline, build_timeline, why_in_words
from .routes import add_page_routes

__all__ = [
    "PageData",
    "TargetInfo",
    "Threshold",
    "Timeline",
    "add_page_routes",
    "build_timeline",
    "target_info",
    "why_in_words",
]
