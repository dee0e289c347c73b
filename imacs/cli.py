"""The ``imacs`` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

import imacs
from imacs.adapters.options import OptionText
from imacs.api import DEFAULT_METHOD
from imacs.errors import ImacsError, InvalidInputError
from imacs.plugins import PluginInfo
from imacs.report.headline import headline

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
        if info.error:  # a plugin's error text may hold brackets that rich reads as markup
            provides = f"[red]{escape(info.error)}[/red]"
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
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    help="Show the full traceback of an error instead of one line (also IMACS_DEBUG=1).",
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


def _key_values(pairs: tuple[str, ...], what: str, *, as_text: bool = False) -> dict[str, Any]:
    """``("n_steps=32", "baselines=[\"black\"]")`` -> values parsed as JSON, else strings.

    With ``as_text`` (adapter options) each value stays the text typed, as an
    ``OptionText`` that the adapter reads as the type it declares for that option, so
    ``trust=False`` or ``trust=no`` becomes ``False`` and ``trust=nope`` an error.
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE; got {pair!r}", param_hint=what)
        if as_text:
            parsed[key] = OptionText(raw)
            continue
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


def _floats(text: str | None) -> tuple[float, ...] | None:
    return None if text is None else tuple(float(v) for v in text.split(","))


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    height, sep, width = text.lower().partition("x")
    if not sep:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 224x224; got {text!r}")
    return int(height), int(width)


@cli.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True),
    help="Model file or SavedModel folder.",
)
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of images (sub-folders per class give labels).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for maps/, overlays/ and attributions.json.",
)
@click.option(
    "--method",
    default=DEFAULT_METHOD,
    show_default=True,
    help="Attribution method (see `imacs plugins`).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method parameter; VALUE is read as JSON when it parses. Repeatable.",
)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option such as factory=pkg.mod:build or trust=true, read as the type the "
    "adapter declares (trust takes true/false, yes/no or 1/0). Repeatable.",
)
@click.option(
    "--target",
    default="predicted",
    show_default=True,
    help="'predicted' (the model's top class), 'label' (the sub-folder's class) or a class index.",
)
@click.option(
    "--scale",
    type=float,
    default=None,
    help="Multiply pixels by this inside the model (1/255 for [0, 1] models).",
)
@click.option("--mean", default=None, help="Per-channel mean after scaling, comma-separated.")
@click.option("--std", default=None, help="Per-channel std after scaling, comma-separated.")
@click.option(
    "--size", default=None, metavar="HxW", help="Resize every image to this size (bilinear)."
)
@click.option(
    "--batch-size",
    type=int,
    default=32,
    show_default=True,
    help="Most inputs sent to the model in one call.",
)
@click.option(
    "--skip-unreadable", is_flag=True, help="Warn about and skip files that cannot be decoded."
)
def attribute(
    model_path: str,
    images_dir: str,
    out_dir: str,
    method: str,
    params: tuple[str, ...],
    model_options: tuple[str, ...],
    target: str,
    scale: float | None,
    mean: str | None,
    std: str | None,
    size: str | None,
    batch_size: int,
    skip_unreadable: bool,
) -> None:
    """Attribute every image in a folder; write maps (.npy), overlays (.png) and a manifest.

    A rerun with the same model, method and parameters skips images already done.
    """
    from imacs.attribute_folder import attribute_folder
    from imacs.data.folder import read_image_folder

    options = _key_values(model_options, "--model-option", as_text=True)
    if scale is not None or mean is not None or std is not None:
        options["preprocessing"] = imacs.Preprocessing(
            scale=1.0 if scale is None else scale, mean=_floats(mean), std=_floats(std)
        )
    model = imacs.load_model(model_path, **options)
    folder = read_image_folder(
        images_dir, size=_size(size), on_error="skip" if skip_unreadable else "raise"
    )
    if target == "predicted":
        targets = model.predict(folder.images, batch_size=batch_size).argmax(axis=1)
    elif target == "label":
        if folder.labels is None:
            raise InvalidInputError(
                "--target label needs one sub-folder per class under --images; the images are "
                "not arranged that way: use --target predicted or a class index"
            )
        targets = folder.labels
    else:
        try:
            targets = np.full(len(folder.names), int(target))
        except ValueError:
            raise click.BadParameter(
                f"expected 'predicted', 'label' or a class index; got {target!r}",
                param_hint="--target",
            ) from None
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{method} on {len(folder.names)} images", total=len(folder.names))
        run = attribute_folder(
            model,
            folder,
            Path(out_dir),
            method=method,
            params=_key_values(params, "--param"),
            targets=targets,
            batch_size=batch_size,
            progress=lambda n: progress.advance(task, n),
        )
    click.echo(
        f"{run.computed} images attributed, {run.reused} reused from an earlier run; "
        f"manifest: {run.manifest}"
    )


def _merge(config: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != ():
        config[key] = value


@cli.command()
@click.option("--model-a", "model_a", default=None, help="Model A's file or SavedModel folder.")
@click.option("--model-b", "model_b", default=None, help="Model B's file or SavedModel folder.")
@click.option("--data", default=None, help="Folder of images (sub-folders per class give labels).")
@click.option("--labels", default=None, help="CSV file with columns filename,label.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for report.html, the figures, the tables and comparison.json.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="imacs.toml with [model_a], [model_b], [data] and [compare] sections.",
)
@click.option("--method", default=None, help=f"Attribution method [default: {DEFAULT_METHOD}].")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method parameter; VALUE is read as JSON when it parses. Repeatable.",
)
@click.option("--segmenter", default=None, help="Segmenter [default: felzenszwalb].")
@click.option(
    "--featurizer", default=None, help="Comma-separated featurizers [default: color,texture,shape]."
)
@click.option("--n-clusters", type=int, default=None, help="Clusters [default: by silhouette].")
@click.option(
    "--targets",
    type=click.Choice(["label", "pred_a", "pred_b", "own"]),
    default=None,
    help="Which class each model explains [default: own, its own prediction].",
)
@click.option("--top-k", type=int, default=None, help="Salient regions per image and model.")
@click.option(
    "--causal",
    type=click.Choice(["mean", "blur", "none"]),
    default=None,
    help="Fill that hides the top clusters' regions to measure each model's drop, or none "
    "to skip that check [default: mean].",
)
@click.option("--seed", type=int, default=None, help="Seed of everything random [default: 0].")
@click.option("--batch-size", type=int, default=None, help="Most inputs per model call.")
@click.option("--size", default=None, metavar="HxW", help="Resize every image (bilinear).")
@click.option("--skip-unreadable", is_flag=True, help="Warn about and skip undecodable files.")
@click.option(
    "--store",
    default=None,
    help="Folder that keeps results between runs [default: $IMACS_STORE or ~/.cache/imacs/store].",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["csv", "json", "parquet"]),
    help="Table format, repeatable [default: csv and json]; parquet needs pyarrow.",
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option("--no-figures", is_flag=True, help="Do not write the PNG and SVG figures.")
@click.option(
    "--model-a-option", "options_a", multiple=True, metavar="KEY=VALUE", help="Adapter option."
)
@click.option(
    "--model-b-option", "options_b", multiple=True, metavar="KEY=VALUE", help="Adapter option."
)
def compare(
    model_a: str | None,
    model_b: str | None,
    data: str | None,
    labels: str | None,
    out_dir: str,
    config_path: str | None,
    method: str | None,
    params: tuple[str, ...],
    segmenter: str | None,
    featurizer: str | None,
    n_clusters: int | None,
    targets: str | None,
    top_k: int | None,
    causal: str | None,
    seed: int | None,
    batch_size: int | None,
    size: str | None,
    skip_unreadable: bool,
    store: str | None,
    formats: tuple[str, ...],
    no_report: bool,
    no_figures: bool,
    options_a: tuple[str, ...],
    options_b: tuple[str, ...],
) -> None:
    """Compare two models on a folder of images; write the report and tables to --out.

    A rerun with the same store finds the finished attributions and does not redo them.
    """
    from imacs.comparison.config import load_config

    config = load_config(config_path) if config_path else {
        "model_a": {}, "model_b": {}, "data": {}, "compare": {}
    }  # fmt: skip
    source = config["data"]
    data = data or source.get("path")
    if not data:
        raise click.UsageError("give --data or [data] path in --config")
    models = []
    for side, path, options in (("a", model_a, options_a), ("b", model_b, options_b)):
        section = config[f"model_{side}"]
        path = path or section.get("path")
        if not path:
            raise click.UsageError(f"give --model-{side} or [model_{side}] path in --config")
        kwargs = dict(section.get("options", {}))
        kwargs.update(_key_values(options, f"--model-{side}-option", as_text=True))
        if "preprocessing" in section:
            kwargs["preprocessing"] = imacs.Preprocessing(**section["preprocessing"])
        if section.get("adapter"):
            kwargs["adapter"] = section["adapter"]
        models.append(imacs.load_model(path, **kwargs))
    settings = dict(config["compare"])
    _merge(settings, "method", method)
    if params:
        settings["method_params"] = {
            **settings.get("method_params", {}),
            **_key_values(params, "--param"),
        }
    _merge(settings, "segmenter", segmenter)
    if featurizer:
        settings["featurizer"] = [f.strip() for f in featurizer.split(",") if f.strip()]
    for key, value in (
        ("n_clusters", n_clusters),
        ("targets", targets),
        ("top_k", top_k),
        ("causal", causal),
        ("seed", seed),
        ("batch_size", batch_size),
        ("store", store),
    ):
        _merge(settings, key, value)
    resize = _size(size) or (tuple(source["size"]) if "size" in source else None)
    comparison = imacs.compare(
        models[0],
        models[1],
        data,
        labels or source.get("labels"),
        size=resize,
        on_error="skip" if skip_unreadable else source.get("on_error", "raise"),
        class_names=source.get("class_names"),
        **settings,
    )
    written = comparison.save(
        out_dir, report=not no_report, figures=not no_figures, formats=formats or ("csv", "json")
    )
    click.echo(repr(comparison))
    click.echo(headline(comparison))
    click.echo(f"tables written to {written}")
    if (written / "report.html").is_file() and not no_report:
        click.echo(f"report: {written / 'report.html'} (open it in a browser)")
    _echo_alerts(comparison)


def _echo_alerts(comparison: Any) -> None:
    """The comparison's alerts on standard error, last, where a user reading the end sees them."""
    for alert in comparison.alerts:
        click.echo(str(alert), err=True)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    default="imacs-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the report, the tables and the store of results.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything random.")
@click.option("--quiet", is_flag=True, help="No progress; print only the result.")
def demo(out_dir: str, seed: int, quiet: bool) -> None:
    """Train a PyTorch and a Keras CNN, one on digits with a planted shortcut, and compare them.

    Model B learns to read the label off a corner patch; the report's top cluster is
    that patch. Takes about a minute on a laptop CPU; a rerun reuses the stored results.
    """
    from imacs.demo.run import run_demo

    out = Path(out_dir)
    comparison = run_demo(out, seed=seed, progress=not quiet)
    report = out / "report.html"
    click.echo(repr(comparison))
    click.echo(headline(comparison))
    if report.is_file():
        click.echo(f"report: {report} (open it in a browser)")
    else:
        click.echo(f"tables written to {out}")
    _echo_alerts(comparison)


_STORE_OPTION = click.option(
    "--store",
    "store_path",
    default=None,
    type=click.Path(file_okay=False),
    help="The store folder [default: $IMACS_STORE or ~/.cache/imacs/store].",
)
_YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


@cli.group()
def store() -> None:
    """Inspect, check and tidy the store of results that comparisons reuse between runs."""


def _open_store(path: str | None) -> Any:
    from imacs.store import Store, default_store_path

    return Store(default_store_path() if path is None else path, create=False)


def _amount(size: float) -> str:
    units = ("bytes", "kB", "MB", "GB", "TB")
    power = 0
    while size >= 1000 and power < len(units) - 1:
        size /= 1000
        power += 1
    return f"{size:.0f} bytes" if power == 0 else f"{size:.1f} {units[power]}"


def _written_before(text: str) -> float:
    """``DATE`` of ``--older-than`` as a POSIX time: an ISO date or time, or an age (30d)."""
    import datetime
    import re
    import time

    age = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if age:
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[age.group(2)]
        return time.time() - float(age.group(1)) * seconds
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"expected a date such as 2024-05-31 or 2024-05-31T12:00, or an age such as 30d, "
            f"12h or 2w; got {text!r}",
            param_hint="--older-than",
        ) from None


@store.command("info")
@_STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def store_info(store_path: str | None, as_json: bool) -> None:
    """Where the store is, its size, and how many results each stage holds."""
    opened = _open_store(store_path)
    stages: dict[str, dict[str, int]] = {
        name: {"results": 0, "bytes": 0} for name in opened.stages()
    }
    for result in opened.results():
        stages[result.stage]["results"] += 1
        stages[result.stage]["bytes"] += result.size
    leftovers = opened.temporaries()
    total = {key: sum(stage[key] for stage in stages.values()) for key in ("results", "bytes")}
    if as_json:
        info = {"store": str(opened.root), "stages": stages, "total": total}
        click.echo(json.dumps(info | {"stale_temporary_files": len(leftovers)}, indent=2))
        return
    table = Table(title=f"imacs store {opened.root}", title_justify="left")
    table.add_column("stage")
    table.add_column("results", justify="right")
    table.add_column("size", justify="right")
    for name, stage in stages.items():
        table.add_row(name, str(stage["results"]), _amount(stage["bytes"]))
    table.add_row("total", str(total["results"]), _amount(total["bytes"]), style="bold")
    Console().print(table)
    if leftovers:
        click.echo(
            f"{len(leftovers)} temporary files left by killed writers; "
            "`imacs store verify --fix` removes them"
        )


@store.command("verify")
@_STORE_OPTION
@click.option(
    "--fix",
    is_flag=True,
    help="Remove damaged results (the next comparison that needs them computes them again) "
    "and temporary files left by killed writers.",
)
def store_verify(store_path: str | None, fix: bool) -> None:
    """Check every stored result against its checksum.

    Lists the damaged results. The exit status is 1 if any are damaged, unless --fix
    removed them.
    """
    opened = _open_store(store_path)
    checked, damaged = 0, []
    for result in opened.results():
        checked += 1
        problem = opened.check(result)
        if problem is not None:
            damaged.append(result.path)
            click.echo(f"damaged: {result.path}: {problem}")
    leftovers = opened.temporaries()
    for path in leftovers:
        click.echo(f"left over: {path}")
    if fix:
        opened.remove(damaged + leftovers)
        click.echo(
            f"checked {checked} results: removed {len(damaged)} damaged and "
            f"{len(leftovers)} temporary files"
        )
        return
    click.echo(f"checked {checked} results: {len(damaged)} damaged")
    if damaged:
        click.echo("run `imacs store verify --fix` to remove them; they are computed again")
        # SystemExit, not ctx.exit: main() runs click outside standalone mode
        sys.exit(1)


@store.command("prune")
@_STORE_OPTION
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DATE",
    help="Remove results written before DATE: 2024-05-31, 2024-05-31T12:00, or an age "
    "such as 30d, 12h or 2w.",
)
@_YES_OPTION
def store_prune(store_path: str | None, older_than: str, yes: bool) -> None:
    """Remove results written before a date, to free space; they are computed again if needed."""
    import datetime

    cutoff = _written_before(older_than)
    opened = _open_store(store_path)
    old = [result for result in opened.results() if result.mtime < cutoff]
    when = datetime.datetime.fromtimestamp(cutoff).isoformat(sep=" ", timespec="seconds")
    if not old:
        click.echo(f"no results in {opened.root} were written before {when}")
        return
    size = _amount(sum(result.size for result in old))
    if not yes:
        click.confirm(
            f"remove {len(old)} results ({size}) written before {when} from {opened.root}?",
            abort=True,
        )
    opened.remove([result.path for result in old] + opened.temporaries())
    click.echo(f"removed {len(old)} results ({size}) written before {when}")


@store.command("clear")
@_STORE_OPTION
@_YES_OPTION
def store_clear(store_path: str | None, yes: bool) -> None:
    """Remove every stored result; the store stays, empty, for the next comparison."""
    opened = _open_store(store_path)
    count = sum(1 for _ in opened.results())
    if not yes:
        click.confirm(f"remove all {count} results from {opened.root}?", abort=True)
    freed = opened.clear()
    click.echo(f"removed {count} results ({_amount(freed)}) from {opened.root}")


def _debugging(argv: list[str]) -> bool:
    """Whether the user asked for tracebacks: ``--debug`` before the command, or IMACS_DEBUG."""
    flag = os.environ.get("IMACS_DEBUG", "").strip().lower()
    return flag not in ("", "0", "false", "no") or "--debug" in argv[: _command_position(argv)]


def _command_position(argv: list[str]) -> int:
    """Where the subcommand starts: global options come before it."""
    for position, argument in enumerate(argv):
        if not argument.startswith("-"):
            return position
    return len(argv)


def _os_error_line(exc: OSError) -> str:
    """An OSError in one line, with the file it concerns when it names one."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{reason}: {os.fsdecode(exc.filename)!r}"
    return reason


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every imacs error and OSError into one line.

    The exit status is 1 for those errors. ``imacs --debug COMMAND`` (or IMACS_DEBUG=1)
    shows the traceback instead, for a bug report.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debugging(args)
    if "--debug" in args[: _command_position(args)]:
        args.remove("--debug")
    try:
        # without standalone mode, click returns ctx.exit()'s status instead of exiting
        status = cli(args=args, standalone_mode=False, prog_name="imacs")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except (ImacsError, OSError) as exc:
        if debug:
            raise
        line = str(exc) if isinstance(exc, ImacsError) else _os_error_line(exc)
        click.echo(f"error: {' '.join(line.split())}", err=True)
        sys.exit(1)
    if isinstance(status, int) and status:
        sys.exit(status)


if __name__ == "__main__":
    main()
