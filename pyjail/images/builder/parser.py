"""Dockerfile text to instructions: continuation lines, comments, the escape directive, flags.

Why our own: the builder needs line numbers (errors name them, as Docker's do) and the
original text of each instruction (it is part of the layer cache key).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pyjail.errors import InvalidArgument

KNOWN = frozenset({
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT",
    "EXPOSE", "LABEL", "VOLUME", "HEALTHCHECK", "STOPSIGNAL", "SHELL", "ONBUILD", "MAINTAINER",
})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?$")


@dataclass
class Instruction:
    """One instruction: ``cmd`` upper-cased, ``rest`` after the flags, ``line`` 1-based."""

    cmd: str
    rest: str
    line: int
    original: str
    flags: dict[str, str] = field(default_factory=dict)

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form, or None for the shell form."""
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None

    def label(self) -> str:
        return f"{self.cmd} {self.rest}".rstrip()


def _split_flags(rest: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        m = _FLAG.match(word)
        if not m:
            break
        flags[m.group(1)] = m.group(2) if m.group(2) is not None else "true"
        rest = tail.lstrip()
    return flags, rest


def parse(text: str) -> list[Instruction]:
    """All instructions of a Dockerfile, in order."""
    escape = "\\"
    lines = text.splitlines()
    out: list[Instruction] = []
    in_header = True
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if in_header:
            m = _DIRECTIVE.match(stripped)
            if m and m.group(1).lower() == "escape":
                escape = m.group(2)
                if escape not in ("\\", "`"):
                    raise InvalidArgument(f"invalid escape token '{escape}' does not match ` or \\")
                i += 1
                continue
            if m:
                i += 1
                continue
            if stripped:
                in_header = False
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        while True:
            line = lines[i].rstrip()
            i += 1
            if line.endswith(escape):
                parts.append(line[:-1])
                # comment and blank lines inside a continuation are skipped
                while i < len(lines) and (not lines[i].strip()
                                          or lines[i].strip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                continue
            parts.append(line)
            break
        joined = "".join(parts).strip()
        word, _, rest = joined.partition(" ")
        if not rest and "\t" in word:
            word, _, rest = joined.partition("\t")
        cmd = word.upper()
        if cmd not in KNOWN:
            raise InvalidArgument(f"dockerfile parse error line {start + 1}: "
                                  f"unknown instruction: {word}")
        rest = rest.strip()
        flags: dict[str, str] = {}
        if cmd in ("FROM", "RUN", "COPY", "ADD"):
            flags, rest = _split_flags(rest)
        if not rest and cmd not in ("RUN",):
            raise InvalidArgument(f"dockerfile parse error line {start + 1}: "
                                  f"{cmd} requires at least one argument")
        out.append(Instruction(cmd, rest, start + 1, joined, flags))
    if not out:
        raise InvalidArgument("the Dockerfile (Dockerfile) cannot be empty")
    return out


@dataclass
class Stage:
    """One build stage: its FROM and the instructions after it."""

    base: str
    name: str
    index: int
    from_instr: Instruction
    body: list[Instruction] = field(default_factory=list)


def stages(instructions: list[Instruction]) -> tuple[list[Instruction], list[Stage]]:
    """(the ARGs before the first FROM, the stages)."""
    meta: list[Instruction] = []
    out: list[Stage] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            words = ins.rest.split()
            name = ""
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2].lower()
            elif len(words) != 1:
                raise InvalidArgument(f"Dockerfile:{ins.line}: FROM requires either one or "
                                      "three arguments")
            out.append(Stage(words[0], name, len(out), ins))
        elif not out:
            if ins.cmd != "ARG":
                raise InvalidArgument(f"Dockerfile:{ins.line}: no build stage in current "
                                      f"context (a {ins.cmd} before FROM)")
            meta.append(ins)
        else:
            out[-1].body.append(ins)
    if not out:
        raise InvalidArgument("no build stage in current context")
    return meta, out
