"""``scalerd import azure-autoscale``: a ``Microsoft.Insights/autoscalesettings`` (the REST
body, the ARM resource, an ARM template holding one, ``az monitor autoscale show`` output,
or a single rule). Threshold rules, their combination, cooldowns, flapping protection and
the instance limits are Azure's exactly; profiles become schedules of the bounds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from ..azure.ids import ResourceId
from ..core.durations import parse_duration
from ..sources.azure_monitor import TIME_GRAINS
from .documents import At, Located, load_documents
from .draft import Draft, Note, Section, decimal, seconds
from .kubernetes import target_name

__all__ = ["convert"]

_OPERATORS = {
    "GreaterThan": ">",
    "GreaterThanOrEqual": ">=",
    "LessThan": "<",
    "LessThanOrEqual": "<=",
    "Equals": "==",
    "NotEquals": "!=",
}
_TIME_AGGREGATION = {
    "Average": "avg",
    "Minimum": "min",
    "Maximum": "max",
    "Total": "total",
    "Count": "count",
    "Last": "last",
}
_STATISTIC = {
    "Average": "average",
    "Min": "minimum",
    "Max": "maximum",
    "Sum": "total",
    "Count": "count",
}
# .NET's DayOfWeek, which the REST examples use when they write days as numbers; cron's too
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_PLACEHOLDER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def convert(path: Path) -> Draft:
    (document,) = load_documents(path)[:1]
    at = At(path, (), getattr(document, "line", None))
    setting, here, location = _setting(document, at)
    name = target_name(str(setting.get("name") or document.get("name") or path.stem))
    draft = Draft(
        kind="azure-autoscale",
        origin=f"{path.name}: autoscale setting {name}",
        anchor="azure-autoscale",
    )
    profiles = list(here.items(setting, "profiles"))
    if not profiles:
        raise here.fail("an autoscale setting needs at least one profile")
    base, base_at = _base_profile(profiles)
    notes: list[Note] = []
    if "recurrence" in base or "fixedDate" in base:
        notes.append(
            Note(
                f"profile {base.get('name')!r}",
                "the setting has no profile without a schedule: its bounds and rules are "
                "used at all times, the other profiles as schedules over them",
            )
        )
    capacity = base_at.mapping(base, "capacity")
    cap_at = base_at.down("capacity", base)
    values: dict[str, Any] = {
        "name": name,
        "actuator": _actuator(draft, name, setting, here),
        # autoscale evaluates its rules about once a minute
        "interval": "60s",
        "min": cap_at.whole(capacity, "minimum"),
        "max": cap_at.whole(capacity, "maximum"),
        "default": cap_at.whole(capacity, "default"),
        "flapping_protection": True,
    }
    if values["max"] < 1 or values["min"] > values["max"]:
        raise cap_at.fail(f"minimum ({values['min']}) must be ≤ maximum ({values['max']})")
    if setting.get("enabled") is False:
        values["pause"] = "all"
        notes.append(Note("enabled: false", "imported paused; remove `pause` to let it act"))
    metrics: dict[str, str] = {}
    thresholds = []
    for rule, where in base_at.items(base, "rules"):
        imported = _rule(draft, rule, where, location, metrics, notes)
        if imported is not None:
            thresholds.append(imported)
    schedules = _schedules(profiles, base, notes)
    if thresholds:
        values["threshold"] = thresholds
    elif not schedules:
        raise here.fail(
            "no rule can be imported, so scalerd would have nothing to scale on: "
            + "; ".join(f"{note.construct}: {note.reason}" for note in notes if note.dropped)
        )
    else:
        notes.append(
            Note("rules", "no rule was imported: only the profiles' bounds move the target")
        )
    if schedules:
        values["schedule"] = schedules
    if metrics:
        values["metrics"] = metrics
    for key in ("notifications",):
        if setting.get(key):
            notes.append(
                Note(
                    key,
                    "scalerd's notifications are configured separately ([[notify]]), not per setting",
                    {key: setting[key]},
                )
            )
    predictive = setting.get("predictiveAutoscalePolicy") or {}
    if isinstance(predictive, dict) and predictive.get("scaleMode") not in (None, "Disabled"):
        notes.append(
            Note(
                "predictiveAutoscalePolicy",
                "Azure's predictive autoscale has no equivalent here",
                {"predictiveAutoscalePolicy": predictive},
            )
        )
    values["simulate"] = {
        # platform metrics reach autoscale minutes late, as rules/azure-autoscale.toml models
        "metric_delay": "3m",
        "metrics": {
            metric: "utilization"
            for metric in metrics
            if "percent" in metric.lower() or "cpu" in metric.lower()
        },
    }
    if not values["simulate"]["metrics"]:
        del values["simulate"]["metrics"]
    draft.targets.append(Section(values, notes))
    return draft


def _setting(document: Any, at: At) -> tuple[Any, At, str | None]:
    """The settings object with ``profiles`` in any of the shapes Azure hands out."""
    if not isinstance(document, dict):
        raise at.fail("expected a JSON object")
    location = document.get("location")
    if "resources" in document:  # an ARM template
        for resource, where in at.items(document, "resources"):
            if (
                isinstance(resource, dict)
                and str(resource.get("type", "")).lower() == "microsoft.insights/autoscalesettings"
            ):
                properties = where.mapping(resource, "properties")
                return properties, where.down("properties", resource), resource.get("location")
        raise at.fail("the template has no Microsoft.Insights/autoscaleSettings resource")
    if "properties" in document and "profiles" in document["properties"]:
        return document["properties"], at.down("properties", document), location
    if "profiles" in document:
        return document, at, location
    if "metricTrigger" in document and "scaleAction" in document:  # one rule
        wrapped = Located(
            {
                "name": at.file.stem,
                "profiles": [
                    {
                        "name": "rule",
                        "capacity": {"minimum": 1, "maximum": 10, "default": 1},
                        "rules": [document],
                    }
                ],
            }
        )
        return wrapped, at, None
    raise at.fail(
        "not an autoscale setting: no profiles (nor a rule with metricTrigger and scaleAction)"
    )


def _base_profile(profiles: list[tuple[Any, At]]) -> tuple[Any, At]:
    """The profile in force when no schedule is: the one with neither recurrence nor fixed
    date; else an 'Auto created default scale condition'; else the first."""
    for profile, at in profiles:
        if "recurrence" not in profile and "fixedDate" not in profile:
            return profile, at
    for profile, at in profiles:
        if _default_for(profile) is not None:
            return profile, at
    return profiles[0]


def _default_for(profile: Any) -> str | None:
    """The CLI names the default profile it creates beside a recurring one with a JSON
    string: ``{"name": "Auto created default scale condition", "for": "<profile>"}``."""
    import json

    try:
        name = json.loads(str(profile.get("name", "")))
    except (ValueError, TypeError):
        return None
    return str(name.get("for")) if isinstance(name, dict) and "for" in name else None


def _actuator(draft: Draft, name: str, setting: Any, at: At) -> str:
    uri = setting.get("targetResourceUri")
    kind = None
    if isinstance(uri, str):
        try:
            kind = ResourceId.parse(uri).type.lower()
        except ValueError:
            kind = None
    if kind == "microsoft.app/containerapps":
        draft.actuators.append(
            Section(
                {"name": name, "kind": "azure-container-apps", "resource_id": uri, "mode": "pin"}
            )
        )
        return name
    draft.actuators.append(
        Section(
            {"name": name, "kind": "recording"},
            [
                Note(
                    f"targetResourceUri {uri}",
                    f"scalerd has no actuator for {kind or 'this resource'}: this recording "
                    "actuator decides and audits without changing anything",
                )
            ],
        )
    )
    return name


def _rule(
    draft: Draft,
    rule: Any,
    at: At,
    location: str | None,
    metrics: dict[str, str],
    notes: list[Note],
) -> dict[str, Any] | None:
    trigger = at.mapping(rule, "metricTrigger")
    here = at.down("metricTrigger", rule)
    action = at.mapping(rule, "scaleAction")
    there = at.down("scaleAction", rule)
    metric = here.text(trigger, "metricName")
    if trigger.get("dividePerInstance"):
        notes.append(
            Note(
                f"rule on {metric} with dividePerInstance",
                "scalerd compares the metric itself with the threshold and cannot divide it "
                "by the instance count first",
                dict(rule),
            )
        )
        return None
    if trigger.get("dimensions") or trigger.get("Dimensions"):
        dimensions = trigger.get("dimensions") or trigger.get("Dimensions")
    else:
        dimensions = []
    operator = here.text(trigger, "operator")
    if operator not in _OPERATORS:
        raise here.down("operator", trigger).fail(
            f"unknown operator {operator!r} ({', '.join(_OPERATORS)})"
        )
    aggregation = here.text(trigger, "timeAggregation")
    if aggregation not in _TIME_AGGREGATION:
        raise here.down("timeAggregation", trigger).fail(
            f"unknown time aggregation {aggregation!r}"
        )
    window = _duration(here, trigger, "timeWindow")
    direction = there.text(action, "direction")
    if direction not in ("Increase", "Decrease"):
        raise there.down("direction", action).fail(
            f"direction is Increase or Decrease, got {direction!r}"
        )
    kind = there.text(action, "type")
    amount = there.number(action, "value")
    sign = "+" if direction == "Increase" else "-"
    if kind == "ChangeCount":
        scale = f"{sign}{decimal(amount)}"
    elif kind == "PercentChangeCount":
        scale = f"{sign}{decimal(amount)}%"
    elif kind == "ExactCount":
        scale = f"={decimal(amount)}"
    else:
        notes.append(
            Note(f"rule on {metric}: scaleAction {kind}", "no equivalent action", dict(rule))
        )
        return None
    source_key = _source(draft, trigger, here, location, window, dimensions, notes)
    condition_metric = _metric_name(metric, source_key, metrics)
    threshold = here.number(trigger, "threshold")
    imported: dict[str, Any] = {
        "when": f"{condition_metric} {_OPERATORS[operator]} {decimal(threshold)} "
        f"{_TIME_AGGREGATION[aggregation]} {seconds(window.total_seconds())}",
        "action": scale,
        "cooldown": seconds(_duration(there, action, "cooldown").total_seconds()),
    }
    if kind == "ExactCount":
        imported["direction"] = "out" if direction == "Increase" else "in"
    return imported


def _metric_name(metric: str, source: str, metrics: dict[str, str]) -> str:
    """The name a condition uses for the metric: Azure's own name, unless another source
    already took it (the same metric with another statistic or resource)."""
    name, count = metric, 2
    while name in metrics and metrics[name] != source:
        name, count = f"{metric} #{count}", count + 1
    metrics[name] = source
    return name


def _source(
    draft: Draft,
    trigger: Any,
    at: At,
    location: str | None,
    window: timedelta,
    dimensions: Any,
    notes: list[Note],
) -> str:
    uri = at.text(trigger, "metricResourceUri")
    try:
        ResourceId.parse(uri)
    except ValueError:
        notes.append(
            Note(f"metricResourceUri {uri}", "not a resource id: fill in the resource it reads")
        )
        uri = f"/subscriptions/{_PLACEHOLDER_SUBSCRIPTION}/resourceGroups/FILL-IN/providers/FILL/IN/{target_name(at.file.stem)}"
    region = trigger.get("metricResourceLocation") or location
    if not isinstance(region, str) or not region.isalnum():
        notes.append(
            Note(
                "the metric's region",
                "the file does not say it: set region to the resource's region",
            )
        )
        region = "FILL-IN"
    statistic = at.text(trigger, "statistic")
    if statistic not in _STATISTIC:
        raise at.down("statistic", trigger).fail(f"unknown statistic {statistic!r}")
    metric = at.text(trigger, "metricName")
    grain = _duration(at, trigger, "timeGrain")
    read_grain = max(
        (g for g in TIME_GRAINS if g <= grain and grain % g == timedelta(0)), default=TIME_GRAINS[0]
    )
    if read_grain != grain:
        notes.append(
            Note(
                f"timeGrain {at.text(trigger, 'timeGrain')} of {metric}",
                f"the metrics API serves standard grains only: read as {seconds(read_grain.total_seconds())} "
                "grains, which the condition then aggregates over its window",
            )
        )
    values: dict[str, Any] = {
        "name": target_name(f"{ResourceId.parse(uri).name}-{metric}".lower()),
        "kind": "azure-monitor",
        "resource_id": uri,
        "region": region,
        "metric": metric,
        "aggregation": _STATISTIC[statistic],
        "interval": seconds(read_grain.total_seconds()),
        "window": seconds(window.total_seconds()),
    }
    if trigger.get("metricNamespace"):
        values["namespace"] = str(trigger["metricNamespace"])
    filters = [_dimension(d) for d in dimensions if isinstance(d, dict)]
    if filters:
        values["filter"] = " and ".join(filters)
    for section in draft.sources:
        same = {k: v for k, v in section.values.items() if k not in ("name", "window")}
        if same == {k: v for k, v in values.items() if k not in ("name", "window")}:
            if parse_seconds(section.values["window"]) < window.total_seconds():
                section.values["window"] = values["window"]
            return section.name
    return draft.source(values)


def parse_seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def _dimension(dimension: Any) -> str:
    name = dimension.get("DimensionName") or dimension.get("dimensionName")
    values = dimension.get("Values") or dimension.get("values") or []
    negate = str(dimension.get("Operator") or dimension.get("operator")) == "NotEquals"
    op = "ne" if negate else "eq"
    joined = (" and " if negate else " or ").join(f"{name} {op} '{value}'" for value in values)
    return f"({joined})" if len(values) > 1 else joined


def _duration(at: At, mapping: Any, key: str) -> timedelta:
    text = at.text(mapping, key)
    try:
        value = parse_duration(text)
    except ValueError:
        raise at.down(key, mapping).fail(
            f"not an ISO 8601 duration: {text!r} (e.g. 'PT5M')"
        ) from None
    if value <= timedelta(0):
        raise at.down(key, mapping).fail(
            f"expected a positive duration of days and times, got {text!r}"
        )
    return value


# --- profiles → schedules -------------------------------------------------------------


def _schedules(
    profiles: list[tuple[Any, At]], base: Any, notes: list[Note]
) -> list[dict[str, Any]]:
    recurring = [(p, at, _recurrence(p, at)) for p, at in profiles if "recurrence" in p]
    schedules = []
    for profile, at, (cron, zone) in recurring:
        if profile is base:
            continue
        others = sorted({c for p, _, (c, z) in recurring if p is not profile and z == zone})
        schedule = _bounds(profile, at, str(profile.get("name") or cron))
        schedule |= {"cron": cron, "timezone": zone}
        if others:
            # a recurring profile lasts until the next profile starts (Azure has no end time)
            end, exact = _union(others)
            schedule["end"] = end
            if not exact:
                notes.append(
                    Note(
                        f"profile {profile.get('name')!r}: its end",
                        "the profiles after it start at different times of day, which one cron "
                        f"cannot say: it ends at the first of them ({end})",
                    )
                )
        else:
            schedule["duration"] = "7d"
            notes.append(
                Note(
                    f"profile {profile.get('name')!r}",
                    "no other recurring profile ends it: Azure keeps it on from its first start; "
                    "scalerd reopens it every week, which is the same once it has started",
                )
            )
        _different_rules(profile, base, notes)
        schedules.append(schedule)
    for profile, at in profiles:
        if "fixedDate" in profile and profile is not base:
            schedule = _bounds(profile, at, str(profile.get("name") or "fixed date"))
            fixed = at.mapping(profile, "fixedDate")
            here = at.down("fixedDate", profile)
            zone = _zone(here, fixed)
            start, until = _instant(here, fixed, "start", zone), _instant(here, fixed, "end", zone)
            if until <= start:
                raise here.fail("fixedDate ends before it starts")
            schedule |= {
                "cron": f"{start.minute} {start.hour} {start.day} {start.month} *",
                "duration": seconds((until - start).total_seconds()),
                "timezone": zone,
            }
            notes.append(
                Note(
                    f"profile {profile.get('name')!r} fixedDate {start:%Y-%m-%d}",
                    "cron has no year: scalerd opens this window on the same date every year; "
                    "remove it after it has passed",
                )
            )
            _different_rules(profile, base, notes)
            schedules.append(schedule)
    return schedules


def _bounds(profile: Any, at: At, name: str) -> dict[str, Any]:
    capacity = at.mapping(profile, "capacity")
    here = at.down("capacity", profile)
    bounds = {
        "min": here.whole(capacity, "minimum"),
        "max": here.whole(capacity, "maximum"),
        "default": here.whole(capacity, "default"),
    }
    if _default_for(profile) is not None:
        name = f"default (after {_default_for(profile)})"
    return {"name": name, **bounds}


def _different_rules(profile: Any, base: Any, notes: list[Note]) -> None:
    if _plain(profile.get("rules") or []) != _plain(base.get("rules") or []):
        notes.append(
            Note(
                f"profile {profile.get('name')!r}: its own rules",
                "a scalerd schedule changes the bounds, not the rules: the rules of the "
                "default profile apply all the time",
                {"rules": profile.get("rules") or []},
            )
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _recurrence(profile: Any, at: At) -> tuple[str, str]:
    recurrence = at.mapping(profile, "recurrence")
    here = at.down("recurrence", profile)
    frequency = here.text(recurrence, "frequency", "Week")
    if frequency != "Week":
        raise here.down("frequency", recurrence).fail(
            f"Azure supports only Week, got {frequency!r}"
        )
    schedule = here.mapping(recurrence, "schedule")
    there = here.down("schedule", recurrence)
    days = []
    for day, where in there.items(schedule, "days"):
        days.append(_day(day, where))
    hours = [
        str(there.down("hours", schedule).whole({"h": h}, "h")) for h in schedule.get("hours", [0])
    ]
    minutes = [
        str(there.down("minutes", schedule).whole({"m": m}, "m"))
        for m in schedule.get("minutes", [0])
    ]
    if not days:
        raise there.down("days", schedule).fail("a weekly recurrence names at least one day")
    cron = (
        f"{','.join(minutes)} {','.join(hours)} * * {','.join(str(d) for d in sorted(set(days)))}"
    )
    return cron, _zone(there, schedule)


def _day(day: Any, at: At) -> int:
    text = str(day).strip()
    if text.isdigit() and int(text) < 7:
        return int(text)
    for index, name in enumerate(_DAYS):
        if text.lower() in (name.lower(), name[:3].lower()):
            return index
    raise at.fail(f"not a day: {day!r} (a name such as 'Monday', or 0-6 from Sunday)")


def _zone(at: At, mapping: Any) -> str:
    name = at.text(mapping, "timeZone", "UTC")
    if name in win_tz:
        zone = str(win_tz[name])
        return "UTC" if zone == "Etc/UTC" else zone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise at.down("timeZone", mapping).fail(f"unknown time zone {name!r}") from None
    return str(name)


def _instant(at: At, mapping: Any, key: str, zone: str) -> datetime:
    text = at.text(mapping, key)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise at.down(key, mapping).fail(f"not a date and time: {text!r}") from None
    # Azure reads a fixed date in the profile's time zone
    value = value.replace(tzinfo=None)
    return value.replace(tzinfo=ZoneInfo(zone))


def _union(crons: list[str]) -> tuple[str, bool]:
    """One cron firing at each of several weekly starts, and whether it is exact: it is
    when they share the time of day; otherwise it is the earliest in the week."""
    if len(crons) == 1:
        return crons[0], True
    times = {tuple(c.split()[:2]) for c in crons}
    if len(times) == 1:
        minute, hour = next(iter(times))
        days = sorted({d for c in crons for d in c.split()[4].split(",")}, key=int)
        return f"{minute} {hour} * * {','.join(days)}", True
    return min(crons, key=lambda c: (min(int(d) for d in c.split()[4].split(",")), c)), False
