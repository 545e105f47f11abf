"""Azure Resource Manager ids: what every Azure plugin's ``resource_id`` is parsed into.

Ops copy a resource id from the portal (*JSON view* or *Properties*) or from
``az resource show --query id``; the plugins take the subscription, resource group, type
and name from it, so one key says exactly which resource is read or scaled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ResourceId", "resource_id_of"]

_ARM_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/(?P<provider>[^/]+)/(?P<rest>[^?#]+?)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ResourceId:
    """``/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}[/{type}/{name}]``."""

    subscription: str
    resource_group: str
    provider: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ResourceId:
        match = _ARM_ID.match(text.strip())
        parts = match["rest"].split("/") if match else []
        if match is None or len(parts) % 2 or not all(parts):
            raise ValueError(
                f"not an Azure resource id: {text!r}; copy it from the portal (JSON view), "
                "e.g. '/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.App/"
                "containerApps/<name>'"
            )
        return cls(
            subscription=match["subscription"],
            resource_group=match["group"],
            provider=match["provider"],
            types=tuple(parts[0::2]),
            names=tuple(parts[1::2]),
        )

    @property
    def type(self) -> str:
        """The resource type as Azure Monitor names it, e.g. ``Microsoft.App/containerApps``."""
        return "/".join((self.provider, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    def __str__(self) -> str:
        pairs = "/".join(
            f"{kind}/{name}" for kind, name in zip(self.types, self.names, strict=True)
        )
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.provider}/{pairs}"
        )


def resource_id_of(resource_type: str) -> Callable[[str], str]:
    """A pydantic ``field_validator`` body: ``value`` must be an id of ``resource_type``.

    The id is kept as text (config stays plain data) in its canonical spelling.
    """

    def check(value: str) -> str:
        parsed = ResourceId.parse(value)
        if parsed.type.lower() != resource_type.lower():
            raise ValueError(f"must be the id of a {resource_type}, not of a {parsed.type}")
        return str(parsed)

    return check
