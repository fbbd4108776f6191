"""The command line: thin. Parse, call, map VdevalError to one line and exit code 2.

Exit codes CI can trust: 0 success; 1 a check rule failed (`vdeval check`) or an unexpected
internal error; 2 the command or its input was wrong (usage errors: unknown command or option,
a value of the wrong type; every VdevalError); 3 a run finished but some clips failed;
130 interrupted. Commands live beside the code they drive; each such module exposes `register(app)`.
"""
from __future__ import annotations

import importlib
import sys
import warnings

import typer

from vdeval.errors import VdevalError

# plain help, as click prints it: flags read `--report / --no-report`, not `--report <bool>` in a box
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Evaluate and compare video diffusion models.")
_state = {"registered": False}

# modules that add their own commands, each through its register(app)
PLUGINS = ("vdeval.run.cli", "vdeval.run.score_cli", "vdeval.run.validate", "vdeval.report.cli", "vdeval.check",
           "vdeval.backbones.weights", "vdeval.audit.cli", "vdeval.log.cli", "vdeval.export.cli")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")):
    """Declares --debug; main() reads it from argv itself, as errors can come before this runs."""


class Command(typer.core.TyperCommand):
    """Usage lines as click writes them: arguments by their upper-case names (`vdeval run [OPTIONS]
    SUITE`, optional ones in brackets), not typer's `{suite}`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = (param.metavar or param.name or "").upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def _register_plugins() -> None:
    if _state.get("registered"):  # main() may run many times in one process (tests, embedding)
        return
    _state["registered"] = True
    for name in PLUGINS:
        importlib.import_module(name).register(app)
    for group in [app] + [g.typer_instance for g in app.registered_groups if g.typer_instance is not None]:
        for info in group.registered_commands:
            if info.cls in (None, typer.core.TyperCommand):
                info.cls = Command


def _usage_error_types() -> tuple[type, ...]:
    """Click's exception base, both the vendored copy typer ships and the standalone click:
    typer >= 0.26 raises its own vendored classes, which `click.ClickException` does not match."""
    types: list[type] = []
    for c in type(typer.BadParameter("x")).__mro__:
        if c.__name__ in ("ClickException", "TyperException"):
            types.append(c)
    try:
        import click

        types.append(click.exceptions.ClickException)
    except ImportError:  # pragma: no cover - typer without click
        pass
    return tuple(types)


def _show_usage_error(e: Exception) -> None:
    show = getattr(e, "show", None)  # a click exception, its class found at run time (_usage_error_types)
    try:
        if show is None:
            raise AttributeError("show")
        show()  # "Usage: ..." and "Error: ..." as click prints them
    except Exception:  # pragma: no cover - a click exception without show()
        typer.echo(f"error: {e}", err=True)


_warned: set[str] = set()


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    """Warnings as a command line shows them: `warning: message`, once each, without the source
    line Python adds (the full form with --debug)."""
    text = str(message).strip()
    if text not in _warned:
        _warned.add(text)
        print(f"warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    _register_plugins()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    if argv is None and not debug:  # the console entry only: a caller passing argv keeps its own handling
        warnings.showwarning = _one_line_warnings
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit codes in non-standalone mode
            sys.exit(code)
    except VdevalError as e:
        if debug:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        if isinstance(e, _usage_error_types()):
            _show_usage_error(e)
            sys.exit(2)  # the command was wrong, never 1: 1 means "a rule failed"
        if debug:
            raise
        typer.echo(f"error: unexpected {type(e).__name__}: {e} (re-run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
