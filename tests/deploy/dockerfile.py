"""The instructions of a Dockerfile, enough to check and replay its contract: stages,
``COPY`` sources and destinations, and the exec-form (JSON) ``CMD``/``ENTRYPOINT``/
``HEALTHCHECK``/``VOLUME``."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Stage", "excluded_by_dockerignore", "parse_dockerfile"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON array of ``CMD``/``ENTRYPOINT``/``VOLUME`` (the shell form is refused)."""
        value = json.loads(self.last(keyword))
        assert isinstance(value, list), f"{keyword} must be in exec (JSON) form"
        return [str(part) for part in value]

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """``HEALTHCHECK --opt=value … CMD [json]`` as (options, argv)."""
        options_text, _, command = self.last("HEALTHCHECK").partition("CMD")
        options = dict(option.removeprefix("--").split("=", 1) for option in options_text.split())
        return options, [str(part) for part in json.loads(command)]

    def copies(self) -> list[tuple[list[str], str, dict[str, str]]]:
        """Each ``COPY`` as (sources, destination, options such as ``from``)."""
        copies = []
        for argument in self.all("COPY"):
            words = shlex.split(argument)
            options = dict(w.removeprefix("--").split("=", 1) for w in words if w.startswith("--"))
            paths = [w for w in words if not w.startswith("--")]
            copies.append((paths[:-1], paths[-1], options))
        return copies


def parse_dockerfile(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    logical = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, argument = logical.partition(" ")
        logical = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = argument.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((keyword, argument.strip()))
    return stages


def excluded_by_dockerignore(ignore_file: Path, path: str) -> bool:
    """Whether the build context leaves ``path`` out: the last matching pattern wins, a
    pattern matches a path or any folder above it, ``!`` re-includes."""
    excluded = False
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in ignore_file.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        if pattern.startswith("**/"):
            matches = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            matches = any(fnmatch.fnmatch(c, pattern) for c in candidates)
        if matches:
            excluded = not negate
    return excluded
