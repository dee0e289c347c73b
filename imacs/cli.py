"""The ``imacs`` command line."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import imacs
from imacs import logs
from imacs.adapters.options import OptionText
from imacs.api import DEFAULT_METHOD
from imacs.cli_terms import in_cli_terms
from imacs.errors import ImacsError, InvalidInputError, UntrustedModelError
from imacs.plugins import PluginInfo
from imacs.progress import Progress
from imacs.report.headline import headline

logger = logging.getLogger(__name__)

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


# -- shared options: one vocabulary across commands ------------------------------------------
#
# One model: --model, --name, --model-option, --scale/--mean/--std. Two models: the same
# words with -a and -b (--model-a, --name-a, --model-a-option, --scale-a ...), and the
# unsuffixed preprocessing flags set both. Images: --data; outputs: --out; the store:
# --store; a component's parameters: --<component>-option. Old spellings still work, hidden
# from --help, with a warning.

_VERBOSITY = "imacs.verbosity"


def _verbosity_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--quiet`` and ``--verbose``: set up logging, and quiet the frameworks, first."""

    @functools.wraps(command)
    def run(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        if quiet and verbose:
            raise click.UsageError("give --quiet or --verbose, not both")
        verbosity = logs.QUIET if quiet else logs.VERBOSE if verbose else logs.NORMAL
        logs.configure(verbosity)
        if verbosity < logs.VERBOSE:
            logs.quiet_frameworks()
        click.get_current_context().meta[_VERBOSITY] = verbosity
        return command(*args, **kwargs)

    run = click.option(
        "--verbose",
        "-v",
        is_flag=True,
        help="Also show debugging details and the frameworks' own log lines and warnings.",
    )(run)
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="No progress and no information: print only the result's path (warnings and "
        "errors still go to standard error).",
    )(run)


def _verbosity() -> int:
    return int(click.get_current_context().meta.get(_VERBOSITY, logs.NORMAL))


def _renamed(old: str, new: str, dest: str, **attrs: Any) -> Callable[..., Any]:
    """A hidden, deprecated spelling ``old`` of the option ``new`` (parameter ``dest``)."""
    alias = f"deprecated_{dest}"

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(alias)
            if value is not None and value != ():
                logger.warning("%s is deprecated and will be removed: use %s", old, new)
                current = kwargs.get(dest)
                if isinstance(value, tuple):
                    kwargs[dest] = (*value, *(current or ()))
                elif current is None:
                    kwargs[dest] = value
                else:
                    raise click.UsageError(f"give {new} once ({old} is its old spelling)")
            return command(*args, **kwargs)

        return click.option(old, alias, hidden=True, default=None, **attrs)(run)

    return decorate


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


def _named_key_values(pairs: tuple[str, ...], what: str) -> dict[str, dict[str, Any]]:
    """``("color.bins=16",)`` -> ``{"color": {"bins": 16}}``: parameters per component."""
    parsed: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, dot, rest = pair.partition(".")
        if not dot or not name or "=" in name:
            raise click.BadParameter(
                f"expected NAME.KEY=VALUE, such as color.bins=16; got {pair!r}", param_hint=what
            )
        parsed.setdefault(name, {}).update(_key_values((rest,), what))
    return parsed


def _merged(
    file_params: Mapping[str, Any] | None, cli_params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The file's parameters updated by the command line's, one level deep per name."""
    if not file_params and not cli_params:
        return None
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (file_params or {}).items()}
    for key, value in cli_params.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected numbers separated by commas, one per channel or one for all, such as "
            f"0.485,0.456,0.406; got {text!r}",
            param_hint=option,
        ) from None


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    height, sep, width = text.lower().partition("x")
    try:
        size = int(height), int(width)
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1:
        raise click.BadParameter(
            f"expected HEIGHTxWIDTH, two whole numbers >= 1 such as 224x224; got {text!r}",
            param_hint="--size",
        )
    return size


def _preprocessing_options(suffix: str = "", who: str = "the model") -> Callable[..., Any]:
    """``--scale``, ``--mean`` and ``--std`` (with ``suffix``: ``--scale-a`` ...)."""
    dest = suffix.replace("-", "_")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for flag, help_text in reversed(
            (
                ("scale", f"Multiply the pixels by this inside {who} (1/255 for [0, 1] input)."),
                ("mean", f"Per-channel mean {who} subtracts after scaling, comma-separated."),
                ("std", f"Per-channel std {who} divides by after the mean, comma-separated."),
            )
        ):
            command = click.option(
                f"--{flag}{suffix}",
                f"{flag}{dest}",
                default=None,
                metavar="NUMBER" if flag == "scale" else "NUMBERS",
                help=help_text,
            )(command)
        return command

    return decorate


def _preprocessing_fields(
    scale: str | None, mean: str | None, std: str | None, suffix: str = ""
) -> dict[str, Any]:
    """The preprocessing fields the flags set (only those given)."""
    fields: dict[str, Any] = {}
    if scale is not None:
        fields["scale"] = _scale(scale, f"--scale{suffix}")
    if mean is not None:
        fields["mean"] = _floats(mean, f"--mean{suffix}")
    if std is not None:
        fields["std"] = _floats(std, f"--std{suffix}")
    return fields


def _scale(text: str, option: str) -> float:
    try:
        numerator, slash, denominator = text.partition("/")
        return float(numerator) / (float(denominator) if slash else 1.0)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(
            f"expected a number such as 0.00392 or 1/255; got {text!r}", param_hint=option
        ) from None


def _preprocessing(fields: dict[str, Any], options: str) -> imacs.Preprocessing:
    try:
        return imacs.Preprocessing(**fields)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param_hint=options) from None
    except TypeError:
        raise click.BadParameter(
            f"expected preprocessing with keys scale, mean, std, channel_order; got {fields}",
            param_hint=options,
        ) from None


@contextmanager
def _importable(folders: list[Path]) -> Iterator[None]:
    """Let a factory module in ``folders`` (beside imacs.toml, the working directory) import."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with suppress(ValueError):
                sys.path.remove(folder)


def _load_model(
    path: str, options: dict[str, Any], *, name: str | None, folders: list[Path], side: str = ""
) -> Any:
    """``imacs.load_model`` with factories importable and native log lines held back."""
    quiet = logs.native_output_captured() if _verbosity() < logs.VERBOSE else nullcontext()
    try:
        with _importable(folders), quiet:
            model = imacs.load_model(path, name=name, **options)
    except UntrustedModelError as error:
        # the adapter names its Python arguments; say how this command gives them, for
        # the side that failed (in_cli_terms rewrites by command and cannot tell A from B)
        option = f"--model-{side}-option" if side else "--model-option"
        how = f"{option} trust=true (or {option} factory=module:function for weights)"
        if side:
            how += f", or options = {{ trust = true }} in [model_{side}] of imacs.toml"
        raise UntrustedModelError(f"{error}. On the command line: {how}") from None
    label = f"model {side.upper()}" if side else "the model"
    logger.info("loaded %s from %s (%s adapter)", label, path, model.name)
    return model


def _data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How a folder of images is read, the same for every command that reads one."""
    options = (
        click.option(
            "--size",
            default=None,
            metavar="HEIGHTxWIDTH",
            help="Resize every image to this size (bilinear), e.g. 224x224.",
        ),
        click.option(
            "--skip-unreadable",
            is_flag=True,
            help="Warn about and leave out image files that cannot be decoded.",
        ),
        click.option(
            "--convert-grayscale",
            is_flag=True,
            help="Give grey images three equal channels, for models that take RGB.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _result(path: Path, lines: list[str]) -> None:
    """The command's result on standard output: only its path with --quiet."""
    if _verbosity() <= logs.QUIET:
        click.echo(str(path))
        return
    for line in lines:
        click.echo(line)


@cli.command()
@_verbosity_options
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True),
    help="Model file or SavedModel folder.",
)
@click.option("--name", default=None, help="The model's name, for the manifest.")
@click.option(
    "--data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of images (sub-folders per class give labels). Required.",
)
@_renamed("--images", "--data", "data", type=click.Path(exists=True, file_okay=False))
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
    "--method-option",
    "method_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method parameter such as n_steps=64; VALUE is read as JSON when it parses. Repeatable.",
)
@_renamed("--param", "--method-option", "method_options", multiple=True)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option such as factory=pkg.mod:build or trust=true, read as the type the "
    "adapter declares (trust takes true/false, yes/no or 1/0). Repeatable.",
)
@_preprocessing_options()
@click.option(
    "--targets",
    default=None,
    help="Which class the maps explain: 'own' (the model's prediction, the default), "
    "'label' (the sub-folder's class) or a class index.",
)
@_renamed("--target", "--targets", "targets")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Most inputs sent to the model in one call.",
)
@_data_options
def attribute(
    model_path: str,
    name: str | None,
    data: str | None,
    out_dir: str,
    method: str,
    method_options: tuple[str, ...],
    model_options: tuple[str, ...],
    scale: str | None,
    mean: str | None,
    std: str | None,
    targets: str | None,
    batch_size: int,
    size: str | None,
    skip_unreadable: bool,
    convert_grayscale: bool,
) -> None:
    """Attribute every image in a folder; write maps (.npy), overlays (.png) and a manifest.

    A rerun with the same model, method and parameters skips images already done.
    """
    from imacs.attribute_folder import attribute_folder

    model = _one_model(model_path, name, model_options, scale, mean, std)
    folder = _image_folder(data, size, skip_unreadable, convert_grayscale)
    progress = Progress(_verbosity() > logs.QUIET)
    with progress.running():
        chosen = _attribute_targets(
            targets or "own", model, folder.images, folder.labels, batch_size, progress
        )
        run = attribute_folder(
            model,
            folder,
            Path(out_dir),
            method=method,
            params=_key_values(method_options, "--method-option"),
            targets=chosen,
            batch_size=batch_size,
            progress=progress,
        )
    _result(
        Path(out_dir),
        [
            f"{run.computed} images attributed, {run.reused} reused from an earlier run; "
            f"manifest: {run.manifest}"
        ],
    )


def _one_model(
    model_path: str,
    name: str | None,
    model_options: tuple[str, ...],
    scale: str | None,
    mean: str | None,
    std: str | None,
) -> Any:
    """The model of a one-model command, with its --model-option and preprocessing flags."""
    options = _key_values(model_options, "--model-option", as_text=True)
    fields = _preprocessing_fields(scale, mean, std)
    if fields:
        if "preprocessing" in options:
            raise click.UsageError(
                "give the preprocessing once: --scale/--mean/--std or --model-option "
                "preprocessing=..."
            )
        options["preprocessing"] = _preprocessing(fields, "--scale/--mean/--std")
    return _load_model(model_path, options, name=name, folders=[Path.cwd()])


def _image_folder(
    data: str | None, size: str | None, skip_unreadable: bool, convert_grayscale: bool
) -> Any:
    """The --data folder, read with the data options."""
    from imacs.data.folder import read_image_folder

    if data is None:
        raise click.UsageError("give --data, the folder of images")
    return read_image_folder(
        data,
        size=_size(size),
        on_error="skip" if skip_unreadable else "raise",
        convert_grayscale=convert_grayscale,
    )


def _attribute_targets(
    targets: str,
    model: Any,
    images: Any,
    labels: Any,
    batch_size: int,
    progress: Progress,
) -> np.ndarray:
    """The class each map explains, for ``images`` (and their folder ``labels`` or None)."""
    if targets in ("own", "predicted"):
        outputs = []
        with progress.stage("predicting", len(images)) as tick:
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                outputs.append(model.predict(batch, batch_size=batch_size))
                tick(len(batch))
        return np.concatenate(outputs).argmax(axis=1)
    if targets == "label":
        if labels is None:
            raise InvalidInputError(
                "--targets label needs one sub-folder per class under --data; the images are "
                "not arranged that way: use --targets own or a class index"
            )
        return np.asarray(labels)
    try:
        return np.full(len(images), int(targets))
    except ValueError:
        raise click.BadParameter(
            f"expected 'own', 'label' or a class index; got {targets!r}", param_hint="--targets"
        ) from None


def _merge(config: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != ():
        config[key] = value


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [f.strip() for f in text.split(",") if f.strip()]


@cli.command()
@_verbosity_options
@click.option("--model-a", "model_a", default=None, help="Model A's file or SavedModel folder.")
@click.option("--model-b", "model_b", default=None, help="Model B's file or SavedModel folder.")
@click.option("--name-a", default=None, help="Model A's name in the report and tables.")
@click.option("--name-b", default=None, help="Model B's name in the report and tables.")
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
    help="imacs.toml with [model_a], [model_b], [data] and [compare] sections; options "
    "given here win over it.",
)
@click.option(
    "--model-a-option", "options_a", multiple=True, metavar="KEY=VALUE", help="Adapter option."
)
@click.option(
    "--model-b-option", "options_b", multiple=True, metavar="KEY=VALUE", help="Adapter option."
)
@_preprocessing_options(who="both models")
@_preprocessing_options("-a", who="model A")
@_preprocessing_options("-b", who="model B")
@click.option("--method", default=None, help=f"Attribution method [default: {DEFAULT_METHOD}].")
@click.option(
    "--method-option",
    "method_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method parameter such as n_steps=64; VALUE is read as JSON when it parses. Repeatable.",
)
@_renamed("--param", "--method-option", "method_options", multiple=True)
@click.option("--segmenter", default=None, help="Segmenter [default: felzenszwalb].")
@click.option(
    "--segmenter-option",
    "segmenter_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Segmenter parameter such as sigma=2. Repeatable.",
)
@click.option(
    "--featurizer", default=None, help="Comma-separated featurizers [default: color,texture,shape]."
)
@click.option(
    "--featurizer-option",
    "featurizer_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    help="Parameter of one featurizer, such as color.bins=16. Repeatable.",
)
@click.option(
    "--metric",
    default=None,
    help="Comma-separated agreement metrics [default: spearman,top-k-iou,ssim,cosine].",
)
@click.option(
    "--metric-option",
    "metric_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    help="Parameter of one metric, such as top-k-iou.fraction=0.1. Repeatable.",
)
@click.option("--clusterer", default=None, help="Clusterer [default: kmeans].")
@click.option(
    "--clusterer-option",
    "clusterer_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Clusterer parameter. Repeatable.",
)
@click.option(
    "--executor",
    default=None,
    help="Where the attribution and per-image tasks run: in-process, or ray with the "
    "imacs-ray plugin (docs/scale-out.md) [default: in-process].",
)
@click.option(
    "--executor-option",
    "executor_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Executor parameter, such as address=auto for ray. Repeatable.",
)
@click.option(
    "--n-clusters",
    type=click.IntRange(min=1),
    default=None,
    help="Clusters [default: by silhouette].",
)
@click.option(
    "--targets",
    type=click.Choice(["label", "pred_a", "pred_b", "own"]),
    default=None,
    help="Which class each model explains [default: own, its own prediction].",
)
@click.option(
    "--map-sign",
    type=click.Choice(["signed", "absolute"]),
    default=None,
    help="Score regions on the maps as they are, or on their magnitudes [default: signed].",
)
@click.option(
    "--top-k", type=click.IntRange(min=1), default=None, help="Salient regions per image and model."
)
@click.option(
    "--area-fraction",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=None,
    help="Instead of --top-k: the densest regions that cover this share of the image.",
)
@click.option(
    "--causal",
    type=click.Choice(["mean", "blur", "none"]),
    default=None,
    help="Fill that hides the top clusters' regions to measure each model's drop, or none "
    "to skip that check [default: mean].",
)
@click.option(
    "--causal-clusters", type=click.IntRange(min=1), default=None, help="Clusters checked [5]."
)
@click.option(
    "--causal-max-images",
    type=click.IntRange(min=1),
    default=None,
    help="Images per checked cluster [50].",
)
@click.option(
    "--n-permutations", type=click.IntRange(min=100), default=None, help="Sign-flip test draws."
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=None,
    help="False discovery rate, and the intervals' level [default: 0.05].",
)
@click.option(
    "--min-effect",
    type=click.FloatRange(min=0),
    default=None,
    help="Smallest |B - A| a significant cluster needs to count as meaningful.",
)
@click.option(
    "--embedding-model",
    type=click.Choice(["a", "b"]),
    default=None,
    help="Whose inner features the embedding featurizer uses [default: a].",
)
@click.option(
    "--quality",
    "quality",
    multiple=True,
    metavar="NAME",
    help="Quality measure run on a sample of images for both models, such as deletion or "
    "model-randomisation (docs/quality.md). Repeatable [default: none].",
)
@click.option(
    "--quality-option",
    "quality_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    help="Parameter of one quality measure, such as deletion.n_steps=16. Repeatable.",
)
@click.option(
    "--quality-images",
    type=click.IntRange(min=1),
    default=None,
    help="Images the quality measures run on [32].",
)
@click.option(
    "--ignore-alert",
    "ignore_alerts",
    multiple=True,
    metavar="CODE",
    help="An alert not to check for (docs/comparison.md, Alerts). Repeatable.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Seed of everything random [0]."
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Most inputs per model call."
)
@_data_options
@click.option(
    "--store",
    default=None,
    help="Folder or URL (s3://bucket/path...) that keeps results between runs "
    "[default: $IMACS_STORE or ~/.cache/imacs/store].",
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
def compare(
    model_a: str | None,
    model_b: str | None,
    name_a: str | None,
    name_b: str | None,
    data: str | None,
    labels: str | None,
    out_dir: str,
    config_path: str | None,
    options_a: tuple[str, ...],
    options_b: tuple[str, ...],
    method: str | None,
    method_options: tuple[str, ...],
    segmenter: str | None,
    segmenter_options: tuple[str, ...],
    featurizer: str | None,
    featurizer_options: tuple[str, ...],
    metric: str | None,
    metric_options: tuple[str, ...],
    clusterer: str | None,
    clusterer_options: tuple[str, ...],
    executor: str | None,
    executor_options: tuple[str, ...],
    quality: tuple[str, ...],
    quality_options: tuple[str, ...],
    size: str | None,
    skip_unreadable: bool,
    convert_grayscale: bool,
    store: str | None,
    formats: tuple[str, ...],
    no_report: bool,
    no_figures: bool,
    **flags: Any,
) -> None:
    """Compare two models on a folder of images; write the report and tables to --out.

    A rerun with the same store finds the finished attributions and does not redo them.
    """
    from imacs.comparison.compare import DEFAULT_SEGMENTER, DEFAULT_SEGMENTER_PARAMS
    from imacs.comparison.config import load_config
    from imacs.data.sources import as_data_source

    config = load_config(config_path) if config_path else {
        "model_a": {}, "model_b": {}, "data": {}, "compare": {}
    }  # fmt: skip
    # a factory module beside imacs.toml imports without PYTHONPATH, as one in the
    # working directory does
    folders = [Path(config_path).resolve().parent] if config_path else []
    folders.append(Path.cwd())
    source = config["data"]
    data = data or source.get("path")
    if not data:
        raise click.UsageError("give --data or [data] path in --config")
    both = _preprocessing_fields(flags.pop("scale"), flags.pop("mean"), flags.pop("std"))
    models = []
    for side, path, options, name in (
        ("a", model_a, options_a, name_a),
        ("b", model_b, options_b, name_b),
    ):
        section = config[f"model_{side}"]
        path = path or section.get("path")
        if not path:
            raise click.UsageError(f"give --model-{side} or [model_{side}] path in --config")
        kwargs = dict(section.get("options", {}))
        kwargs.update(_key_values(options, f"--model-{side}-option", as_text=True))
        fields = {
            **section.get("preprocessing", {}),
            **both,
            **_preprocessing_fields(
                flags.pop(f"scale_{side}"),
                flags.pop(f"mean_{side}"),
                flags.pop(f"std_{side}"),
                f"-{side}",
            ),
        }
        if fields:
            if "preprocessing" in kwargs:
                raise click.UsageError(
                    f"give model {side.upper()}'s preprocessing once: --scale/--mean/--std "
                    f"(or [model_{side}] preprocessing) or --model-{side}-option preprocessing=..."
                )
            kwargs["preprocessing"] = _preprocessing(
                fields, f"--scale-{side}/--mean-{side}/--std-{side}"
            )
        if section.get("adapter"):
            kwargs["adapter"] = section["adapter"]
        name = name or section.get("name")
        models.append(_load_model(path, kwargs, name=name, folders=folders, side=side))

    settings = dict(config["compare"])
    _merge(settings, "method", method)
    _merge(settings, "segmenter", segmenter)
    _merge(settings, "featurizer", _names(featurizer))
    _merge(settings, "metrics", _names(metric))
    _merge(settings, "clusterer", clusterer)
    _merge(settings, "executor", executor)
    _merge(settings, "quality", list(quality) or None)
    for key, file_params in (
        ("method_params", _key_values(method_options, "--method-option")),
        ("segmenter_params", _key_values(segmenter_options, "--segmenter-option")),
        ("clusterer_params", _key_values(clusterer_options, "--clusterer-option")),
        ("executor_params", _key_values(executor_options, "--executor-option")),
        ("featurizer_params", _named_key_values(featurizer_options, "--featurizer-option")),
        ("metric_params", _named_key_values(metric_options, "--metric-option")),
        ("quality_params", _named_key_values(quality_options, "--quality-option")),
    ):
        _merge(settings, key, _merged(settings.get(key), file_params))
    flags["ignore_alerts"] = list(flags["ignore_alerts"]) or None
    for key, value in flags.items():
        _merge(settings, key, value)
    if settings.get("segmenter", DEFAULT_SEGMENTER) == DEFAULT_SEGMENTER and settings.get(
        "segmenter_params"
    ):
        # an option adjusts the default segmenter's tuned parameters rather than replace them
        settings["segmenter_params"] = {**DEFAULT_SEGMENTER_PARAMS, **settings["segmenter_params"]}
    if "area_fraction" in settings and "top_k" not in settings:
        settings["top_k"] = None  # the two choose the salient regions; the fraction was given
    _merge(settings, "store", store)
    dataset = as_data_source(
        data,
        labels or source.get("labels"),
        size=_size(size) or (tuple(source["size"]) if "size" in source else None),
        on_error="skip" if skip_unreadable else source.get("on_error", "raise"),
        class_names=source.get("class_names"),
        convert_grayscale=convert_grayscale or source.get("convert_grayscale", False),
    )
    comparison = imacs.compare(
        models[0], models[1], dataset, progress=_verbosity() > logs.QUIET, **settings
    )
    written = comparison.save(
        out_dir,
        report=not no_report,
        figures=not no_figures,
        formats=formats or ("csv", "json"),
        progress=_verbosity() > logs.QUIET,
    )
    lines = [repr(comparison), headline(comparison), f"tables written to {written}"]
    if (written / "report.html").is_file() and not no_report:
        lines.append(f"report: {written / 'report.html'} (open it in a browser)")
    _result(written, lines)
    _echo_alerts(comparison)


def _echo_alerts(comparison: Any) -> None:
    """The comparison's alerts on standard error, last, where a user reading the end sees them.

    comparison.json and the report keep the library's words; here the advice names the
    options of ``imacs compare`` (``--method-option n_steps=64``, not ``method_params=``).
    """
    for alert in comparison.alerts:
        click.echo(in_cli_terms(str(alert), "compare"), err=True)


@cli.command()
@_verbosity_options
@click.option(
    "--out",
    "out_dir",
    default="imacs-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the report, the tables and the store of results.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything random.")
def demo(out_dir: str, seed: int) -> None:
    """Train a PyTorch and a Keras CNN, one on digits with a planted shortcut, and compare them.

    Model B learns to read the label off a corner patch; the report's top cluster is
    that patch. Takes about a minute on a laptop CPU; a rerun reuses the stored results.
    """
    from imacs.demo.run import check_frameworks, run_demo

    check_frameworks()
    if _verbosity() < logs.VERBOSE:
        with logs.native_output_captured():
            import keras  # noqa: F401 - TensorFlow logs at import; the demo imports it next

    out = Path(out_dir)
    comparison = run_demo(out, seed=seed, progress=_verbosity() > logs.QUIET)
    report = out / "report.html"
    lines = [repr(comparison), headline(comparison)]
    if report.is_file():
        lines.append(f"report: {report} (open it in a browser)")
    else:
        lines.append(f"tables written to {out}")
    _result(out, lines)
    _echo_alerts(comparison)


_STORE_OPTION = click.option(
    "--store",
    "store_path",
    default=None,
    help="The store folder or URL [default: $IMACS_STORE or ~/.cache/imacs/store].",
)
_YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


@cli.group()
def store() -> None:
    """Inspect, check and tidy the store of results that comparisons reuse between runs."""


def _open_store(path: str | None) -> Any:
    from imacs.store import open_store

    return open_store(path, create=False)


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
@_verbosity_options
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
        info = {"store": opened.location, "stages": stages, "total": total}
        click.echo(json.dumps(info | {"stale_temporary_files": len(leftovers)}, indent=2))
        return
    table = Table(title=f"imacs store {opened.location}", title_justify="left")
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
@_verbosity_options
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
@_verbosity_options
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
        click.echo(f"no results in {opened.location} were written before {when}")
        return
    size = _amount(sum(result.size for result in old))
    if not yes:
        click.confirm(
            f"remove {len(old)} results ({size}) written before {when} from {opened.location}?",
            abort=True,
        )
    opened.remove([result.path for result in old] + opened.temporaries())
    click.echo(f"removed {len(old)} results ({size}) written before {when}")


@store.command("clear")
@_verbosity_options
@_STORE_OPTION
@_YES_OPTION
def store_clear(store_path: str | None, yes: bool) -> None:
    """Remove every stored result; the store stays, empty, for the next comparison."""
    opened = _open_store(store_path)
    count = sum(1 for _ in opened.results())
    if not yes:
        click.confirm(f"remove all {count} results from {opened.location}?", abort=True)
    freed = opened.clear()
    click.echo(f"removed {count} results ({_amount(freed)}) from {opened.location}")


@cli.command()
@_verbosity_options
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True),
    help="Model file or SavedModel folder.",
)
@click.option("--name", default=None, help="The model's name, for the tables.")
@click.option(
    "--data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of images (sub-folders per class give labels). Required.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for quality.csv, quality.json, per_image.csv and curves.png.",
)
@click.option(
    "--method",
    default=DEFAULT_METHOD,
    show_default=True,
    help="Attribution method whose maps are judged (see `imacs plugins`).",
)
@click.option(
    "--method-option",
    "method_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method parameter such as n_steps=64; VALUE is read as JSON when it parses. Repeatable.",
)
@click.option(
    "--measure",
    "measures",
    multiple=True,
    metavar="NAME",
    help="Quality measure, such as deletion or road-morf (see `imacs plugins`). Repeatable "
    "[default: insertion, deletion].",
)
@click.option(
    "--measure-option",
    "measure_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    help="Measure parameter such as deletion.n_steps=32. Repeatable.",
)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option such as factory=pkg.mod:build, read as the type the adapter declares. "
    "Repeatable.",
)
@_preprocessing_options()
@click.option(
    "--targets",
    default=None,
    help="Which class the maps explain: 'own' (the model's prediction, the default), "
    "'label' (the sub-folder's class) or a class index.",
)
@click.option(
    "--max-images",
    type=click.IntRange(min=1),
    default=None,
    help="Judge a random sample of this many images (drawn with --seed) instead of all.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Most inputs sent to the model in one call.",
)
@_data_options
def evaluate(
    model_path: str,
    name: str | None,
    data: str | None,
    out_dir: str,
    method: str,
    method_options: tuple[str, ...],
    measures: tuple[str, ...],
    measure_options: tuple[str, ...],
    model_options: tuple[str, ...],
    scale: str | None,
    mean: str | None,
    std: str | None,
    targets: str | None,
    max_images: int | None,
    seed: int,
    batch_size: int,
    size: str | None,
    skip_unreadable: bool,
    convert_grayscale: bool,
) -> None:
    """Can a model's attribution maps be trusted? Run quality measures on a folder.

    Writes one row per measure (mean score and a 95% bootstrap interval over images) to
    quality.csv and quality.json, each image's scores to per_image.csv, and the mean
    curves to curves.png.
    """
    from imacs.quality.evaluate import DEFAULT_MEASURES, evaluate_quality, write_evaluation

    model = _one_model(model_path, name, model_options, scale, mean, std)
    folder = _image_folder(data, size, skip_unreadable, convert_grayscale)
    chosen = np.arange(len(folder.names))
    if max_images is not None and max_images < len(chosen):
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, max_images, replace=False))
    images = np.asarray(folder.images[chosen])
    labels = None if folder.labels is None else np.asarray(folder.labels)[chosen]
    progress = Progress(_verbosity() > logs.QUIET)
    with progress.running():
        # only the judged images are predicted
        chosen_targets = _attribute_targets(
            targets or "own", model, images, labels, batch_size, progress
        )
        results = evaluate_quality(
            model,
            images,
            chosen_targets,
            measures=list(measures) or list(DEFAULT_MEASURES),
            measure_params=_named_key_values(measure_options, "--measure-option"),
            method=method,
            method_params=_key_values(method_options, "--method-option"),
            seed=seed,
            batch_size=batch_size,
        )
    written = write_evaluation(
        results,
        Path(out_dir),
        image_names=[folder.names[i] for i in chosen],
        model=name or Path(model_path).stem,
    )
    lines = [
        f"{r.measure}: {r.mean:.4g} [{low:.4g}, {high:.4g}] "
        f"({'higher' if r.higher_is_better else 'lower'} is better)"
        for r in results.values()
        for low, high in [r.confidence_interval()]
    ]
    _result(Path(out_dir), [*lines, f"tables and figures: {', '.join(p.name for p in written)}"])


@cli.command("inspect")
@_verbosity_options
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True),
    help="Model file or SavedModel folder.",
)
@click.option(
    "--size",
    "size_text",
    required=True,
    metavar="HEIGHTxWIDTH",
    help="Input size to check, such as 224x224.",
)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option such as factory=pkg.mod:build, read as the type the adapter declares. "
    "Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_model(
    model_path: str,
    size_text: str,
    model_options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check a model's padding at an input size: which convolution and pooling layers pad
    unevenly (a side left unread or padded more), and the nearest sizes with none
    (docs/spatial.md)."""
    from imacs.spatial.padding import format_report, padding_report

    size = _size(size_text)
    assert size is not None
    options = _key_values(model_options, "--model-option", as_text=True)
    model = _load_model(model_path, options, name=None, folders=[Path.cwd()])
    report = padding_report(model, size)
    if as_json:
        import json

        plain = {**report, "layers": report["layers"].to_dict(orient="records")}
        click.echo(json.dumps(plain, indent=1, default=str))
    else:
        click.echo(format_report(report))


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
        command = args[_command_position(args)] if _command_position(args) < len(args) else ""
        click.echo(f"error: {in_cli_terms(' '.join(line.split()), command)}", err=True)
        sys.exit(1)
    if isinstance(status, int) and status:
        sys.exit(status)


if __name__ == "__main__":
    main()
