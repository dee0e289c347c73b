"""The ``ray`` executor (plugins/imacs-ray) on a Ray cluster this module starts.

The cluster is a head and one worker node, each a set of processes on this machine with
one CPU, so the pool has one actor on each. A comparison run there must give the tables
of an in-process run byte for byte, share the store with in-process runs both ways, lose
only the task of a worker that dies mid-task, and refuse a model that cannot travel. So
must ``imacs compare --executor ray`` run from the command line, which also refuses a
wrong ``--executor-option`` or an address where no cluster listens.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from cli_runs import run
from PIL import Image

import imacs
from imacs.adapters.recipe import ModelNotPortableError
from imacs.demo.data import shortcut_digits, split_indices

pytestmark = pytest.mark.torch

HERE = Path(__file__).parent
N_IMAGES = 20
#: small and quick, with every per-image stage on: segment, score, featurize, positional
SETTINGS: dict[str, Any] = {
    "causal": "none",
    "spatial": ["positional"],
    "n_permutations": 200,
    "n_clusters": 3,
    "batch_size": 8,
    "progress": False,
}
TABLES = ("regions.csv", "clusters.csv", "images.csv", "classes.csv", "spatial.npz")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    # the workers import ray_workers (a method, a factory) by name, from this folder
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), saved]))
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, log_to_driver=False)
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    import torch

    from imacs.demo.models import train_torch_cnn

    folder = tmp_path_factory.mktemp("models")
    train = shortcut_digits(split_indices()[0][:160], shortcut=True, seed=0)
    paths = []
    for seed in (0, 1):
        path = folder / f"cnn-{seed}.pt"
        torch.save(train_torch_cnn(train.images, train.labels, seed=seed, epochs=2), path)
        paths.append(str(path))
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def data() -> Any:
    return shortcut_digits(split_indices()[1][:N_IMAGES], shortcut=False, seed=3)


def _compare(model_files: tuple[str, str], data: Any, store: Any, **settings: Any) -> Any:
    models = [imacs.load_model(path, trust=True) for path in model_files]
    if "method" not in settings:
        settings["method_params"] = {"n_steps": 8}
    settings = SETTINGS | settings
    return imacs.compare(*models, data.images, data.labels, store=store, **settings)


def _saved(comparison: Any, folder: Path) -> Path:
    comparison.save(folder, report=False, figures=False)
    return folder


def _cpus_given_back() -> bool:
    """Whether the cluster's 2 CPUs are free again within a few seconds (kills are async)."""
    for _ in range(50):
        if ray.available_resources().get("CPU") == 2:
            return True
        time.sleep(0.1)
    return False


def _assert_same_tables(left: Path, right: Path) -> None:
    for name in TABLES:
        assert filecmp.cmp(left / name, right / name, shallow=False), name
    described = []
    for folder in (left, right):
        content = json.loads((folder / "comparison.json").read_text())
        # where, how fast and how much was reused, not what
        del content["store"], content["timings"], content["work"]
        described.append(content)
    assert described[0] == described[1]


def test_a_ray_run_gives_the_tables_of_an_in_process_run_and_shares_its_store(
    cluster: Any, model_files: tuple[str, str], data: Any, tmp_path: Path
) -> None:
    from imacs_ray import RayExecutor

    local = _compare(model_files, data, tmp_path / "local-store")
    executor = RayExecutor()
    distributed = _compare(model_files, data, tmp_path / "ray-store", executor=executor)
    assert distributed.work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}
    expected = _saved(local, tmp_path / "local")
    _assert_same_tables(expected, _saved(distributed, tmp_path / "ray"))
    segments = imacs.store.Store(tmp_path / "ray-store").count("segments")
    assert segments == N_IMAGES  # segmented on the workers, into the shared store

    # each reuses what the other computed, and still gives the same tables
    resumed = _compare(model_files, data, tmp_path / "ray-store")
    assert resumed.work == {"attributed_a": 0, "attributed_b": 0}
    _assert_same_tables(expected, _saved(resumed, tmp_path / "resumed-here"))
    # a second executor reuses the pool of actors; shutdown() gives its CPUs back
    resumed = _compare(model_files, data, tmp_path / "local-store", executor="ray")
    assert resumed.work == {"attributed_a": 0, "attributed_b": 0}
    _assert_same_tables(expected, _saved(resumed, tmp_path / "resumed-on-ray"))
    assert ray.available_resources().get("CPU", 0) == 0
    executor.shutdown()
    assert _cpus_given_back()


def test_a_ray_run_on_a_store_reached_through_fsspec_gives_the_same_tables(
    cluster: Any, model_files: tuple[str, str], data: Any, tmp_path: Path
) -> None:
    """The workers read and write the store through fsspec, as they would an object store."""
    from fsspec.implementations.local import LocalFileSystem
    from imacs_ray import RayExecutor

    from imacs.remote_store import FsspecStore

    local = _compare(model_files, data, tmp_path / "local-store")
    remote = FsspecStore(str(tmp_path / "fsspec-store"), filesystem=LocalFileSystem())
    executor = RayExecutor()
    try:
        distributed = _compare(model_files, data, remote, executor=executor)
    finally:
        executor.shutdown()
    assert distributed.store == remote.location
    assert remote.count("segments") == N_IMAGES  # written by the workers, through fsspec
    _assert_same_tables(_saved(local, tmp_path / "local"), _saved(distributed, tmp_path / "ray"))


def _image_folder(data: Any, folder: Path) -> Path:
    """The images as 8-bit PNG files, one sub-folder per label."""
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        path = folder / f"digit-{label}" / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    return folder


def _compare_argv(model_files: tuple[str, str], folder: Path, out: Path, store: Path) -> list[str]:
    argv = ["compare", "--data", str(folder), "--out", str(out), "--store", str(store)]
    for side, path in zip("ab", model_files, strict=True):
        argv += [f"--model-{side}", path, f"--model-{side}-option", "trust=true"]
    return [*argv, "--quiet"]


def _imacs_process(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``imacs ARGV`` in a new process, as a user runs it (without ``$RAY_ADDRESS``)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "imacs"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )


def test_the_command_line_on_ray_writes_the_tables_of_an_in_process_run(
    cluster: Any,
    model_files: tuple[str, str],
    data: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _image_folder(data, tmp_path / "images")
    settings = ["--scale", "1/255", "--method-option", "n_steps=8", "--causal", "none"]
    settings += ["--n-permutations", "200", "--n-clusters", "3", "--batch-size", "8"]
    settings += ["--no-report", "--no-figures"]
    here = _compare_argv(model_files, folder, tmp_path / "local", tmp_path / "local-store")
    status, out, err = run([*here, *settings], capsys)
    assert status == 0, err
    # a new process joins the test's cluster at the address it is given; its actors need
    # the cluster's CPUs, which a pool of this process may hold
    from imacs_ray import RayExecutor

    RayExecutor().shutdown()
    assert _cpus_given_back()
    there = _compare_argv(model_files, folder, tmp_path / "ray", tmp_path / "ray-store")
    there += ["--executor", "ray", "--executor-option", f"address={cluster.address}"]
    on_ray = _imacs_process([*there, *settings], timeout=120)
    assert on_ray.returncode == 0, on_ray.stderr
    assert Path(on_ray.stdout.strip()) == tmp_path / "ray"
    _assert_same_tables(Path(out.strip()), tmp_path / "ray")
    work = json.loads((tmp_path / "ray" / "comparison.json").read_text())["work"]
    assert work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}


def test_the_command_line_says_which_executor_option_is_wrong(
    model_files: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "0.png")
    argv = _compare_argv(model_files, folder, tmp_path / "out", tmp_path / "store")
    argv += ["--executor", "ray", "--executor-option"]
    for option, message in (
        ("adress=auto", "executor 'ray' does not take parameter(s) adress; it takes: address"),
        ("workers=0", "expected workers to be a positive int; got 0"),
        ("workers", "--executor-option: expected KEY=VALUE; got 'workers'"),
    ):
        status, _, err = run([*argv, option], capsys)
        assert status != 0 and message in err, (option, err)
    # an address where no cluster listens, which Ray alone retries for minutes, from a
    # process where Ray has not started
    nowhere = _imacs_process([*argv, "address=127.0.0.1:1"], timeout=60)
    assert nowhere.returncode == 1, nowhere.stderr
    assert "could not join the Ray cluster at '127.0.0.1:1'" in nowhere.stderr
    assert not (tmp_path / "store" / "images").exists()  # refused before any work


def test_a_worker_killed_mid_task_costs_that_task_only(
    cluster: Any, model_files: tuple[str, str], data: Any, tmp_path: Path
) -> None:
    import torch
    from imacs_ray import RayExecutor
    from ray_workers import DyingIntegratedGradients

    flag = tmp_path / "die-once"
    method = DyingIntegratedGradients(n_steps=8, flag=str(flag))
    local = _compare(model_files, data, tmp_path / "local-store", method=method)
    flag.touch()
    # model A travels as a state dict and its factory, model B as its file
    weights = torch.load(model_files[0], weights_only=False).state_dict()
    model_a = imacs.load_model(weights, adapter="torch", factory="ray_workers:digits_cnn")
    killed = imacs.compare(
        model_a,
        imacs.load_model(model_files[1], trust=True),
        data.images,
        data.labels,
        store=tmp_path / "ray-store",
        method=method,
        executor=RayExecutor(),
        **SETTINGS,
    )
    assert not flag.exists() and Path(f"{flag}.taken").exists()  # a worker did die
    # every task's maps were stored once: the lost task ran again, nothing else did
    assert killed.work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}
    _assert_same_tables(_saved(local, tmp_path / "local"), _saved(killed, tmp_path / "ray"))


def test_a_model_that_cannot_travel_is_refused_before_the_run_saying_what_to_pass(
    model_files: tuple[str, str], data: Any, tmp_path: Path
) -> None:
    import torch
    from imacs_ray import RayExecutor

    in_memory = torch.load(model_files[0], weights_only=False)
    with pytest.raises(ModelNotPortableError, match="in-memory object") as error:
        imacs.compare(
            in_memory,
            imacs.load_model(model_files[1], trust=True),
            data.images,
            store=tmp_path,
            executor=RayExecutor(),
        )
    message = str(error.value)
    assert "model A" in message and "factory=" in message and "state_dict" in message
    assert not (tmp_path / "images").exists()  # refused before any work

    # a state dict with a factory given as a function object does not travel
    weights = in_memory.state_dict()
    lambda_factory = imacs.load_model(
        weights, adapter="torch", factory=lambda: torch.load(model_files[0], weights_only=False)
    )
    with pytest.raises(ModelNotPortableError, match=r"'package\.module:function' text"):
        RayExecutor().check_models({"b": lambda_factory})


def test_a_store_only_this_process_reaches_is_refused_before_the_run(
    model_files: tuple[str, str], data: Any, tmp_path: Path
) -> None:
    from imacs_ray import RayExecutor

    from imacs.errors import InvalidInputError
    from imacs.store import Store

    url = "memory://imacs-ray-test/store"
    with pytest.raises(InvalidInputError, match=r"this process only.*s3://"):
        _compare(model_files, data, url, executor=RayExecutor())
    assert Store(url).count("images") == 0  # refused before any work
    RayExecutor().check_store(Store(tmp_path / "store"))  # a folder is taken


def test_a_recipe_loads_the_same_model_again(model_files: tuple[str, str]) -> None:
    model = imacs.load_model(model_files[0], trust=True, name="first")
    recipe = model.recipe()
    assert recipe is not None and os.path.isabs(recipe.source)
    again = recipe.build()
    assert again.fingerprint() == model.fingerprint() and again.model_name == "first"
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(images), model.predict(images))


def test_the_executor_checks_its_parameters() -> None:
    from imacs_ray import RayExecutor

    with pytest.raises(imacs.InvalidInputError, match="workers"):
        RayExecutor(workers=0)
    with pytest.raises(imacs.InvalidInputError, match="address"):
        RayExecutor(address=6379)  # type: ignore[arg-type]
    assert "ray" in imacs.component_names("executor")
    with pytest.raises(imacs.InvalidInputError, match="does not take"):
        imacs.get_component("executor", "ray", adress="auto")
