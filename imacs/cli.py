"""The ``imacs`` command line."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

import imacs
from imacs.errors import ImacsError
from imacs.plugins import PluginInfo

_STATUS_STYLE = {"loaded": "green", "broken": "bold red", "blocked": "yellow"}


def plugin_table(infos: list[PluginInfo]) -> Table:
    table = Table(title="imacs plugins", title_justify="left")
    table.add_column("plugin", overflow="fold")
    table.add_column("distribution", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("provides", overflow="fold")
    for info in infos:
        provides = "\n".join(
            f"{kind.replace('_', ' ')}: {', '.join(names)}"
            for kind, names in info.components.items()
        )
        if info.error:
            provides = f"[red]{info.error}[/red]"
        dist = f"{info.distribution} {info.version}" if info.distribution else "-"
        style = _STATUS_STYLE[info.status]
        table.add_row(info.name, dist, f"[{style}]{info.status}[/{style}]", provides or "-")
    return table


def _version_message() -> str:
    lines = [f"imacs {imacs.__version__}"]
    for info in imacs.get_plugins():
        if info.source == "entry-point" and info.distribution:
            lines.append(f"  {info.distribution} {info.version} ({info.status})")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_message())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version of imacs and of its installed plugins, then exit.",
)
def cli() -> None:
    """Compare two image models across a dataset by where their attributions differ."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins and the components each provides."""
    infos = imacs.get_plugins()
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
    else:
        Console().print(plugin_table(infos))


def main() -> None:
    """Entry point: run the CLI, turning imacs errors into one clear line and exit code 1."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ImacsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
