"""The on-disk store: content keys, checksums, atomic writes, concurrency, full disks."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import imacs
import imacs.store as store_module
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import InvalidInputError, StoreError, StoreWarning
from imacs.plugins import get_host
from imacs.segmentation.grid import Grid
from imacs.store import (
    MARKER,
    STORE_FORMAT,
    Store,
    _trailer,
    array_digest,
    make_key,
    open_store,
    parse_npy,
    producer,
)
from imacs.testing.planted import planted_models

KEY = "ab" * 32


def stored_file(store: Store, stage: str, key: str = KEY) -> Path:
    return store._path(stage, key)


def seal(stage: str, key: str, payload: bytes) -> bytes:
    """``payload`` with the trailer the store writes: a file that passes the checksum."""
    return payload + _trailer(stage, key, payload)


def npy_bytes(array: np.ndarray, version: tuple[int, int] = (1, 0)) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=True)
    return buffer.getvalue()


# -- reading and writing ---------------------------------------------------------------


def test_round_trip_and_count(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = make_key("x", 1)
    assert store.load("maps", key) is None and not store.has("maps", key)
    store.save("maps", key, array)
    assert store.has("maps", key)
    np.testing.assert_array_equal(store.load("maps", key), array)
    assert store.count("maps") == 1
    assert not list((tmp_path / "s").rglob("*.tmp"))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        np.arange(6, dtype=">i4"),
        np.array([True, False, True]),
        np.array(7, dtype=np.uint8),
        np.zeros((3, 0), dtype=np.int64),
        np.array(["ab", "c"]),
        np.zeros(3, dtype=[("x", "<i4"), ("y", "<f8")]),
    ],
    ids=["float32-3d", "fortran", "big-endian", "bool", "0-d", "empty", "unicode", "structured"],
)
def test_arrays_come_back_as_numpy_would_read_them(tmp_path: Path, array: np.ndarray) -> None:
    store = Store(tmp_path)
    key = make_key("array", array)
    store.save("maps", key, array)
    loaded = store.load("maps", key)
    assert loaded is not None
    # numpy reads a stored file too: the checksum trails the array, where numpy stops
    expected = np.load(store._path("maps", key), allow_pickle=False)
    assert loaded.dtype == array.dtype == expected.dtype
    assert loaded.shape == array.shape == expected.shape
    np.testing.assert_array_equal(loaded, array)
    np.testing.assert_array_equal(expected, array)
    loaded[...] = loaded  # a loaded array is the caller's to change


def test_object_arrays_are_refused_when_saved(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="plain arrays"):
        Store(tmp_path).save("maps", KEY, np.array([{"a": 1}], dtype=object))


def test_pickled_arrays_are_never_loaded_even_with_a_valid_checksum(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = stored_file(store, "maps")
    path.parent.mkdir(parents=True)
    path.write_bytes(seal("maps", KEY, npy_bytes(np.array([{"a": 1}], dtype=object))))
    with pytest.warns(StoreWarning, match="not a plain array"):
        assert store.load("maps", KEY) is None


def test_a_numpy_file_without_the_checksum_is_not_used(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = stored_file(store, "maps")
    path.parent.mkdir(parents=True)
    np.save(path, np.arange(5.0))
    with pytest.warns(StoreWarning, match="does not end in its checksum"):
        assert store.load("maps", KEY) is None
    assert not path.exists()


def test_numpys_format_2_is_read_when_the_checksum_holds(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = stored_file(store, "maps")
    path.parent.mkdir(parents=True)
    path.write_bytes(seal("maps", KEY, npy_bytes(np.arange(5.0), version=(2, 0))))
    np.testing.assert_array_equal(store.load("maps", KEY), np.arange(5.0))


# -- keys ------------------------------------------------------------------------------


def test_keys_depend_on_every_part_and_not_on_dict_order() -> None:
    assert make_key("m", {"a": 1, "b": 2.0}) == make_key("m", {"b": 2.0, "a": 1})
    assert make_key("m", {"a": 1}) != make_key("m", {"a": 2})
    assert make_key("m", (1, 2)) == make_key("m", [1, 2])
    assert make_key(np.zeros(3)) != make_key(np.zeros(4))
    assert array_digest(np.zeros(3, np.float32)) != array_digest(np.zeros(3, np.float64))


def test_values_without_a_lasting_identity_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="no identity that lasts"):
        make_key("m", lambda x: x)


def test_built_in_components_are_versioned_by_imacs() -> None:
    assert producer(Grid()) == {
        "distribution": "imacs",
        "version": imacs.__version__,
        "component_version": None,
    }


def test_a_components_own_version_changes_its_keys() -> None:
    class Old(Grid):
        version = "1"

    class New(Grid):
        version = "2"

    assert producer(Old)["component_version"] == "1"
    assert make_key("segments", producer(Old())) != make_key("segments", producer(New()))


def test_a_version_that_is_no_string_is_refused() -> None:
    class Odd(Grid):
        version = 1.5  # type: ignore[assignment]

    with pytest.raises(InvalidInputError, match="expected a string"):
        producer(Odd())


PLUGIN = """
import imacs
from imacs.segmentation.grid import Grid


class Stripes(Grid):
    name = "stripes"


@imacs.hookimpl
def register_segmenters(register):
    register(Stripes)
"""


def test_a_plugin_components_keys_follow_its_distributions_version(
    install_plugin: Any,
) -> None:
    site = install_plugin("imacs-stripes", PLUGIN)
    segmenter = get_host().registry.create("segmenter", "stripes")
    before = producer(segmenter)
    assert before == {"distribution": "imacs-stripes", "version": "0.1", "component_version": None}
    metadata = site / "imacs_stripes-0.1.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.1", "Version: 0.2"))
    after = producer(segmenter)
    assert after["version"] == "0.2"
    assert make_key("segments", after) != make_key("segments", before)


# -- the marker ------------------------------------------------------------------------


def test_a_store_of_another_format_is_refused(tmp_path: Path) -> None:
    Store(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"format": STORE_FORMAT + 1}))
    with pytest.raises(StoreError, match="format"):
        Store(tmp_path)


def test_a_store_of_the_previous_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text(json.dumps({"format": STORE_FORMAT - 1}))
    with pytest.raises(StoreError, match="use a new store folder"):
        Store(tmp_path)


def test_a_non_empty_folder_that_is_no_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="not an imacs store"):
        open_store(tmp_path)


def test_a_folder_is_only_made_a_store_when_asked(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no imacs store"):
        Store(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


def test_a_temporary_marker_of_a_killed_writer_does_not_block_the_folder(tmp_path: Path) -> None:
    (tmp_path / f".{MARKER}.0123456789abcdef.tmp").write_bytes(b'{"for')
    Store(tmp_path).save("maps", KEY, np.ones(2))
    assert Store(tmp_path).load("maps", KEY) is not None


def _open_fresh_stores(
    barrier: Any, base: str, rounds: int, worker: int, results: Any
) -> None:  # pragma: no cover - runs in the child processes
    refused, errors = 0, []
    array = np.arange(64, dtype=np.float64)
    for round_ in range(rounds):
        barrier.wait()
        try:
            store = Store(os.path.join(base, f"store-{round_}"))
            # every process writes one shared key and one of its own, and reads both back
            store.save("maps", KEY, array)
            store.save("maps", f"{worker:064x}", array + worker)
            for key, expected in ((KEY, array), (f"{worker:064x}", array + worker)):
                loaded = store.load("maps", key)
                if loaded is None or not np.array_equal(loaded, expected):
                    errors.append(f"round {round_}: {key} read back wrong")
        except StoreError as exc:
            refused += 1
            errors.append(str(exc))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put((refused, errors))


@pytest.mark.slow
def test_processes_that_open_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    n_processes, rounds = 8, 50
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(n_processes)
    results = context.Queue()
    processes = [
        context.Process(
            target=_open_fresh_stores, args=(barrier, str(tmp_path), rounds, worker, results)
        )
        for worker in range(n_processes)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sum(refused for refused, _ in outcomes) == 0
    assert [error for _, errors in outcomes for error in errors] == []
    for round_ in range(rounds):
        store = Store(tmp_path / f"store-{round_}", create=False)
        assert store.count("maps") == n_processes + 1
    assert not list(tmp_path.rglob("*.tmp"))


# -- damaged results -------------------------------------------------------------------


def _header_end(data: bytes) -> int:
    return 10 + int.from_bytes(data[8:10], "little")


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: len(data) // 2]


def zero(data: bytes, rng: np.random.Generator) -> bytes:
    return bytes(len(data))


def change_one_byte(data: bytes, rng: np.random.Generator) -> bytes:
    changed = bytearray(data)
    changed[int(rng.integers(_header_end(data), len(data) - 12))] ^= 0xFF
    return bytes(changed)


def randomise_payload(data: bytes, rng: np.random.Generator) -> bytes:
    # the header stays, so the damage is a well-formed file of the same size
    end = _header_end(data)
    return data[:end] + rng.bytes(len(data) - 12 - end) + data[-12:]


DAMAGE = [truncate, zero, change_one_byte, randomise_payload]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_result_is_removed_with_a_warning_naming_it(tmp_path: Path, damage: Any) -> None:
    store = Store(tmp_path)
    store.save("maps", KEY, np.arange(100.0))
    path = stored_file(store, "maps")
    path.write_bytes(damage(path.read_bytes(), np.random.default_rng(0)))
    with pytest.warns(StoreWarning, match=f"{path}.*computed again"):
        assert store.load("maps", KEY) is None
    assert not path.exists() and not store.has("maps", KEY)


def test_a_same_size_header_change_is_damage(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("maps", KEY, np.arange(12.0).reshape(3, 4))
    path = stored_file(store, "maps")
    # the same bytes read as another shape: only a checksum over the header notices
    path.write_bytes(path.read_bytes().replace(b"(3, 4)", b"(4, 3)", 1))
    with pytest.warns(StoreWarning, match="checksum does not match"):
        assert store.load("maps", KEY) is None


def test_a_result_copied_under_another_key_is_damage(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("maps", KEY, np.arange(4.0))
    other = "cd" * 32
    stored_file(store, "maps", other).parent.mkdir(parents=True)
    stored_file(store, "maps", other).write_bytes(stored_file(store, "maps").read_bytes())
    with pytest.warns(StoreWarning, match="checksum"):
        assert store.load("maps", other) is None


def test_every_stored_file_ends_in_its_checksum(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("segments", KEY, np.ones((4, 4), np.int32))
    data = stored_file(store, "segments").read_bytes()
    assert data[-12:] == _trailer("segments", KEY, data[:-12])
    assert parse_npy(bytearray(data[:-12])) is not None


def test_a_result_replaced_by_a_good_copy_meanwhile_is_not_removed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("maps", KEY, np.arange(4.0))
    path = stored_file(store, "maps")
    path.write_bytes(b"garbage")
    status = os.stat(path)
    Store(tmp_path).save("maps", KEY, np.arange(4.0))  # another process repairs it
    with pytest.warns(StoreWarning):
        store._discard(str(path), status, "test", "maps")
    np.testing.assert_array_equal(store.load("maps", KEY), np.arange(4.0))


# -- any bytes at all ------------------------------------------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _load_quietly(store: Store, key: str) -> tuple[np.ndarray | None, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        array = store.load("maps", key)
    assert all(issubclass(w.category, StoreWarning) for w in caught), caught
    return array, [str(w.message) for w in caught]


@FUZZ
@given(content=st.binary(max_size=600))
def test_any_bytes_in_a_stored_file_read_as_missing_with_a_warning(
    tmp_path: Path, content: bytes
) -> None:
    store = Store(tmp_path)
    path = stored_file(store, "maps")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    array, messages = _load_quietly(store, KEY)
    assert array is None
    assert len(messages) == 1 and str(path) in messages[0]
    assert not path.exists()


@FUZZ
@given(data=st.data())
def test_any_change_to_a_stored_file_reads_as_missing_with_a_warning(
    tmp_path: Path, data: st.DataObject
) -> None:
    store = Store(tmp_path)
    original = np.arange(20, dtype=np.int32).reshape(4, 5)
    store.save("maps", KEY, original)
    path = stored_file(store, "maps")
    good = path.read_bytes()
    start = data.draw(st.integers(0, len(good)))
    stop = data.draw(st.integers(start, len(good)))
    content = good[:start] + data.draw(st.binary(max_size=40)) + good[stop:]
    path.write_bytes(content)
    array, messages = _load_quietly(store, KEY)
    if content == good:
        np.testing.assert_array_equal(array, original)
    else:
        assert array is None and len(messages) == 1


_HEADERS = st.one_of(
    st.binary(max_size=120),
    st.builds(
        lambda descr, order, shape: (
            f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({shape}), }}".encode()
        ),
        st.sampled_from(["<f8", "|u1", "<i4", ">i2", "|b1", "<U3", "|V0", "<q9", "|O", "<c16"]),
        st.sampled_from(["True", "False"]),
        st.one_of(
            st.lists(st.integers(0, 2**62), max_size=4).map(lambda s: ", ".join(map(str, s))),
            st.text("0123456789, ", max_size=12),
        ),
    ),
)


@FUZZ
@given(major=st.sampled_from([1, 2, 3, 7]), header=_HEADERS, body=st.binary(max_size=200))
# an empty array with a dimension numpy cannot index, found by the fuzzer
@example(
    major=1,
    header=b"{'descr': '<f8', 'fortran_order': True, 'shape': (0,1152921504606846976), }",
    body=b"",
)
def test_files_that_pass_the_checksum_never_raise_whatever_they_hold(
    tmp_path: Path, major: int, header: bytes, body: bytes
) -> None:
    store = Store(tmp_path)
    size = len(header).to_bytes(2 if major == 1 else 4, "little")
    payload = b"\x93NUMPY" + bytes([major, 0]) + size + header + body
    path = stored_file(store, "maps")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(seal("maps", KEY, payload))
    array, messages = _load_quietly(store, KEY)
    assert (array is None) == (len(messages) == 1)
    assert parse_npy(bytearray(payload)) is None or array is not None


# -- end to end: a damaged result is computed again ------------------------------------

N_IMAGES = 16
SMALL: dict[str, Any] = {
    "method_params": {"n_steps": 4},
    "featurizer": "color",
    "metrics": ["cosine"],
    "progress": False,
}
TABLES = ("clusters", "regions", "images", "classes")


@pytest.fixture(scope="module")
def data() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)


@pytest.fixture(scope="module")
def models() -> Any:
    return planted_models()


@pytest.fixture(scope="module")
def reference(data: Any, models: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = tmp_path_factory.mktemp("reference")
    return imacs.compare(*models, data.images, data.labels, store=store, **SMALL)


def assert_same_tables(first: Any, second: Any) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


@pytest.mark.parametrize("stage", ["images", "predictions", "attributions", "segments"])
@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_result_is_computed_again_and_the_tables_are_unchanged(
    data: Any, models: Any, reference: Any, tmp_path: Path, stage: str, damage: Any
) -> None:
    imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    store = Store(tmp_path, create=False)
    victim = sorted(store.results(stage), key=lambda result: result.key)[0]
    path = Path(victim.path)
    path.write_bytes(damage(path.read_bytes(), np.random.default_rng(1)))
    with pytest.warns(StoreWarning, match=f"{victim.path}.*computed again"):
        again = imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    assert_same_tables(again, reference)
    assert store.check(victim) is None, "the result should be stored again, whole"
    if stage == "attributions":
        assert again.work["attributed_a"] + again.work["attributed_b"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        third = imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    assert_same_tables(third, reference)
    assert third.work == {"attributed_a": 0, "attributed_b": 0}


def test_a_truncated_map_is_recomputed_by_the_run_that_finds_it(
    data: Any, models: Any, reference: Any, tmp_path: Path
) -> None:
    imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    store = Store(tmp_path, create=False)
    damaged = sorted(store.results("attributions"), key=lambda result: result.key)[:3]
    for result in damaged:
        Path(result.path).write_bytes(Path(result.path).read_bytes()[:100])
    with pytest.warns(StoreWarning, match="computed again"):
        again = imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    assert again.work["attributed_a"] + again.work["attributed_b"] == 3
    assert_same_tables(again, reference)
    assert all(store.check(result) is None for result in damaged)


def test_random_bytes_in_a_segmentation_are_recomputed_with_a_warning(
    data: Any, models: Any, reference: Any, tmp_path: Path
) -> None:
    imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    rng = np.random.default_rng(5)
    for result in Store(tmp_path, create=False).results("segments"):
        Path(result.path).write_bytes(randomise_payload(Path(result.path).read_bytes(), rng))
    with pytest.warns(StoreWarning, match="segments result"):
        again = imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    assert_same_tables(again, reference)


RUN_ONE = """
import sys
import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.testing.planted import planted_models

_, test = split_indices()
data = shortcut_digits(test[:{n}], shortcut=False, seed=7)
settings = {settings} | {{"method_params": {{"n_steps": int(sys.argv[2])}}}}
models = planted_models()
comparison = imacs.compare(*models, data.images, data.labels, store=sys.argv[1], **settings)
print(comparison.regions.to_csv())
"""


@pytest.mark.slow
def test_processes_running_comparisons_on_one_store_at_once_agree(
    reference: Any, tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(RUN_ONE.format(n=N_IMAGES, settings=SMALL))
    store = tmp_path / "store"
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(store), str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for steps in (4, 4, 6)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "damaged" not in stderr and "Warning" not in stderr, stderr
    same = [stdout for (stdout, _), steps in zip(outputs, (4, 4, 6), strict=True) if steps == 4]
    assert same == [reference.regions.to_csv() + "\n"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        for result in Store(store, create=False).results():
            assert Store(store).check(result) is None
    assert leftovers(store) == []


class CountingGrid(Grid):
    """A grid that counts the images it segments."""

    name = "counting-grid"
    calls = 0

    def _segment(self, image: np.ndarray) -> np.ndarray:
        CountingGrid.calls += 1
        return super()._segment(image)


def test_a_new_component_version_computes_its_results_again(
    data: Any, models: Any, tmp_path: Path
) -> None:
    settings = SMALL | {"segmenter": CountingGrid()}
    CountingGrid.calls = 0
    first = imacs.compare(*models, data.images, data.labels, store=tmp_path, **settings)
    imacs.compare(*models, data.images, data.labels, store=tmp_path, **settings)
    assert CountingGrid.calls == N_IMAGES

    class Changed(CountingGrid):
        version = "2"

    second = imacs.compare(
        *models, data.images, data.labels, store=tmp_path, **(settings | {"segmenter": Changed()})
    )
    assert CountingGrid.calls == 2 * N_IMAGES
    assert not set(first.images["segments_key"]) & set(second.images["segments_key"])


METHOD_PLUGIN = """
import imacs
from imacs.attribution.gradient import Gradient


class PluginGradient(Gradient):
    name = "plugin-gradient"


@imacs.hookimpl
def register_attribution_methods(register):
    register(PluginGradient)
"""


def test_a_new_plugin_release_computes_its_maps_again(
    data: Any, models: Any, tmp_path: Path, install_plugin: Any
) -> None:
    site = install_plugin("imacs-plugin-gradient", METHOD_PLUGIN)
    settings = SMALL | {"method": "plugin-gradient", "method_params": {}}
    first = imacs.compare(*models, data.images, data.labels, store=tmp_path / "store", **settings)
    assert first.work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}
    reused = imacs.compare(*models, data.images, data.labels, store=tmp_path / "store", **settings)
    assert reused.work == {"attributed_a": 0, "attributed_b": 0}
    metadata = site / "imacs_plugin_gradient-0.1.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.1", "Version: 0.2"))
    upgraded = imacs.compare(
        *models, data.images, data.labels, store=tmp_path / "store", **settings
    )
    assert upgraded.work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}


# -- full and read-only disks ----------------------------------------------------------


def fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s disk."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 1024)
            file.flush()
    return filler


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_while_creating_a_store_leaves_nothing_that_blocks_it_later(
    small_disk: Any,
) -> None:
    with small_disk("64k") as disk:
        filler = fill(disk)
        with pytest.raises(StoreError, match=f"{disk / 'store'}.*disk is full.*free space"):
            Store(disk / "store")
        assert leftovers(disk) == []
        filler.unlink()
        store = Store(disk / "store")
        store.save("maps", KEY, np.ones(3))
        np.testing.assert_array_equal(store.load("maps", KEY), np.ones(3))


def test_a_full_disk_mid_write_is_a_store_error_and_leaves_no_partial_file(small_disk: Any) -> None:
    with small_disk("64k") as disk:
        store = Store(disk / "store")
        store.save("maps", KEY, np.ones(100))
        with pytest.raises(StoreError, match=f"cannot save a maps result .*{disk}.*disk is full"):
            store.save("maps", "cd" * 32, np.ones(100_000))  # 800 kB on a 64 kB disk
        assert leftovers(disk) == []
        assert not store.has("maps", "cd" * 32)
        np.testing.assert_array_equal(store.load("maps", KEY), np.ones(100))


def test_a_comparison_on_a_full_disk_stops_with_one_clear_store_error(
    small_disk: Any, data: Any, models: Any
) -> None:
    with small_disk("64k") as disk:
        with pytest.raises(StoreError, match="disk is full"):
            imacs.compare(*models, data.images, data.labels, store=disk / "store", **SMALL)
        assert leftovers(disk) == []


def test_a_read_only_store_is_read_and_refuses_writes_clearly(small_disk: Any) -> None:
    with small_disk("1m") as disk:
        store = Store(disk / "store")
        store.save("maps", KEY, np.arange(3.0))
        store.save("maps", "cd" * 32, np.arange(3.0))
        path = stored_file(store, "maps", "cd" * 32)
        path.write_bytes(path.read_bytes()[:-1])
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        np.testing.assert_array_equal(Store(disk / "store").load("maps", KEY), np.arange(3.0))
        with pytest.warns(StoreWarning, match="will be computed again"):
            assert store.load("maps", "cd" * 32) is None
        with pytest.raises(StoreError, match=f"{disk / 'store'}.*read-only.*--store"):
            store.save("maps", "ef" * 32, np.ones(2))
        with pytest.raises(StoreError, match="read-only"):
            Store(disk / "another")


def test_a_killed_writers_temporary_file_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    key = make_key("a killed writer")
    Store(tmp_path / "store")
    # a process that has exited: its id is free (unless reused, which only keeps the file)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(finished.stdout)
    folder = tmp_path / "store" / "maps" / key[:2]
    folder.mkdir(parents=True)
    host = store_module._HOST
    leftovers = {
        "dead": folder / f".{key}.{host}-{dead}.{'0' * 16}.tmp",
        "alive": folder / f".{key}.{host}-{os.getppid()}.{'1' * 16}.tmp",
        "other host": folder / f".{key}.elsewhere-{dead}.{'2' * 16}.tmp",
    }
    for path in leftovers.values():
        path.write_bytes(b"half a result")
    Store(tmp_path / "store").save("maps", key, np.zeros(2))
    assert not leftovers["dead"].exists()
    assert leftovers["alive"].exists() and leftovers["other host"].exists()
    assert list(folder.glob("*.npy")) == [folder / f"{key}.npy"]
