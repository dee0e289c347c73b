"""Stores at a URL (fsspec): the local store's keys, checksums and rules, on an object store."""

from __future__ import annotations

import datetime
import math
import pickle
import secrets
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fsspec.implementations.local import LocalFileSystem

import imacs
from imacs.cli import cli
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import StoreError, StoreWarning
from imacs.remote_store import FsspecStore, _written
from imacs.store import MARKER, STORE_FORMAT, Store, is_remote, open_store
from imacs.testing.planted import planted_models

KEY = "ab" * 32
N_IMAGES = 12
SMALL: dict[str, Any] = {
    "method_params": {"n_steps": 4},
    "featurizer": "color",
    "metrics": ["cosine"],
    "progress": False,
}
TABLES = ("clusters", "regions", "images", "classes")


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh location in fsspec's in-memory file system, removed afterwards."""
    name = f"imacs-test-{secrets.token_hex(6)}"
    yield f"memory://{name}/store"
    memory = fsspec.filesystem("memory")
    if memory.exists(f"/{name}"):
        memory.rm(f"/{name}", recursive=True)


@pytest.fixture(scope="module")
def data() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)


@pytest.fixture(scope="module")
def models() -> Any:
    return planted_models()


@pytest.fixture(scope="module")
def local(data: Any, models: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A comparison on a local store folder, to hold the remote ones against."""
    store = tmp_path_factory.mktemp("local")
    return imacs.compare(*models, data.images, data.labels, store=store, **SMALL)


def assert_same_tables(first: Any, second: Any) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


# -- the store itself -------------------------------------------------------------------


def test_a_url_makes_a_store_on_that_file_system(url: str) -> None:
    store = Store(url)
    assert isinstance(store, FsspecStore)
    assert store.location == url and store.local_folder is None
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    store.save("attributions", KEY, array)
    loaded = store.load("attributions", KEY)
    assert loaded is not None and loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)
    assert store.has("attributions", KEY) and not store.has("attributions", "cd" * 32)
    assert store.load("attributions", "cd" * 32) is None
    assert store.count("attributions") == 1 and store.stages() == ["attributions"]
    (result,) = store.results()
    assert result.key == KEY and result.path.startswith("memory://")
    assert result.size == len(store.fs.cat_file(store._file("attributions", KEY)))
    assert store.check(result) is None
    assert open_store(url, create=False).load("attributions", KEY) is not None


def test_file_urls_are_local_folders(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/store")
    assert type(store) is Store and store.root == tmp_path / "store"
    assert not is_remote(f"file://{tmp_path}") and not is_remote(str(tmp_path))
    assert is_remote("s3://bucket/x") and is_remote("simplecache::s3://bucket/x")


def test_a_remote_store_keeps_the_local_layout_so_copies_are_reused(
    url: str, tmp_path: Path
) -> None:
    folder = Store(tmp_path / "store")
    folder.save("segments", KEY, np.eye(4, dtype=np.int32))
    remote = Store(url)
    for result in folder.results():
        relative = Path(result.path).relative_to(tmp_path / "store").as_posix()
        remote.fs.pipe_file(f"{remote._root}/{relative}", Path(result.path).read_bytes())
    np.testing.assert_array_equal(remote.load("segments", KEY), np.eye(4))


def test_a_store_travels_by_pickle_as_its_location(url: str) -> None:
    store = Store(url)
    store.save("images", KEY, np.zeros((2, 2), np.uint8))
    copy = pickle.loads(pickle.dumps(store))
    assert type(copy) is FsspecStore and copy.location == url
    np.testing.assert_array_equal(copy.load("images", KEY), np.zeros((2, 2)))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],
        lambda data: data[:40],
        lambda data: b"",
        lambda data: data[:-20] + bytes([data[-20] ^ 1]) + data[-19:],
    ],
    ids=["cut", "header-only", "empty", "flipped-bit"],
)
def test_a_damaged_remote_result_is_removed_with_a_warning(url: str, damage: Any) -> None:
    store = Store(url)
    store.save("attributions", KEY, np.ones((4, 4), np.float32))
    path = store._file("attributions", KEY)
    store.fs.pipe_file(path, damage(bytes(store.fs.cat_file(path))))
    (result,) = store.results()
    assert store.check(result) is not None
    with pytest.warns(StoreWarning, match="memory://.*damaged.*removed"):
        assert store.load("attributions", KEY) is None
    assert not store.has("attributions", KEY)


def test_a_pickled_array_is_never_loaded_from_a_remote_store(url: str) -> None:
    import io

    from imacs.store import _trailer

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    store = Store(url)
    payload = buffer.getvalue()
    store.fs.pipe_file(store._file("images", KEY), payload + _trailer("images", KEY, payload))
    with pytest.warns(StoreWarning, match="not a plain array"):
        assert store.load("images", KEY) is None


def test_a_remote_store_is_refused_where_it_must_not_be_made(url: str) -> None:
    with pytest.raises(StoreError, match=r"no imacs store at 'memory://.*--store"):
        Store(url, create=False)
    memory = fsspec.filesystem("memory")
    other = url.replace("/store", "/other")
    memory.pipe_file(other.removeprefix("memory://") + "/notes.txt", b"mine")
    with pytest.raises(StoreError, match="not empty and is not an imacs store"):
        Store(other)
    assert memory.cat_file(other.removeprefix("memory://") + "/notes.txt") == b"mine"
    Store(url)
    memory.pipe_file(url.removeprefix("memory://") + f"/{MARKER}", b'{"format": 1}')
    with pytest.raises(StoreError, match=f"format 1.*reads format {STORE_FORMAT}"):
        Store(url)


def test_urls_that_cannot_be_reached_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(StoreError, match="protocol fsspec does not know"):
        Store("nosuchprotocol://bucket/store")
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(StoreError, match=r"needs fsspec: pip install 'imacs\[remote\]'"):
        Store("s3://bucket/store")


def test_a_failed_write_is_a_store_error_naming_the_location(url: str) -> None:
    store = Store(url)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("Access Denied")

    store.fs = type("ReadOnly", (), {"pipe_file": staticmethod(refuse)})()
    with pytest.raises(StoreError, match=f"cannot save a maps? .*{url}.*Access Denied"):
        store.save("maps", KEY, np.zeros(3))


def test_remove_and_clear_only_touch_the_stores_own_results(url: str) -> None:
    store = Store(url)
    for i in range(3):
        store.save("attributions", f"{i:02x}" * 32, np.zeros(10, np.float32))
    store.save("segments", KEY, np.zeros(10, np.int32))
    first = next(store.results("attributions"))
    assert store.remove([first.path]) == first.size
    assert store.count("attributions") == 2
    with pytest.raises(StoreError, match="not a file of the store"):
        store.remove(["memory:///elsewhere/x.npy"])
    assert store.clear() > 0 and store.stages() == [] and store.count("segments") == 0
    assert Store(url, create=False).stages() == []


def test_times_of_writing_are_read_from_what_each_file_system_reports() -> None:
    when = datetime.datetime(2026, 5, 1, 12, tzinfo=datetime.UTC)
    assert _written({"mtime": 1.5e9}) == 1.5e9
    assert _written({"LastModified": when}) == when.timestamp()
    assert _written({"updated": "2026-05-01T12:00:00Z"}) == when.timestamp()
    assert _written({"created": when.replace(tzinfo=None)}) == when.timestamp()
    assert math.isinf(_written({"size": 3}))  # unknown: never old enough to prune


# -- comparisons on a remote store -------------------------------------------------------


def test_a_comparison_on_a_remote_store_gives_the_local_tables_and_resumes(
    data: Any, models: Any, local: Any, url: str
) -> None:
    first = imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    assert_same_tables(first, local)
    assert first.store == url and first.has_store
    np.testing.assert_array_equal(first.image(0), local.image(0))
    np.testing.assert_array_equal(first.attribution(3, "b"), local.attribution(3, "b"))
    assert Store(url).count("attributions") == 2 * N_IMAGES
    again = imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    assert again.work == {"attributed_a": 0, "attributed_b": 0}
    assert_same_tables(again, local)


def test_a_damaged_remote_map_is_computed_again_with_the_same_tables(
    data: Any, models: Any, local: Any, url: str
) -> None:
    imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    store = Store(url)
    victim = sorted(store.results("attributions"), key=lambda result: result.key)[0]
    path = store._inside(victim.path)
    store.fs.pipe_file(path, bytes(store.fs.cat_file(path))[:100])
    with pytest.warns(StoreWarning, match="computed again"):
        again = imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    assert again.work["attributed_a"] + again.work["attributed_b"] == 1
    assert_same_tables(again, local)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        third = imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    assert third.work == {"attributed_a": 0, "attributed_b": 0}


def test_a_saved_comparison_reads_its_remote_store_back(
    data: Any, models: Any, url: str, tmp_path: Path
) -> None:
    comparison = imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    comparison.save(tmp_path / "out", report=False, figures=False)
    loaded = imacs.Comparison.load(tmp_path / "out")
    assert loaded.store == url and loaded.has_store
    np.testing.assert_array_equal(loaded.segments(2), comparison.segments(2))


def test_a_filesystem_instance_serves_a_path_as_a_remote_store(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path / "store"), filesystem=LocalFileSystem())
    assert store.location == f"file://{tmp_path}/store"
    store.save("images", KEY, np.ones(3, np.uint8))
    # the same bytes and layout as a local store of that folder
    np.testing.assert_array_equal(Store(tmp_path / "store").load("images", KEY), np.ones(3))


# -- imacs store on a URL ----------------------------------------------------------------


def test_the_store_commands_work_on_a_url(url: str) -> None:
    store = Store(url)
    for i in range(3):
        store.save("attributions", f"{i:02x}" * 32, np.ones((8, 8), np.float32))
    runner = CliRunner()
    info = runner.invoke(cli, ["store", "info", "--store", url, "--json"])
    assert info.exit_code == 0, info.output
    assert '"store": "memory://' in info.output and '"results": 3' in info.output
    path = store._file("attributions", "01" * 32)
    store.fs.pipe_file(path, bytes(store.fs.cat_file(path))[:-2])
    verify = runner.invoke(cli, ["store", "verify", "--store", url])
    assert verify.exit_code == 1 and "1 damaged" in verify.output
    fixed = runner.invoke(cli, ["store", "verify", "--store", url, "--fix"])
    assert fixed.exit_code == 0 and store.count("attributions") == 2
    pruned = runner.invoke(cli, ["store", "prune", "--store", url, "--older-than", "0d", "--yes"])
    assert pruned.exit_code == 0 and store.count("attributions") == 0, pruned.output
    missing = runner.invoke(cli, ["store", "info", "--store", url.replace("store", "none")])
    assert isinstance(missing.exception, StoreError) and "no imacs store at" in str(
        missing.exception
    )


def test_the_default_store_may_be_a_url(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMACS_STORE", url)
    store = open_store(None)
    assert isinstance(store, FsspecStore) and store.location == url


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_many_results_are_read_and_looked_up_together(url: str, asynchronous: bool) -> None:
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    memory = fsspec.filesystem("memory")
    filesystem = AsyncFileSystemWrapper(memory) if asynchronous else memory
    store = FsspecStore(url.removeprefix("memory://"), filesystem=filesystem)
    keys = [f"{i:02x}" * 32 for i in range(5)]
    for i, key in enumerate(keys[:4]):
        store.save("attributions", key, np.full(3, i, np.float32))
    path = store._file("attributions", keys[1])
    memory.pipe_file(path, bytes(memory.cat_file(path))[:-1])
    assert store.has_many("attributions", keys) == [True, True, True, True, False]
    with pytest.warns(StoreWarning, match="damaged"):
        arrays = store.load_many("attributions", [keys[0], keys[1], keys[4], keys[3], keys[0]])
    assert [None if a is None else int(a[0]) for a in arrays] == [0, None, None, 3, 0]
    assert store.has_many("attributions", keys) == [True, False, True, True, False]
    assert store.load_many("attributions", []) == [] and store.has_many("images", []) == []


def test_a_resumed_comparison_reads_a_remote_store_in_batches_not_per_image(
    data: Any, models: Any, local: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    imacs.compare(*models, data.images, data.labels, store=url, **SMALL)
    store = Store(url)
    calls = {"load": 0, "has": 0, "load_many": 0, "has_many": 0}
    keys = {"load_many": 0, "has_many": 0}
    for name in calls:
        method = getattr(store, name)

        def counted(*args: Any, _method: Any = method, _name: str = name) -> Any:
            calls[_name] += 1
            if _name in keys:
                keys[_name] += len(args[1])
            return _method(*args)

        monkeypatch.setattr(store, name, counted)
    again = imacs.compare(*models, data.images, data.labels, store=store, **SMALL)
    assert again.work == {"attributed_a": 0, "attributed_b": 0}
    assert_same_tables(again, local)
    # per-image results are asked for a batch at a time; single reads are the
    # predictions, one array per model and dataset
    assert calls["load"] == 2 and calls["has"] == 0, calls
    assert calls["has_many"] == 2 and keys["has_many"] == 2 * N_IMAGES
    assert keys["load_many"] >= 5 * N_IMAGES  # images, segments, two maps, deltas...
    assert keys["load_many"] / calls["load_many"] >= 4, (keys, calls)


def test_a_store_url_in_a_configuration_file_stays_a_url(tmp_path: Path) -> None:
    from imacs.comparison.config import load_config

    config = tmp_path / "imacs.toml"
    config.write_text('[compare]\nstore = "s3://bucket/imacs-store"\n')
    assert load_config(config)["compare"]["store"] == "s3://bucket/imacs-store"
    config.write_text('[compare]\nstore = "imacs-store"\n')
    assert load_config(config)["compare"]["store"] == str(tmp_path / "imacs-store")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_many_results_are_written_together_and_read_back_whole(
    url: str, asynchronous: bool
) -> None:
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    memory = fsspec.filesystem("memory")
    filesystem = AsyncFileSystemWrapper(memory) if asynchronous else memory
    store = FsspecStore(url.removeprefix("memory://"), filesystem=filesystem)
    items = [(f"{i:02x}" * 32, np.full((2, 3), i, np.int32)) for i in range(6)]
    store.save_many("segments", items)
    store.save_many("segments", items[:1])  # one result: a plain save
    store.save_many("segments", [])
    loaded = store.load_many("segments", [key for key, _ in items])
    for (_, array), back in zip(items, loaded, strict=True):
        np.testing.assert_array_equal(back, array)
    assert [store.check(result) for result in store.results()] == [None] * len(items)


def test_writing_many_makes_the_folders_a_file_system_needs(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path / "store"), filesystem=LocalFileSystem())
    items = [(f"{i:02x}" * 32, np.arange(i + 1)) for i in range(3)]
    store.save_many("attributions", items)  # three new shard folders
    assert sorted(r.key for r in Store(tmp_path / "store").results()) == [k for k, _ in items]


def test_a_failed_batch_write_is_a_store_error_naming_the_location(url: str) -> None:
    store = Store(url)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("Access Denied")

    store.fs = type("ReadOnly", (), {"pipe": staticmethod(refuse)})()
    with pytest.raises(StoreError, match=f"cannot save maps results .*{url}.*Access Denied"):
        store.save_many("maps", [(KEY, np.zeros(3)), ("cd" * 32, np.ones(3))])


def test_a_memory_store_says_other_processes_cannot_reach_it(url: str, tmp_path: Path) -> None:
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    assert not Store(url).shared
    wrapped = AsyncFileSystemWrapper(fsspec.filesystem("memory"))
    assert not FsspecStore(url.removeprefix("memory://"), filesystem=wrapped).shared
    assert FsspecStore(str(tmp_path / "store"), filesystem=LocalFileSystem()).shared
    assert Store(tmp_path / "folder").shared


def test_a_store_is_not_made_where_its_parent_is_missing(tmp_path: Path) -> None:
    # on an object store the parent is the bucket: a mistyped one must not be created
    with pytest.raises(StoreError, match=r"does not exist.*bucket.*Create it first"):
        FsspecStore(str(tmp_path / "no-such-bucket" / "store"), filesystem=LocalFileSystem())
    assert not (tmp_path / "no-such-bucket").exists()
    store = FsspecStore(str(tmp_path / "store"), filesystem=LocalFileSystem())
    store.save("images", KEY, np.zeros(2))  # folders inside the store are made as needed
    assert (tmp_path / "store" / "images" / KEY[:2]).is_dir()
