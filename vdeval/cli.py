"""The command line: thin. Parse, call, map VdevalError to one line and exit code 2.

Commands live beside the code they drive; each such module exposes `register(app)`.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Optional

import typer

from vdeval.errors import VdevalError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Evaluate and compare video diffusion models.")
_state = {"debug": False}

# modules that add their own commands; a module not yet present in this install is skipped
PLUGINS = ("vdeval.runner_cli", "vdeval.report.cli", "vdeval.check", "vdeval.backbones.weights", "vdeval.audit",
           "vdeval.log.cli")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")):
    _state["debug"] = debug


def _register_plugins() -> None:
    for name in PLUGINS:
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            if hasattr(module, "register"):
                module.register(app)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def main(argv: Optional[list[str]] = None) -> None:
    _register_plugins()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
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
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(2)
        if debug:
            raise
        typer.echo(f"error: unexpected {type(e).__name__}: {e} (re-run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
