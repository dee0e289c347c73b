"""A store in S3, through s3fs, against moto's S3 server on this machine.

fsspec's in-memory file system (``test_remote_store.py``) has folders; S3 has none, keeps
buckets apart from keys, and reports times as ``LastModified``. These tests run the same
store on a real S3 protocol: comparisons, resumes, damage, removal, and a mistyped bucket.
"""

from __future__ import annotations

import secrets
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import StoreError, StoreWarning
from imacs.remote_store import FsspecStore
from imacs.testing.planted import planted_models

N_IMAGES = 10
SMALL: dict[str, Any] = {
    "method_params": {"n_steps": 4},
    "featurizer": "color",
    "metrics": ["cosine"],
    "progress": False,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """moto's S3 server on a free port, and the options that reach it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    try:
        yield options
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: dict[str, Any]) -> str:
    import boto3

    name = f"imacs-{secrets.token_hex(4)}"
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        aws_access_key_id=s3["key"],
        aws_secret_access_key=s3["secret"],
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def data() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)


@pytest.fixture(scope="module")
def models() -> Any:
    return planted_models()


def test_a_comparison_in_s3_gives_the_local_tables_resumes_and_recomputes_damage(
    s3: dict[str, Any], bucket: str, data: Any, models: Any, tmp_path: Any
) -> None:
    local = imacs.compare(*models, data.images, data.labels, store=tmp_path, **SMALL)
    store = FsspecStore(f"s3://{bucket}/store", **s3)
    first = imacs.compare(*models, data.images, data.labels, store=store, **SMALL)
    for name in ("clusters", "regions", "images", "classes"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(local, name))
    assert store.stages() == ["attributions", "convergence", "images", "predictions", "segments"]
    assert store.count("attributions") == 2 * N_IMAGES
    results = sorted(store.results("attributions"), key=lambda result: result.key)
    assert results[0].path.startswith(f"s3://{bucket}/store/attributions/")
    assert np.isfinite(results[0].mtime) and results[0].size > 0
    assert all(store.check(result) is None for result in results)

    path = store._inside(results[0].path)
    store.fs.pipe_file(path, bytes(store.fs.cat_file(path))[:60])
    with pytest.warns(StoreWarning, match=f"s3://{bucket}.*damaged.*computed again"):
        again = imacs.compare(*models, data.images, data.labels, store=store, **SMALL)
    assert again.work["attributed_a"] + again.work["attributed_b"] == 1
    pd.testing.assert_frame_equal(again.regions, local.regions)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        third = imacs.compare(*models, data.images, data.labels, store=store, **SMALL)
    assert third.work == {"attributed_a": 0, "attributed_b": 0}

    assert store.remove([results[1].path]) == results[1].size
    assert store.count("attributions") == 2 * N_IMAGES - 1
    assert store.clear() > 0 and store.stages() == []
    assert FsspecStore(f"s3://{bucket}/store", create=False, **s3).count("images") == 0


def test_a_mistyped_bucket_is_an_error_and_is_not_created(s3: dict[str, Any]) -> None:
    import s3fs

    with pytest.raises(StoreError, match=r"does not exist.*its bucket"):
        FsspecStore("s3://no-such-bucket-here/store", **s3)
    assert not s3fs.S3FileSystem(**s3).exists("no-such-bucket-here")
    with pytest.raises(StoreError, match="no imacs store at 's3://no-such-bucket-here/x'"):
        FsspecStore("s3://no-such-bucket-here/x", create=False, **s3)


def test_many_results_are_read_and_written_together_in_s3(s3: dict[str, Any], bucket: str) -> None:
    store = FsspecStore(f"s3://{bucket}/many", **s3)
    items = [(f"{i:02x}" * 32, np.full(5, i, np.float32)) for i in range(40)]
    store.save_many("attributions", items)
    keys = [key for key, _ in items] + ["ff" * 32]
    assert store.has_many("attributions", keys) == [True] * 40 + [False]
    loaded = store.load_many("attributions", keys)
    assert loaded[-1] is None
    assert [int(array[0]) for array in loaded[:-1] if array is not None] == list(range(40))
