"""``scalerd completion bash|zsh|fish``: a completion script, generated from the parser
itself, so every command and flag added later completes without touching this module.

    scalerd completion bash > ~/.local/share/bash-completion/completions/scalerd
    scalerd completion zsh > "${fpath[1]}/_scalerd"       # then restart zsh
    scalerd completion fish > ~/.config/fish/completions/scalerd.fish
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SHELLS", "register", "script"]

SHELLS = ("bash", "zsh", "fish")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    print(script(args.parser, args.shell), end="")
    return 0


@dataclass(frozen=True)
class _Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...]

    @property
    def takes_file(self) -> bool:
        """A value that names a file: completed with file names."""
        return (
            self.takes_value
            and not self.choices
            and any(
                word in flag
                for flag in self.flags
                for word in ("config", "trace", "out", "compare")
            )
        )


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    options: tuple[_Option, ...]
    choices: tuple[str, ...]  # of its first positional, when it has a fixed set


def _commands(parser: argparse.ArgumentParser) -> list[_Command]:
    found = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, registered in action.choices.items():
            full_parser = registered.get_default("full_parser")
            sub = full_parser() if full_parser is not None else registered
            options: list[_Option] = []
            choices: tuple[str, ...] = ()
            for item in sub._actions:
                if item.option_strings:
                    options.append(
                        _Option(
                            tuple(item.option_strings),
                            (item.help or "").replace("%%", "%"),
                            item.nargs != 0,
                            tuple(str(c) for c in item.choices or ()),
                        )
                    )
                elif item.choices and not choices:
                    choices = tuple(str(c) for c in item.choices)
            found.append(_Command(name, helps.get(name, ""), tuple(options), choices))
    return found


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _commands(parser)
    render = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    return "\n".join(render(commands)) + "\n"


def _bash(commands: list[_Command]) -> Iterator[str]:
    names = " ".join(command.name for command in commands)
    yield "# scalerd completion for bash: source <(scalerd completion bash)"
    yield "_scalerd() {"
    yield '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"'
    yield "    if [[ $COMP_CWORD -eq 1 ]]; then"
    yield f'        COMPREPLY=($(compgen -W "{names} --help --version" -- "$cur"))'
    yield "        return"
    yield "    fi"
    yield '    local words=""'
    yield '    case "${COMP_WORDS[1]}" in'
    for command in commands:
        yield f"    {command.name})"
        yield '        case "$prev" in'
        for option in command.options:
            if option.takes_file:
                yield f'            {"|".join(option.flags)}) COMPREPLY=($(compgen -f -- "$cur")); return;;'
            elif option.choices:
                yield f'            {"|".join(option.flags)}) COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur")); return;;'
            elif option.takes_value:
                yield f"            {'|'.join(option.flags)}) return;;"
        yield "        esac"
        flags = " ".join(flag for option in command.options for flag in option.flags)
        yield f'        words="{" ".join((*command.choices, flags)).strip()}";;'
    yield "    esac"
    yield '    COMPREPLY=($(compgen -W "$words" -- "$cur"))'
    yield "}"
    yield "complete -o default -F _scalerd scalerd"


def _quote_zsh(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh(commands: list[_Command]) -> Iterator[str]:
    yield "#compdef scalerd"
    yield '# scalerd completion for zsh: scalerd completion zsh > "${fpath[1]}/_scalerd"'
    yield "_scalerd() {"
    yield "    local -a commands"
    yield "    commands=("
    for command in commands:
        yield f"        '{command.name}:{_quote_zsh(command.help)}'"
    yield "    )"
    yield "    if (( CURRENT == 2 )); then"
    yield "        _describe -t commands 'scalerd command' commands"
    yield "        return"
    yield "    fi"
    yield "    local command=$words[2]"
    yield "    shift words"
    yield "    (( CURRENT-- ))"
    yield "    case $command in"
    for command in commands:
        yield f"    {command.name})"
        specs = []
        for option in command.options:
            flags = option.flags
            names = (
                f"'{flags[0]}"
                if len(flags) == 1
                else f"'({' '.join(flags)})'{{{','.join(flags)}}}'"
            )
            value = ""
            if option.takes_file:
                value = ":file:_files"
            elif option.choices:
                value = f":value:({' '.join(option.choices)})"
            elif option.takes_value:
                value = ":value:"
            specs.append(f"{names}[{_quote_zsh(option.help)}]{value}'")
        if command.choices:
            specs.append(f"'1:argument:({' '.join(command.choices)})'")
        yield "        _arguments " + " ".join(specs) + ";;"
    yield "    esac"
    yield "}"
    yield '_scalerd "$@"'


def _fish(commands: list[_Command]) -> Iterator[str]:
    yield "# scalerd completion for fish: scalerd completion fish > ~/.config/fish/completions/scalerd.fish"
    names = " ".join(command.name for command in commands)
    yield "complete -c scalerd -f"
    for command in commands:
        help_text = command.help.replace("'", "\\'")
        yield f"complete -c scalerd -n 'not __fish_seen_subcommand_from {names}' -a {command.name} -d '{help_text}'"
        when = f"-n '__fish_seen_subcommand_from {command.name}'"
        if command.choices:
            yield f"complete -c scalerd {when} -a '{' '.join(command.choices)}'"
        for option in command.options:
            parts = [f"complete -c scalerd {when}"]
            for flag in option.flags:
                parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            if option.takes_file:
                parts.append("-r -F")
            elif option.choices:
                parts.append(f"-r -a '{' '.join(option.choices)}'")
            elif option.takes_value:
                parts.append("-r")
            parts.append("-d '" + option.help.replace("'", "\\'") + "'")
            yield " ".join(parts)
