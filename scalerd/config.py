"""``config.toml`` → validated, frozen configuration, once, at the edge.

Layout of the file::

    [daemon] [redis] [audit] [state] [cluster] [azure] [simulate]   daemon-wide settings
    [[sources]]    kind + name + the source plugin's keys
    [[actuators]]  kind + name + the actuator plugin's keys
    [[targets]]    name, actuator, rules = "rules/x.toml" (optional include), the rule
                   keys of scalerd.core.rules.Rule, [targets.metrics] (metric → source)
    [[events]]     kind + name + the event kind's keys (scalerd.events)
    [[notify]]     kind + name + the sink's keys (scalerd.notify)

A rule file holds the rule keys of one target (and an optional ``[simulate]``). A target
that includes one may override any of its keys: tables merge key by key, everything else
is replaced.

Every problem is reported — all of them, not the first — as ``file:line: key.path:
message``; a TOML syntax error names its line; nothing invalid is replaced by a default.
"""

from __future__ import annotations

import copy
import difflib
import functools
import gc
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import tomli
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .core.durations import Duration
from .core.rules import Calendar, Condition, MetricSpec, Rule, TargetSpec
from .errors import ConfigError, ConfigIssue
from .plugins import ActuatorConfig, PluginConfig, Registry, SourceConfig, VerticalConfig
from .schedules import CronCalendar, cron_trigger
from .settings import (
    AuditSettings,
    AzureSettings,
    ClusterSettings,
    DaemonSettings,
    RedisSettings,
    SimulateSettings,
    StateSettings,
)
from .tomlpaths import KeyPath, TomlLines, format_path

if typing.TYPE_CHECKING:
    from .events import EventConfig
    from .notify import NotifyConfig

__all__ = ["Config", "RuleFile", "Target", "TargetConfig", "load_config", "load_rule_file"]

# where an error at a key path below a model was written: file, full key path, suffix
Placer = typing.Callable[[KeyPath], tuple[Path, KeyPath, str]]

# the cooldown of a target on a ladder of tiers (a database, a cache) when none is set
VERTICAL_COOLDOWN = {"up": "15m", "down": "1h"}

# a maintenance window holds both directions unless the actuator says otherwise
_BOTH_WAYS = frozenset({"up", "down"})

# keys a [[targets]] entry has besides the rule keys; a rule file may not set them
_BINDING_KEYS = ("name", "actuator", "rules", "metrics", "min_event_gap", "shadow")


class TargetConfig(Rule):
    """A ``[[targets]]`` entry: a rule plus what it scales and where its metrics come from."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # the target's name (letters, digits, _ . : -), as the audit and the API name it
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    # the [[actuators]] entry that scales it
    actuator: str = Field(min_length=1)
    # a rule file to include (rules/x.toml); keys set here override its keys
    rules: str | None = None
    # metric name used by the rules → source name (a metric with no entry reads the
    # source of the same name)
    metrics: dict[str, str] = Field(default_factory=dict)
    # pushed events evaluate this target at most once per gap (they coalesce meanwhile)
    min_event_gap: Duration | None = None
    # a candidate rule file (rules/candidate.toml) decided beside the live rules on the
    # same readings every evaluation and never acted on; `scalerd shadow report` compares
    shadow: str | None = None


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    daemon: DaemonSettings = DaemonSettings()
    redis: RedisSettings | None = None
    audit: AuditSettings = AuditSettings()
    state: StateSettings = StateSettings()
    cluster: ClusterSettings = ClusterSettings()
    azure: AzureSettings | None = None
    simulate: SimulateSettings = SimulateSettings()


class RuleFile(Rule):
    """A rule file read on its own: the rule, and the ``[simulate]`` capacity model to
    replay it against (merged over the defaults)."""

    simulate: SimulateSettings = SimulateSettings()


@dataclass(frozen=True)
class Target:
    """One validated target: the core's spec plus the configs of what it is wired to."""

    spec: TargetSpec
    config: TargetConfig
    actuator: ActuatorConfig
    # metric name → the source config it reads
    sources: Mapping[str, SourceConfig]
    simulate: SimulateSettings
    # where the rule came from (for summaries): the included file, if any
    rule_file: Path | None = None
    # the candidate rule of ``shadow = "..."``, bound to the same metrics
    shadow: TargetSpec | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identity(self) -> str:
        """Stable across reloads while the target scales the same thing: its state (windows,
        cooldowns, scale events) is kept when this is unchanged."""
        return f"{self.spec.name}|{self.actuator.kind}|{self.actuator.name}"


@dataclass(frozen=True)
class Config:
    path: Path
    daemon: DaemonSettings
    redis: RedisSettings | None
    audit: AuditSettings
    state: StateSettings
    cluster: ClusterSettings
    azure: AzureSettings | None
    simulate: SimulateSettings
    sources: Mapping[str, SourceConfig]
    actuators: Mapping[str, ActuatorConfig]
    targets: tuple[Target, ...]
    # hash of the effective configuration, stamped on every audit record
    version: str
    calendar: Calendar = field(repr=False, default_factory=CronCalendar)
    events: Mapping[str, EventConfig] = field(default_factory=dict)
    notify: Mapping[str, NotifyConfig] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise KeyError(f"no target named {name!r} in {self.path} (targets: {known})")

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.base_dir / path


def load_config(
    path: str | Path,
    *,
    sources: Registry[Any] | None = None,
    actuators: Registry[Any] | None = None,
) -> Config:
    """Read, merge and validate ``path``; raise :class:`ConfigError` listing every problem."""
    if sources is None or actuators is None:
        from .actuators import ACTUATORS
        from .sources import SOURCES

        sources = sources or SOURCES
        actuators = actuators or ACTUATORS
    # A load makes millions of objects and no garbage cycles: the collector's full passes
    # over them would cost 40 % of a 10,000-target load, for nothing
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Loader(Path(path), sources, actuators).load()
    finally:
        if collecting:
            gc.enable()


def load_rule_file(path: str | Path) -> RuleFile:
    """Validate one rule file on its own (``scalerd check``/``simulate`` of a preset)."""
    file = Path(path)
    issues = _Issues()
    raw = issues.parse(file)
    if raw is None:
        raise ConfigError(issues.items)
    for key in _BINDING_KEYS:
        if key in raw:
            issues.add(
                file, (key,), f"'{key}' belongs in the [[targets]] entry, not in a rule file"
            )
    try:
        rule = _validate(RuleFile, raw)
    except ValidationError as error:
        issues.from_validation(error, RuleFile, lambda loc: (file, loc, ""))
        # as for a target: the valid keys still meet the cross-key checks
        rule = _valid_part(RuleFile, raw, error)
        for key, message in _bounds_problems(rule):
            issues.add(file, (key,), message)
    for index, schedule in enumerate(rule.schedule):
        issues.check_cron(file, ("schedule", index), schedule.cron, schedule.end, schedule.timezone)
    if issues.items:
        raise ConfigError(issues.items)
    return rule


# --- the loader --------------------------------------------------------------------------


@dataclass
class _Include:
    file: Path
    raw: dict[str, Any]
    # its rule keys and its [simulate] table, which a target's keys are merged over
    parts: tuple[dict[str, Any], dict[str, Any]]


class _Issues:
    """Collects problems and knows how to place each on its file and line."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []
        self._texts: dict[Path, TomlLines] = {}

    def parse(self, file: Path) -> dict[str, Any] | None:
        try:
            data = file.read_bytes()
        except OSError as error:
            self.items.append(ConfigIssue(str(file), None, "", f"cannot read: {error.strerror}"))
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            self.items.append(
                ConfigIssue(str(file), line, "", f"not UTF-8 text: byte {data[error.start]:#x}")
            )
            return None
        try:
            # tomli is tomllib's own source, compiled: the same documents, the same
            # messages, a 10,000-target file parsed three times faster
            raw: dict[str, Any] | None = tomli.loads(text)
        except tomli.TOMLDecodeError as error:
            self.items.append(_syntax_error(file, text, str(error)))
            return None
        except RecursionError:  # tomli parses nested arrays and tables recursively
            raw = None
        except ValueError:  # an integer of more than 4300 digits (int()'s own limit)
            huge = re.search(r"\d{4301,}", text)
            where = text.count("\n", 0, huge.start()) + 1 if huge else None
            self.items.append(ConfigIssue(str(file), where, "", "a number far too long"))
            return None
        deep = _too_deep(text)
        if raw is None or deep is not None:
            self.items.append(
                ConfigIssue(
                    str(file),
                    deep or 1,
                    "",
                    f"TOML syntax error: arrays or tables nested more than {_MAX_NESTING} deep",
                )
            )
            return None
        self._texts[file] = TomlLines(text)
        return raw

    def add(self, file: Path, path: KeyPath, message: str, suffix: str = "") -> None:
        lines = self._texts.get(file)
        line = lines.line(path) if lines is not None else None
        self.items.append(ConfigIssue(str(file), line, format_path(path), message + suffix))

    def from_validation(
        self,
        error: ValidationError,
        model: type[BaseModel],
        place: Placer,
    ) -> None:
        for detail in error.errors(include_url=False):
            loc: KeyPath = tuple(detail["loc"])
            message, below = _describe(detail, model, loc)
            file, path, suffix = place((*loc, *below))
            self.add(file, path, message, suffix)

    def check_cron(
        self, file: Path, path: KeyPath, cron: str, end: str | None, timezone: str, suffix: str = ""
    ) -> None:
        for key, expression in (("cron", cron), ("end", end)):
            if expression is None:
                continue
            try:
                trigger = cron_trigger(expression, timezone)
            except ValueError as problem:
                self.add(file, (*path, key), f"invalid cron expression: {problem}", suffix)
                continue
            if not _fires(trigger):
                self.add(
                    file,
                    (*path, key),
                    f"cron expression {expression!r} never fires: no date matches its "
                    "day of month, month and day of week (e.g. 30 February)",
                    suffix,
                )


# deeper than any config needs, and than pydantic's JSON parser takes (200 levels)
_MAX_NESTING = 150


def _too_deep(text: str) -> int | None:
    """The line on which brackets first nest more than ``_MAX_NESTING`` deep, if any
    (brackets in strings count too: no config comes near the limit)."""
    depth = 0
    for bracket in _BRACKETS.finditer(text):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > _MAX_NESTING:
            return text.count("\n", 0, bracket.start()) + 1
    return None


_BRACKETS = re.compile(r"[\[\]{}]")


def _syntax_error(file: Path, text: str, error: str) -> ConfigIssue:
    """tomli's message with its position as ``file:line``; "at end of document" (a file
    cut short) names the last line."""
    match = re.search(r"\(at line (\d+), column (\d+)\)", error)
    if match:
        message = f"{error[: match.start()].rstrip()} (column {match.group(2)})"
        return ConfigIssue(str(file), int(match.group(1)), "", f"TOML syntax error: {message}")
    message = error.replace("(at end of document)", "(the file ends here)")
    last = len(text.rstrip("\n").splitlines()) or 1
    return ConfigIssue(str(file), last, "", f"TOML syntax error: {message}")


class _Loader:
    def __init__(self, path: Path, sources: Registry[Any], actuators: Registry[Any]) -> None:
        self.path = path
        self.source_plugins = sources
        self.actuator_plugins = actuators
        self.issues = _Issues()
        self.includes: dict[int, _Include] = {}
        self.rule_files: dict[Path, _Include | None] = {}
        self.inline: dict[int, dict[str, Any]] = {}
        # names of [[sources]] / [[actuators]] entries that are invalid (already reported):
        # a target using one is not reported again as using something undefined
        self.invalid: set[str] = set()
        self.simulate_section: dict[str, Any] = {}
        self.target_configs = _TargetConfigs()
        self.shared: dict[tuple[type, Any], Any] = {}
        self.shared_mappings: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}

    def load(self) -> Config:
        raw = self.issues.parse(self.path)
        if raw is None:
            raise ConfigError(self.issues.items)
        settings = self._settings(raw)
        simulate = raw.get("simulate", {})
        self.simulate_section = simulate if isinstance(simulate, dict) else {}
        sources = self._plugins(raw, "sources", self.source_plugins, SourceConfig)
        actuators = self._plugins(raw, "actuators", self.actuator_plugins, ActuatorConfig)
        calendar = CronCalendar()
        targets = self._targets(raw, settings, sources, actuators, calendar)
        from .events import EVENTS, EventConfig
        from .notify import NOTIFY, NotifyConfig

        events = self._plugins(raw, "events", EVENTS, EventConfig)
        notify = self._plugins(raw, "notify", NOTIFY, NotifyConfig)
        self._check_events(raw, events, targets)
        self._check_names(raw, "notify", notify, targets)
        if self.issues.items:
            raise ConfigError(self.issues.items)
        assert settings is not None
        return Config(
            path=self.path,
            daemon=settings.daemon,
            redis=settings.redis,
            audit=settings.audit,
            state=settings.state,
            cluster=settings.cluster,
            azure=settings.azure,
            simulate=settings.simulate,
            sources=sources,
            actuators=actuators,
            targets=tuple(targets),
            version=_version(
                settings,
                {
                    **sources,
                    **{f"events:{name}": entry for name, entry in events.items()},
                    **{f"notify:{name}": entry for name, entry in notify.items()},
                },
                actuators,
                targets,
            ),
            calendar=calendar,
            events=events,
            notify=notify,
        )

    # --- sections -------------------------------------------------------------------

    def _settings(self, raw: dict[str, Any]) -> _Settings | None:
        known = set(_Settings.model_fields) | {
            "sources",
            "actuators",
            "targets",
            "events",
            "notify",
        }
        for key in raw:
            if key not in known:
                self.issues.add(self.path, (key,), _unknown_key(key, sorted(known)))
        section = {key: value for key, value in raw.items() if key in _Settings.model_fields}
        try:
            return _validate(_Settings, section)
        except ValidationError as error:
            self.issues.from_validation(error, _Settings, lambda loc: (self.path, loc, ""))
            return None

    def _check_events(
        self, raw: dict[str, Any], events: Mapping[str, EventConfig], targets: Sequence[Target]
    ) -> None:
        """Every target an ``[[events]]`` entry names exists, and one of them reads its
        ``metric`` (an event's value goes to the targets that read it)."""
        by_name = {target.name: target for target in targets}
        self._check_names(raw, "events", events, targets)
        for index, entry in self._entries(raw, "events"):
            config = events.get(str(entry.get("name")))
            if config is None:
                continue
            named = config.target_names() & set(by_name)
            if (
                config.metric is not None
                and named
                and not any(config.metric in by_name[name].spec.metrics for name in named)
            ):
                self.issues.add(
                    self.path,
                    ("events", index, "metric"),
                    f"no target of this entry reads metric {config.metric!r}",
                )

    def _check_names(
        self,
        raw: dict[str, Any],
        section: str,
        entries: Mapping[str, Any],
        targets: Sequence[Target],
    ) -> None:
        """Every target an ``[[events]]`` / ``[[notify]]`` entry names is defined."""
        defined = [target.name for target in targets]
        for index, entry in self._entries(raw, section):
            config = entries.get(str(entry.get("name")))
            for name in sorted(config.target_names() - set(defined)) if config else ():
                self.issues.add(
                    self.path,
                    (section, index, "targets"),
                    f"target {name!r} is not defined (targets: {', '.join(defined) or 'none'})",
                )

    def _entries(self, raw: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
        value = raw.get(section, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.issues.add(
                self.path, (section,), f"must be an array of tables: write [[{section}]] entries"
            )
            return []
        return list(enumerate(value))

    def _plugins(
        self,
        raw: dict[str, Any],
        section: str,
        registry: Registry[Any],
        base: type[PluginConfig],
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for index, entry in self._entries(raw, section):
            kind = entry.get("kind")
            if isinstance(entry.get("name"), str):
                self.invalid.add(f"{section}:{entry['name']}")
            if not isinstance(kind, str):
                self.issues.add(
                    self.path,
                    (section, index),
                    f"missing 'kind' (one of: {', '.join(registry.kinds)})",
                )
                continue
            if kind not in registry:
                close = difflib.get_close_matches(kind, registry.kinds, 1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.issues.add(
                    self.path,
                    (section, index, "kind"),
                    f"unknown {registry.family} kind {kind!r}{hint} (known: {', '.join(registry.kinds)})",
                )
                continue
            model = registry.get(kind).config
            try:
                config = _validate(model, entry)
            except ValidationError as error:
                self.issues.from_validation(error, model, self._in_section(section, index))
                continue
            assert isinstance(config, base)
            if config.name in found:
                self.issues.add(
                    self.path,
                    (section, index, "name"),
                    f"{registry.family} {config.name!r} is defined twice",
                )
                continue
            vertical = _as_vertical(config)
            if vertical is not None:
                for window_index, window in enumerate(vertical.maintenance_windows()):
                    self.issues.check_cron(
                        self.path,
                        (section, index, "maintenance", window_index),
                        window.cron,
                        window.end,
                        window.timezone,
                    )
            found[config.name] = config
            self.invalid.discard(f"{section}:{config.name}")
        return found

    def _targets(
        self,
        raw: dict[str, Any],
        settings: _Settings | None,
        sources: Mapping[str, SourceConfig],
        actuators: Mapping[str, ActuatorConfig],
        calendar: CronCalendar,
    ) -> list[Target]:
        targets: list[Target] = []
        names: set[str] = set()
        claimed: dict[str, str] = {}
        if not raw.get("targets", []):
            # an error, not a warning: a daemon with nothing to scale is always a mistake
            # (the wrong file, or targets under a misspelt header), and a reload to it keeps
            # the running config instead of dropping every target
            self.issues.add(self.path, ("targets",), "no [[targets]]: there is nothing to scale")
        for index, entry in self._entries(raw, "targets"):
            merged, simulate_overlay = self._merge_include(index, entry)
            if merged is None:
                continue
            if _as_vertical(actuators.get(str(merged.get("actuator")))) is not None:
                # a tier change takes minutes and may restart the resource: unless told
                # otherwise, wait long before the next one
                merged.setdefault("cooldown", VERTICAL_COOLDOWN)
            simulate = self._simulate(index, settings, simulate_overlay)
            try:
                config = self.target_configs.validate(merged)
            except ValidationError as error:
                self.issues.from_validation(error, TargetConfig, self._in_target(index))
                # the keys that are valid still meet the cross-field and cross-reference
                # checks, so one run reports every problem
                part = _valid_part(TargetConfig, merged, error)
                for key, message in _bounds_problems(part):
                    file, path, suffix = self._place(index, (key,))
                    self.issues.add(file, path, message, suffix)
                uses = _written_metric_uses(merged)
                self._bind(
                    index, part, uses, sources, actuators, calendar, names, claimed, build=False
                )
                continue
            used = {**config.metric_uses(), **config.alert_uses()}
            target = self._bind(index, config, used, sources, actuators, calendar, names, claimed)
            shadow = self._shadow(index, config, target[0]) if target and config.shadow else None
            if target is not None and simulate is not None:
                targets.append(
                    Target(
                        spec=target[0],
                        config=config,
                        actuator=target[1],
                        sources=target[2],
                        simulate=simulate,
                        rule_file=self.includes[index].file if index in self.includes else None,
                        shadow=shadow,
                    )
                )
        return targets

    def _shadow(self, index: int, config: TargetConfig, live: TargetSpec) -> TargetSpec | None:
        """The candidate rule file of ``shadow``, on the live target's metrics."""
        assert config.shadow is not None
        where = ("targets", index, "shadow")
        file = self.path.parent / config.shadow
        if not file.is_file():
            self.issues.add(
                self.path, where, f"rule file {config.shadow!r} not found (looked in {file.parent})"
            )
            return None
        try:
            candidate = load_rule_file(file)
        except ConfigError as error:
            self.issues.items.extend(error.issues)
            return None
        missing = [metric for metric in candidate.metric_uses() if metric not in live.metrics]
        if missing:
            self.issues.add(
                self.path,
                where,
                f"the shadow rule reads {', '.join(map(repr, missing))}, which target "
                f"{config.name!r} does not read (it reads: {', '.join(live.metrics) or 'nothing'})",
            )
            return None
        metrics = {metric: live.metrics[metric] for metric in candidate.metric_uses()}
        return replace(live, rule=candidate, metrics=metrics)

    def _merge_include(
        self, index: int, entry: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        inline = dict(entry)
        self.inline[index] = inline
        overlay = self._table(self.path, ("targets", index, "simulate"), inline.pop("simulate", {}))
        include = inline.get("rules")
        if include is None:
            return inline, overlay
        if not isinstance(include, str):
            self.issues.add(
                self.path,
                ("targets", index, "rules"),
                "must be the path of a rule file, e.g. 'rules/web-api.toml'",
            )
            return None, {}
        file = Path(include) if Path(include).is_absolute() else self.path.parent / include
        if file not in self.rule_files:
            self.rule_files[file] = self._read_rule_file(file)
        read = self.rule_files[file]
        if read is None:
            if not file.is_file():
                self.issues.add(
                    self.path,
                    ("targets", index, "rules"),
                    f"rule file {include!r} not found (looked in {file.parent})",
                )
            return None, {}
        self.includes[index] = read
        rule, simulate = read.parts
        return _deep_merge(rule, inline), _deep_merge(simulate, overlay)

    def _read_rule_file(self, file: Path) -> _Include | None:
        """Parse and split an included rule file, once however many targets include it."""
        if not file.is_file():
            return None
        included = self.issues.parse(file)
        if included is None:
            return None
        for key in _BINDING_KEYS:
            if key in included:
                self.issues.add(
                    file, (key,), f"'{key}' belongs in the [[targets]] entry, not in a rule file"
                )
        rule = {
            key: value
            for key, value in included.items()
            if key not in _BINDING_KEYS and key != "simulate"
        }
        simulate = self._table(file, ("simulate",), included.get("simulate", {}))
        return _Include(file, included, (rule, simulate))

    def _table(self, file: Path, path: KeyPath, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.issues.add(file, path, f"must be a table (got {_shown(value)})")
        return {}

    def _in_section(self, section: str, index: int) -> Placer:
        return lambda loc: (self.path, (section, index, *loc), "")

    def _in_target(self, index: int) -> Placer:
        return lambda loc: self._place(index, loc)

    def _place(self, index: int, loc: KeyPath) -> tuple[Path, KeyPath, str]:
        """Which file wrote ``targets[index].<loc>``: the inline entry or its rule file."""
        include = self.includes.get(index)
        inline_depth = _depth(self.inline.get(index, {}), loc)
        if include is not None:
            included_depth = _depth(include.raw, loc)
            if included_depth > inline_depth:
                name = self.inline.get(index, {}).get("name", index)
                return include.file, loc, f" (rule file of target {name!r})"
        return self.path, ("targets", index, *loc), ""

    def _simulate(
        self, index: int, settings: _Settings | None, overlay: dict[str, Any]
    ) -> SimulateSettings | None:
        if not overlay:
            return settings.simulate if settings is not None else SimulateSettings()
        # over what config.toml wrote, when valid (an invalid [simulate] is reported once)
        written = self.simulate_section if settings is not None else {}
        try:
            return _validate(SimulateSettings, _deep_merge(written, overlay))
        except ValidationError as error:
            self.issues.from_validation(
                error, SimulateSettings, lambda loc: self._place(index, ("simulate", *loc))
            )
            return None

    def _bind(
        self,
        index: int,
        config: TargetConfig,
        used: Mapping[str, KeyPath],
        sources: Mapping[str, SourceConfig],
        actuators: Mapping[str, ActuatorConfig],
        calendar: CronCalendar,
        names: set[str],
        claimed: dict[str, str],
        *,
        build: bool = True,
    ) -> tuple[TargetSpec, ActuatorConfig, dict[str, SourceConfig]] | None:
        """Check what ``config`` refers to and build its spec, unless it is the part of an
        invalid entry (:func:`_valid_part`, ``build=False``) whose name, actuator or max may
        be ``None``."""
        here = ("targets", index)
        ok = True
        if config.name in names:
            self.issues.add(self.path, (*here, "name"), f"target {config.name!r} is defined twice")
            ok = False
        if config.name is not None:
            names.add(config.name)

        actuator = actuators.get(config.actuator)
        if config.actuator is None or f"actuators:{config.actuator}" in self.invalid:
            ok = False
        elif actuator is None:
            known = ", ".join(actuators) or "none defined"
            self.issues.add(
                self.path,
                (*here, "actuator"),
                f"target {config.name!r} uses actuator {config.actuator!r}, which is not defined (actuators: {known})",
            )
            ok = False
        elif config.actuator in claimed:
            self.issues.add(
                self.path,
                (*here, "actuator"),
                f"actuator {config.actuator!r} is already scaled by target {claimed[config.actuator]!r}: "
                "two targets would fight over it",
            )
            ok = False
        else:
            claimed[config.actuator] = config.name

        bound: dict[str, SourceConfig] = {}
        metric_specs: dict[str, MetricSpec] = {}
        for metric, path in used.items():
            source_name = config.metrics.get(metric, metric)
            source = sources.get(source_name)
            if source is None and f"sources:{source_name}" in self.invalid:
                ok = False
                continue
            if source is None:
                known = ", ".join(sources) or "none defined"
                where = ("metrics", metric) if metric in config.metrics else path
                file, key, suffix = self._place(index, where)
                self.issues.add(
                    file,
                    key,
                    f"target {config.name!r} reads metric {metric!r} from source {source_name!r}, "
                    f"which is not defined (sources: {known})",
                    suffix,
                )
                ok = False
                continue
            bound[metric] = source
            max_age = source.max_age or max(3 * config.interval, timedelta(minutes=1))
            metric_specs[metric] = self._shared(MetricSpec(source.name, max_age))
        for metric in config.metrics:
            if metric not in used:
                self.issues.add(
                    self.path,
                    (*here, "metrics", metric),
                    f"no rule of target {config.name!r} reads metric {metric!r} (rules read: {', '.join(used) or 'nothing'})",
                )
                ok = False

        for schedule_index, schedule in enumerate(config.schedule):
            file, key, suffix = self._place(index, ("schedule", schedule_index))
            self.issues.check_cron(
                file, key, schedule.cron, schedule.end, schedule.timezone, suffix
            )
            ceiling = schedule.maximum or config.maximum
            if schedule.minimum is not None and ceiling is not None and schedule.minimum > ceiling:
                file, key, suffix = self._place(index, ("schedule", schedule_index, "min"))
                self.issues.add(
                    file,
                    key,
                    f"min ({schedule.minimum}) is above the max in force ({ceiling})",
                    suffix,
                )
                ok = False

        ladder = None
        maintenance: tuple[Any, ...] = ()
        applies_to = _BOTH_WAYS
        vertical = _as_vertical(actuator)
        if vertical is not None:
            ladder = vertical.ladder()
            maintenance = vertical.maintenance_windows()
            applies_to = frozenset(getattr(actuator, "maintenance_applies_to", ("up", "down")))
            ok = self._check_ladder(index, config, len(ladder.tiers)) and ok
        if not ok or actuator is None or not build:
            return None
        spec = TargetSpec(
            name=config.name,
            rule=config,  # a Rule already: validated once, not copied
            metrics=self._shared_mapping(metric_specs),
            ladder=ladder,
            maintenance=maintenance,
            maintenance_applies_to=applies_to,
            calendar=calendar,
        )
        return spec, actuator, self._shared_mapping(bound)

    def _shared(self, value: H) -> H:
        """One instance of each equal (immutable, hashable) value the targets hold."""
        return typing.cast(H, self.shared.setdefault((type(value), value), value))

    def _shared_mapping(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """One dict for the targets whose mappings hold the same keys and the same objects
        (targets never change them: they are the config's, read-only)."""
        key = tuple((name, id(value)) for name, value in mapping.items())
        # the dict kept holds its values: their ids stay unique while the loader lives
        return self.shared_mappings.setdefault(key, mapping)

    def _check_ladder(self, index: int, config: TargetConfig, tiers: int) -> bool:
        ok = True

        def problem(path: KeyPath, message: str) -> None:
            nonlocal ok
            file, key, suffix = self._place(index, path)
            self.issues.add(file, key, message, suffix)
            ok = False

        if config.maximum is not None and config.maximum > tiers:
            problem(
                ("max",),
                f"the actuator's ladder has {tiers} tiers: max is a tier position, 1..{tiers}",
            )
        if config.minimum < 1:
            problem(("min",), "a ladder cannot scale to zero: min is a tier position, at least 1")
        for i, threshold in enumerate(config.threshold):
            if threshold.action.kind == "percent":
                problem(
                    ("threshold", i, "action"),
                    "a percentage of a tier position means nothing: use '+1', '-1' or '=N'",
                )
        for i, policy in enumerate(config.step):
            if policy.adjustment_type == "percent":
                problem(
                    ("step", i, "adjustment_type"),
                    "a percentage of a tier position means nothing: use 'change' or 'exact'",
                )
        return ok


# --- helpers ------------------------------------------------------------------------------

M = typing.TypeVar("M", bound=BaseModel)
H = typing.TypeVar("H", bound=typing.Hashable)
R = typing.TypeVar("R", bound=Rule)


def _validate(model: type[M], raw: Mapping[str, Any]) -> M:
    """Strict validation of what TOML wrote: ``max = "20"`` or ``max = true`` is an error,
    not a number. The values go in as JSON, whose strict mode still takes an array for a
    tuple and a string for an enum member or a time (TOML's dates become ISO strings)."""
    return model.model_validate_json(_JSON.encode(raw), strict=True)


class _TargetConfigs:
    """``[[targets]]`` entries validated, the rule of each distinct one once.

    Thousands of targets often differ only in their name and actuator (the same inline
    rule, or the same rule file with the same overrides). The first entry of each
    distinct rest is validated in full; the others reuse its validated values, nested
    models included (frozen, so one instance serves every target), and only their own
    name and actuator are validated. At 10,000 targets that is most of the config's
    memory (each a few kilobytes of models, sets and dicts) and of its load time.

    Sound because neither a validator nor a cached property of :class:`TargetConfig` reads
    ``name`` or ``actuator`` (``tests/test_config_memory.py`` checks they are Rule's own).
    An entry whose name or actuator is invalid is validated in full again, so its
    problems are reported as they always were.
    """

    _VARYING = ("name", "actuator")

    def __init__(self) -> None:
        self._validated: dict[str, TargetConfig] = {}

    def validate(self, merged: Mapping[str, Any]) -> TargetConfig:
        if not all(type(merged.get(key)) is str for key in self._VARYING):
            return _validate(TargetConfig, merged)
        key = _JSON.encode({k: v for k, v in merged.items() if k not in self._VARYING})
        known = self._validated.get(key)
        if known is None:
            config = _validate(TargetConfig, merged)
            _warm_cached_properties(config)
            self._validated[key] = config
            return config
        values = dict(known.__dict__)  # its fields, and the cached properties computed
        for name in self._VARYING:
            try:
                values[name] = _field_adapter(TargetConfig, name).validate_json(
                    _JSON.encode(merged[name]), strict=True
                )
            except ValidationError:
                return _validate(TargetConfig, merged)
        copy = TargetConfig.model_construct(known.model_fields_set, **values)
        # model_construct keeps only fields: the cached properties (equal, as the rule is)
        # are carried over so that each target does not compute its own
        copy.__dict__.update(values)
        return copy


def _warm_cached_properties(model: BaseModel) -> None:
    """Compute ``model``'s cached properties now, so the copies made of it share them."""
    for kind in type(model).__mro__:
        for name, attribute in vars(kind).items():
            if isinstance(attribute, functools.cached_property):
                getattr(model, name)


def _iso(value: Any) -> str:
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    raise TypeError(f"not a TOML value: {type(value).__name__}")


# TOML values hold no cycles, and the text is read back at once: no checks, no spaces
_JSON = json.JSONEncoder(
    default=_iso, check_circular=False, ensure_ascii=False, separators=(",", ":")
)


def _as_vertical(config: object) -> VerticalConfig | None:
    """``config`` if it scales along a ladder of tiers. Decided once per config class: a
    runtime Protocol check is slow, and a large config makes 10,000 of them."""
    kind = type(config)
    if kind not in _VERTICAL:
        _VERTICAL[kind] = isinstance(config, VerticalConfig)
    return typing.cast(VerticalConfig, config) if _VERTICAL[kind] else None


_VERTICAL: dict[type, bool] = {}


def _valid_part(model: type[R], raw: Mapping[str, Any], error: ValidationError) -> R:
    """The keys of an invalid target entry or rule file that are valid on their own,
    unchecked across keys; its invalid or missing keys hold their defaults (``None`` for
    name, actuator and max)."""
    invalid = {detail["loc"][0] for detail in error.errors() if detail["loc"]}
    values: dict[str, Any] = {"name": None, "actuator": None, "maximum": None}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in raw and key not in invalid:
            try:
                values[name] = _field_adapter(model, name).validate_json(
                    _JSON.encode(raw[key]), strict=True
                )
            except ValidationError:  # valid only with other keys (a model-level check)
                continue
    return typing.cast(R, model.model_construct(**values))


@functools.cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(model.model_fields[name].rebuild_annotation())


def _bounds_problems(part: Rule) -> list[tuple[str, str]]:
    """``Rule``'s own min/max/default checks, for the valid part of an invalid entry
    (pydantic runs a model's checks only when every key is valid)."""
    if part.maximum is None:
        return []
    problems = []
    if part.minimum > part.maximum:
        problems.append(("min", f"min ({part.minimum}) is greater than max ({part.maximum})"))
    if part.default is not None and not part.minimum <= part.default <= part.maximum:
        problems.append(
            (
                "default",
                f"default ({part.default}) is outside min..max ({part.minimum}..{part.maximum})",
            )
        )
    return problems


def _written_metric_uses(merged: Mapping[str, Any]) -> dict[str, KeyPath]:
    """``Rule.metric_uses`` of an invalid entry: every metric its rules name, valid or not."""
    uses: dict[str, KeyPath] = {}
    sections = (
        ("track", "metric"),
        ("threshold", "when"),
        ("step", "metric"),
        ("alert", "when"),
        ("breaker", "metric"),
    )
    for section, key in sections:
        entries = merged.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            value = entry.get(key) if isinstance(entry, dict) else None
            if section in ("threshold", "alert") and isinstance(value, str):
                try:
                    value = Condition.model_validate(value).metric
                except ValidationError:
                    continue
            if isinstance(value, str) and value:
                uses.setdefault(value, (section, index, key))
    return uses


# a 5-field cron repeats within 28 years (the weekday cycle of leap years), so one that does
# not fire in 36 years from a fixed day never does; fixed, so a load never reads the clock
_CRON_HORIZON = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2060, 1, 1, tzinfo=UTC))


def _fires(trigger: CronTrigger) -> bool:
    bounded = copy.copy(trigger)
    # without an end date apscheduler searches up to the year 9999 (most of a second)
    bounded.end_date = _CRON_HORIZON[1]
    return bounded.get_next_fire_time(None, _CRON_HORIZON[0]) is not None


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _depth(raw: Any, path: KeyPath) -> int:
    """How many leading parts of ``path`` exist in ``raw``."""
    depth = 0
    for part in path:
        found, raw = _child(raw, part)
        if not found:
            break
        depth += 1
    return depth


def _child(raw: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(part, str) and isinstance(raw, Mapping):
        return part in raw, raw.get(part)
    if isinstance(part, int) and isinstance(raw, list) and 0 <= part < len(raw):
        return True, raw[part]
    return False, None


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, 1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{hint} (allowed: {', '.join(allowed)})"


_SUBPATH = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLAIN_TYPES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "tuple_type": "an array (e.g. [[key]] tables or key = [...])",
    "finite_number": "a finite number",
}


def _describe(detail: Any, model: type[BaseModel], loc: KeyPath) -> tuple[str, KeyPath]:
    """A pydantic error as an ops-readable message, and any key path below ``loc``."""
    kind, message = detail["type"], detail["msg"]
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _allowed_keys(model, loc[:-1])), ()
    if kind == "missing":
        return "missing required key", ()
    if kind in _PLAIN_TYPES:
        return f"must be {_PLAIN_TYPES[kind]} (got {_shown(detail.get('input'))})", ()
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        if message.startswith("@"):
            sub, _, message = message[1:].partition(": ")
            below = tuple(int(i) if i else name for name, i in _SUBPATH.findall(sub))
            return message, below
        return message, ()
    message = message.replace("Input should be", "must be", 1)
    if "input" in detail and not isinstance(detail["input"], dict | list):
        message += f" (got {_shown(detail['input'])})"
    return message, ()


def _shown(value: Any) -> str:
    """A value as TOML spells it (``true``, not ``True``), cut short when long."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}…"


def _allowed_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys a table at ``loc`` (below ``model``) may hold."""
    current: Any = model
    for part in loc:
        current = _element(current, part)
        if current is None:
            return []
    models = [c for c in _candidates(current) if isinstance(c, type) and issubclass(c, BaseModel)]
    if not models:
        return []
    fields = models[0].model_fields
    return sorted(info.alias or name for name, info in fields.items())


def _candidates(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _candidates(arg)]
    return [annotation]


def _element(annotation: Any, part: str | int) -> Any:
    for candidate in _candidates(annotation):
        if (
            isinstance(part, str)
            and isinstance(candidate, type)
            and issubclass(candidate, BaseModel)
        ):
            for name, info in candidate.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        origin = typing.get_origin(candidate)
        if isinstance(part, int) and origin in (tuple, list):
            return typing.get_args(candidate)[0]
        if isinstance(part, str) and origin is dict:
            return typing.get_args(candidate)[1]
    return None


def _version(
    settings: _Settings | None,
    sources: Mapping[str, PluginConfig],
    actuators: Mapping[str, PluginConfig],
    targets: Sequence[Target],
) -> str:
    document = {
        "settings": settings.model_dump(
            mode="json", exclude={"daemon": {"instance"}, "cluster": {"instance"}}
        )
        if settings
        else None,
        "sources": {name: config.model_dump(mode="json") for name, config in sources.items()},
        "actuators": {name: config.model_dump(mode="json") for name, config in actuators.items()},
        "targets": [target.config.model_dump(mode="json", by_alias=True) for target in targets],
    }
    try:
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which a plugin may allow
        text = json.dumps(document, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:12]
