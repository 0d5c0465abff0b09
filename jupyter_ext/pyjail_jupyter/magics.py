"""``%container``, ``%%container`` and ``%%containerfile``: the ``pyjail`` grammar in IPython.

Policy (as jupysql's): a user's mistake — a bad flag, an unknown subcommand or image, a
daemon that is down, a feature the daemon lacks — is ONE line (``UsageError``), never a
traceback. Listings come back as pandas DataFrames (``%config
ContainerMagics.output = "text"`` prints tables instead). Options are traitlets, so
``%config ContainerMagics`` lists them with their help.

The line grammar is ``pyjail.client.grammar``, the same argparse definition the CLI
parses, so ``%container run --help`` and ``pyjail run --help`` agree. IPython expands
``{var}`` and ``$var`` in the line before we see it.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from traitlets import Bool, CaselessStrEnum, Float, Unicode, observe
from traitlets.config import Configurable

from pyjail.client import commands, grammar
from pyjail.client.connection import Client
from pyjail.client.errors import ClientError
from pyjail.client.runner import run_script
from pyjail.client.tables import Table

from .frontend import NotebookFrontend


def _help_of(parser: argparse.ArgumentParser) -> str:
    """The parser's help plus every subcommand's usage line (what ``%container?`` shows)."""
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            usages = [sub.format_usage().removeprefix("usage: ").strip()
                      for sub in dict.fromkeys(action.choices.values())]
            text += "\nsubcommands:\n" + "\n".join("  " + u for u in usages) + "\n"
    return text


@magics_class
class ContainerMagics(Magics, Configurable):
    """Containers from IPython (see ``%container --help``)."""

    host = Unicode(None, allow_none=True, config=True, help=(
        "Daemon address, e.g. unix:///run/pyjail/pyjail.sock or tcp://host:2376. "
        "Default: $PYJAIL_HOST, then $DOCKER_HOST, then pyjail's default socket."))
    default_image = Unicode(grammar.DEFAULT_IMAGE, config=True, help=(
        "Image for %%container when the line names none."))
    output = CaselessStrEnum(["dataframe", "text"], default_value="dataframe", config=True,
                             help="How listings come back: pandas DataFrames, or printed "
                                  "text tables.")
    widgets = Bool(True, config=True, help=(
        "Use ipywidgets (live log tail, live stats plot, progress bars) in a notebook. "
        "Terminal IPython always prints text."))
    timeout = Float(120.0, config=True, help="Seconds to wait for a daemon answer.")

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell, **kwargs)
        if shell is not None:
            shell.configurables.append(self)
        self._client: Client | None = None
        self._parser = grammar.build_parser("%container", cli=False)

    @observe("host", "timeout")
    def _reconnect(self, _change: Any) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    @property
    def client(self) -> Client:
        """One connection per magic instance, so a warm call costs only its requests."""
        if self._client is None:
            self._client = Client(self.host, timeout=self.timeout)
        return self._client

    def _session(self) -> commands.Session:
        return commands.Session(self.client, NotebookFrontend(self.shell, self.widgets))

    # -- the magics -------------------------------------------------------------------------
    @line_cell_magic
    def container(self, line: str, cell: str | None = None) -> Any:
        if cell is not None:
            return self._guarded(self._script, line, cell)
        return self._guarded(self._line, line)

    @cell_magic
    def containerfile(self, line: str, cell: str) -> Any:
        return self._guarded(self._build_cell, line, cell)

    def _guarded(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except grammar.GrammarExit:
            return None
        except (grammar.GrammarError, ClientError) as exc:
            raise UsageError(str(exc)) from None

    @staticmethod
    def _split(line: str) -> list[str]:
        try:
            return shlex.split(line)
        except ValueError as exc:
            raise grammar.GrammarError(f"cannot parse the line: {exc}") from None

    def _line(self, line: str) -> Any:
        argv = self._split(line)
        if not argv:
            raise grammar.GrammarError("%container: a subcommand is required, e.g. "
                                       "%container ps (see %container --help)")
        args = self._parser.parse_args(argv)
        return self._render(commands.execute(self._session(), args))

    def _script(self, line: str, cell: str) -> Any:
        parser = grammar.build_script_parser("%%container", self.default_image)
        args = parser.parse_args(self._split(line))
        return run_script(self.client, args, cell, self._session().frontend)

    def _build_cell(self, line: str, cell: str) -> Any:
        args = grammar.build_containerfile_parser().parse_args(self._split(line))
        args.tag = [args.image_tag, *args.tag]
        return commands.build(self._session(), args, dockerfile_text=cell)

    def _render(self, result: Any) -> Any:
        if isinstance(result, Table):
            if self.output == "text":
                print(result.to_text())
                return None
            return result.to_frame()
        return result


ContainerMagics.container.__doc__ = _help_of(grammar.build_parser("%container", cli=False))
ContainerMagics.containerfile.__doc__ = _help_of(grammar.build_containerfile_parser())
