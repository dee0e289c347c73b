"""The on-disk store: content keys, atomic writes, format checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imacs.errors import InvalidInputError, StoreError
from imacs.store import MARKER, STORE_FORMAT, Store, array_digest, make_key, open_store


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


def test_keys_depend_on_every_part_and_not_on_dict_order() -> None:
    assert make_key("m", {"a": 1, "b": 2.0}) == make_key("m", {"b": 2.0, "a": 1})
    assert make_key("m", {"a": 1}) != make_key("m", {"a": 2})
    assert make_key("m", (1, 2)) == make_key("m", [1, 2])
    assert make_key(np.zeros(3)) != make_key(np.zeros(4))
    assert array_digest(np.zeros(3, np.float32)) != array_digest(np.zeros(3, np.float64))


def test_values_without_a_lasting_identity_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="no identity that lasts"):
        make_key("m", lambda x: x)


def test_a_store_of_another_format_is_refused(tmp_path: Path) -> None:
    Store(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"format": STORE_FORMAT + 1}))
    with pytest.raises(StoreError, match="format"):
        Store(tmp_path)


def test_a_non_empty_folder_that_is_no_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="not an imacs store"):
        open_store(tmp_path)


def test_an_unreadable_result_is_recomputed_not_fatal(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("maps", "ab" * 32, np.ones(3))
    next((tmp_path / "maps").rglob("*.npy")).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="computed again"):
        assert store.load("maps", "ab" * 32) is None


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    store = Store(tmp_path)
    key = "cd" * 32
    path = tmp_path / "maps" / key[:2] / f"{key}.npy"
    path.parent.mkdir(parents=True)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.warns(UserWarning):
        assert store.load("maps", key) is None


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
    ],
    ids=["float32-3d", "fortran", "big-endian", "bool", "0-d", "empty", "unicode"],
)
def test_arrays_come_back_as_numpy_would_read_them(tmp_path: Path, array: np.ndarray) -> None:
    store = Store(tmp_path)
    key = make_key("array", array)
    store.save("maps", key, array)
    loaded = store.load("maps", key)
    assert loaded is not None
    expected = np.load(store._path("maps", key), allow_pickle=False)
    assert loaded.dtype == array.dtype == expected.dtype
    np.testing.assert_array_equal(loaded, array)
    np.testing.assert_array_equal(expected, array)
    loaded[...] = loaded  # a loaded array is the caller's to change


def test_files_numpy_wrote_in_other_format_versions_are_read(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for version, key in (((1, 0), "ab" * 32), ((2, 0), "cd" * 32), ((3, 0), "ef" * 32)):
        path = tmp_path / "maps" / key[:2] / f"{key}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            np.lib.format.write_array(file, np.arange(5.0), version=version)
        np.testing.assert_array_equal(store.load("maps", key), np.arange(5.0))


def test_a_truncated_result_is_recomputed_not_misread(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save("maps", "ab" * 32, np.arange(100.0))
    path = next((tmp_path / "maps").rglob("*.npy"))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.warns(UserWarning, match="computed again"):
        assert store.load("maps", "ab" * 32) is None


def test_object_arrays_are_refused_when_saved(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="plain arrays"):
        Store(tmp_path).save("maps", "ab" * 32, np.array([{"a": 1}], dtype=object))
