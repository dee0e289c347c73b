"""Streaming data sources: every kind of input read batch by batch, with the same checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from imacs.data import read_image_folder
from imacs.data import sources as sources_module
from imacs.data.sources import Batch, DataSource, as_data_source
from imacs.errors import InvalidInputError


def _write(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _collect(source: DataSource, batch_size: int) -> tuple[Batch, list[int]]:
    """All batches of one pass joined into one, and the size of each batch."""
    batches = list(source.batches(batch_size))
    for batch in batches:
        assert batch.images.dtype == np.float32 and batch.images.ndim == 4
        assert len(batch.images) == len(batch.names)
        assert batch.labels is None or (
            batch.labels.dtype == np.int64 and batch.labels.shape == (len(batch.names),)
        )
    labels = None
    if batches[0].labels is not None:
        labels = np.concatenate([b.labels for b in batches])
    joined = Batch(
        np.concatenate([b.images for b in batches]),
        labels,
        [name for b in batches for name in b.names],
    )
    return joined, [len(b) for b in batches]


def _assert_same(a: Batch, b: Batch) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    assert a.names == b.names
    if a.labels is None:
        assert b.labels is None
    else:
        np.testing.assert_array_equal(a.labels, b.labels)


@pytest.fixture
def class_folder(tmp_path):
    """Seven 6x5 RGB images in two class folders (3 cats, 4 dogs)."""
    rng = np.random.default_rng(0)
    for cls, count in (("cat", 3), ("dog", 4)):
        for i in range(count):
            _write(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    return tmp_path


# -- batching, shared by every kind of source ---------------------------------------------


def _sources(tmp_path):
    """The same 7 images with labels, as each kind of in-memory or on-disk source."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 6, 5, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1, 1, 0, 1])
    for i, image in enumerate(images):
        _write(tmp_path / f"{i}.png", image)
    (tmp_path / "labels.csv").write_text(
        "filename,label\n" + "".join(f"{i}.png,{label}\n" for i, label in enumerate(labels))
    )
    chunks = [(images[i : i + 4], labels[i : i + 4]) for i in range(0, 7, 4)]
    return (
        images.astype(np.float32),
        labels,
        {
            "folder": lambda: as_data_source(tmp_path, tmp_path / "labels.csv"),
            "array": lambda: as_data_source(images, labels),
            "iterable": lambda: as_data_source(chunks),
        },
    )


@pytest.mark.parametrize("kind", ["folder", "array", "iterable"])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 7, 10])
def test_every_source_yields_full_batches_up_to_batch_size(tmp_path, kind, batch_size) -> None:
    images, labels, make = _sources(tmp_path)
    source = make[kind]()
    joined, sizes = _collect(source, batch_size)
    assert max(sizes) <= batch_size and all(size == batch_size for size in sizes[:-1])
    assert sum(sizes) == 7
    np.testing.assert_array_equal(joined.images, images)  # uint8 kept as 0..255 floats
    np.testing.assert_array_equal(joined.labels, labels)
    again, _ = _collect(source, batch_size)  # each call starts over, with the same data
    _assert_same(joined, again)
    assert len(source) == 7


def test_bad_batch_size_fails_at_the_call() -> None:
    source = as_data_source(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(InvalidInputError, match="batch_size to be an int >= 1; got 0"):
        source.batches(0)


# -- folders ------------------------------------------------------------------------------


def test_folder_matches_read_image_folder_with_class_labels(class_folder) -> None:
    source = as_data_source(class_folder)
    joined, sizes = _collect(source, 3)
    reference = read_image_folder(class_folder)
    assert sizes == [3, 3, 1]
    np.testing.assert_array_equal(joined.images, reference.images)
    assert (
        joined.names
        == reference.names
        == ["cat/0.png", "cat/1.png", "cat/2.png"] + [f"dog/{i}.png" for i in range(4)]
    )
    assert joined.labels.tolist() == reference.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert source.class_names == ["cat", "dog"] and source.skipped == []


def test_folder_reads_lazily_one_batch_at_a_time(class_folder, monkeypatch) -> None:
    reads = []
    real_read = sources_module._read
    monkeypatch.setattr(
        sources_module, "_read", lambda p, s, **kw: reads.append(p) or real_read(p, s, **kw)
    )
    batches = as_data_source(class_folder).batches(2)
    assert reads == []
    first = next(batches)
    assert len(first) == 2 and len(reads) == 2


def test_class_folders_mapped_through_given_class_names(class_folder) -> None:
    source = as_data_source(class_folder, class_names=["bird", "dog", "cat"])
    joined, _ = _collect(source, 8)
    assert source.class_names == ["bird", "dog", "cat"]
    assert joined.labels.tolist() == [2, 2, 2, 1, 1, 1, 1]
    with pytest.raises(InvalidInputError, match=r"not in class_names: 'dog'"):
        as_data_source(class_folder, class_names=["cat"])


def test_folder_labels_from_csv_by_index_and_by_name(tmp_path) -> None:
    for name in ("a.png", "sub/b.png", "c.png"):
        _write(tmp_path / "images" / name, np.zeros((4, 4, 3), np.uint8))
    root = tmp_path / "images"
    by_index = tmp_path / "index.csv"
    by_index.write_text("filename,label,extra\nc.png,2,x\na.png,0,y\nsub/b.png,5,z\n")
    source = as_data_source(root, by_index)
    joined, _ = _collect(source, 2)
    assert joined.names == ["a.png", "c.png", "sub/b.png"]  # sorted paths, not CSV order
    assert joined.labels.tolist() == [0, 2, 5] and source.class_names is None

    by_name = tmp_path / "names.csv"
    by_name.write_text("\ufefffilename,label\n./a.png,zebra\nc.png,ant\nsub/b.png,zebra\n")
    source = as_data_source(root, str(by_name))  # a BOM, ./ and str paths are fine
    joined, _ = _collect(source, 2)
    assert source.class_names == ["ant", "zebra"] and joined.labels.tolist() == [1, 0, 1]

    source = as_data_source(root, by_name, class_names=["zebra", "lion", "ant"])
    assert _collect(source, 5)[0].labels.tolist() == [0, 2, 0]
    with pytest.raises(InvalidInputError, match=r"below 2 \(the number of class_names\)"):
        as_data_source(root, by_index, class_names=["x", "y"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "a.png,0\nb.png,1\nnope.png,1\n",
            r"names 1 file\(s\) that are not image files.*'nope.png'",
        ),
        ("a.png,0\n", r"1 image file\(s\) .* have no row in the labels CSV.*'b.png'"),
        ("a.png,0\nb.png,1\na.png,1\n", r"lists 1 file\(s\) more than once: 'a.png'"),
        ("a.png,0\nb.png,\n", r"empty label for 'b.png'"),
        ("a.png,0\nb.png,-1\n", r"class indices >= 0"),
    ],
)
def test_bad_label_csv_is_explained(tmp_path, rows, message) -> None:
    for name in ("a.png", "b.png"):
        _write(tmp_path / "images" / name, np.zeros((4, 4), np.uint8))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("filename,label\n" + rows)
    with pytest.raises(InvalidInputError, match=message):
        as_data_source(tmp_path / "images", csv_path)


def test_csv_without_needed_columns_or_missing_is_explained(tmp_path) -> None:
    _write(tmp_path / "images" / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "labels.csv").write_text("file,class\na.png,0\n")
    with pytest.raises(InvalidInputError, match=r"columns 'filename' and 'label'; found"):
        as_data_source(tmp_path / "images", tmp_path / "labels.csv")
    with pytest.raises(InvalidInputError, match="is not a file"):
        as_data_source(tmp_path / "images", tmp_path / "missing.csv")


def test_csv_labels_for_class_folders_are_ambiguous(class_folder, tmp_path_factory) -> None:
    csv_path = tmp_path_factory.mktemp("csv") / "labels.csv"
    csv_path.write_text("filename,label\ncat/0.png,0\n")
    with pytest.raises(InvalidInputError, match=r"labels are given twice.*class sub-folders"):
        as_data_source(class_folder, csv_path)


def test_corrupt_file_raises_or_is_skipped_with_one_warning(tmp_path) -> None:
    for name in ("a.png", "c.png", "d.png"):
        _write(tmp_path / name, np.full((4, 4, 3), 7, np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    source = as_data_source(tmp_path)
    assert len(source) == 4
    with pytest.raises(InvalidInputError, match=r"cannot read image .*b.png.*on_error='skip'"):
        list(source.batches(2))

    source = as_data_source(tmp_path, on_error="skip")
    with pytest.raises(TypeError, match="unknown until one pass"):
        len(source)  # how many files are readable is known only after reading them
    assert source  # but the source is still truthy
    with pytest.warns(UserWarning, match=r"skipping unreadable image .*b.png") as caught:
        joined, sizes = _collect(source, 2)
    assert len(caught) == 1
    assert joined.names == ["a.png", "c.png", "d.png"] and sizes == [2, 1]
    assert source.skipped == ["b.png"] and len(source) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per file, not once per pass
        _assert_same(joined, _collect(source, 2)[0])
    assert source.skipped == ["b.png"]


def test_folder_of_only_corrupt_files_is_empty(tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"junk")
    with (
        pytest.warns(UserWarning),
        pytest.raises(InvalidInputError, match=r"dataset is empty.*skipped: 'bad.png'"),
    ):
        list(as_data_source(tmp_path, on_error="skip").batches(4))
    with pytest.raises(InvalidInputError, match="is not a folder"):
        as_data_source(tmp_path / "bad.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="found no image files"):
        as_data_source(tmp_path / "empty")


def test_mixed_sizes_name_two_files_or_are_resized(tmp_path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "c.png", np.zeros((8, 6, 3), np.uint8))
    with pytest.raises(
        InvalidInputError,
        match=r"'a.png' is \(4, 4, 3\) .* but 'c.png' is \(8, 6, 3\).*size=\(height, width\)",
    ):
        list(as_data_source(tmp_path).batches(8))
    joined, _ = _collect(as_data_source(tmp_path, size=(5, 7)), 2)
    np.testing.assert_array_equal(joined.images, read_image_folder(tmp_path, size=(5, 7)).images)


def test_mixed_channel_counts_ask_for_one_colour_mode(tmp_path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _write(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InvalidInputError, match=r"\(4, 4, 1\).*\(4, 4, 3\).*one colour mode"):
        list(as_data_source(tmp_path, size=(4, 4)).batches(2))


def test_channels_first_makes_no_sense_for_files(class_folder) -> None:
    with pytest.raises(InvalidInputError, match="channel-last"):
        as_data_source(class_folder, channels="first")


# -- ImageFolder and arrays ---------------------------------------------------------------


def test_image_folder_keeps_labels_names_and_skipped(class_folder) -> None:
    (class_folder / "dog" / "broken.png").write_bytes(b"junk")
    with pytest.warns(UserWarning):
        folder = read_image_folder(class_folder, on_error="skip")
    source = as_data_source(folder)
    joined, sizes = _collect(source, 4)
    assert sizes == [4, 3] and joined.names == folder.names
    np.testing.assert_array_equal(joined.images, folder.images)
    assert joined.labels.tolist() == folder.labels.tolist()
    assert source.class_names == ["cat", "dog"] and source.skipped == ["dog/broken.png"]
    remapped = as_data_source(folder, class_names=["dog", "cat"])
    assert _collect(remapped, 8)[0].labels.tolist() == [1, 1, 1, 0, 0, 0, 0]
    with pytest.raises(InvalidInputError, match="labels are given twice"):
        as_data_source(folder, labels=np.zeros(7, int))


def test_array_labels_by_name_and_length_mismatch() -> None:
    images = np.zeros((4, 3, 3, 1), np.float32)
    source = as_data_source(images, ["b", "a", "c", "a"])
    assert source.class_names == ["a", "b", "c"]
    joined, _ = _collect(source, 3)
    assert joined.labels.tolist() == [1, 0, 2, 0]
    assert joined.names == ["array[0]", "array[1]", "array[2]", "array[3]"]
    with pytest.raises(InvalidInputError, match="the images have 4 but labels= has 3"):
        as_data_source(images, [0, 1, 2])
    with pytest.raises(InvalidInputError, match="integer class indices or class names"):
        as_data_source(images, [0.5, 1, 2, 3])


def test_grayscale_and_channels_first_arrays_become_channel_last() -> None:
    rng = np.random.default_rng(2)
    gray = rng.random((3, 6, 5))
    assert _collect(as_data_source(gray), 2)[0].images.shape == (3, 6, 5, 1)
    first = rng.random((3, 3, 6, 5)).astype(np.float32)
    joined, _ = _collect(as_data_source(first), 2)
    np.testing.assert_array_equal(joined.images, first.transpose(0, 2, 3, 1))
    # (N, 3, 6, 4) is ambiguous: auto keeps it channel-last (4 channels), "first" forces it
    ambiguous = rng.random((2, 3, 6, 4)).astype(np.float32)
    assert _collect(as_data_source(ambiguous), 2)[0].images.shape == (2, 3, 6, 4)
    forced = _collect(as_data_source(ambiguous, channels="first"), 2)[0].images
    np.testing.assert_array_equal(forced, ambiguous.transpose(0, 2, 3, 1))
    with pytest.raises(InvalidInputError, match=r"got shape \(1, 3, 6, 5\): pass channels='first'"):
        as_data_source(first, channels="last")  # 5 channels cannot be channel-last
    with pytest.raises(InvalidInputError, match="channels='first'"):
        as_data_source(rng.random((2, 6, 6, 8)))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((0, 4, 4, 3)), "the dataset is empty"),
        (np.zeros((4, 4, 3)), r"looks like one image \(H, W, C\).*image\[None\]"),
        (np.zeros((2, 4)), r"shape \(N, H, W, C\) or \(N, H, W\)"),
        (np.array([["a"]]), "dtype <U1"),
    ],
)
def test_bad_arrays_are_explained(images, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        as_data_source(images)


def test_non_finite_pixels_name_the_image() -> None:
    images = np.zeros((5, 4, 4, 1), np.float32)
    images[3, 1, 2] = np.nan
    batches = as_data_source(images).batches(2)
    assert len(next(batches)) == 2
    with pytest.raises(InvalidInputError, match=r"image 'array\[3\]' contains NaN or infinity"):
        next(batches)


def test_array_resized_like_pil_bilinear() -> None:
    image = np.random.default_rng(3).random((9, 7, 2)).astype(np.float32)
    resized = _collect(as_data_source(image[None], size=(4, 5)), 1)[0].images[0]
    for c in range(2):
        expected = Image.fromarray(image[..., c]).resize((5, 4), Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(resized[..., c], np.asarray(expected))


# -- iterables of batches -----------------------------------------------------------------


def test_list_of_batches_tuples_dicts_and_images_alone() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random((3, 4, 4, 3)), rng.random((2, 4, 4, 3))
    tuples = as_data_source([(a, [0, 1, 0]), (b, np.array([1, 1]))])
    joined, sizes = _collect(tuples, 4)
    assert sizes == [4, 1] and joined.labels.tolist() == [0, 1, 0, 1, 1]
    assert joined.names == ["batch0[0]", "batch0[1]", "batch0[2]", "batch1[0]", "batch1[1]"]
    dicts = as_data_source([{"image": a, "label": [0, 1, 0]}, {"image": b, "label": [1, 1]}])
    _assert_same(joined, _collect(dicts, 4)[0])
    alone = _collect(as_data_source([a, b], labels=[0, 1, 0, 1, 1]), 4)[0]
    _assert_same(joined, alone)
    assert _collect(as_data_source([[a], [b]]), 4)[0].labels is None


def test_iterable_mixed_shapes_and_size() -> None:
    batches = [np.zeros((2, 4, 4, 3)), np.zeros((2, 6, 5, 3))]
    with pytest.raises(
        InvalidInputError, match=r"'batch0\[0\]' is \(4, 4, 3\) .* 'batch1\[0\]' is \(6, 5, 3\)"
    ):
        list(as_data_source(batches).batches(8))
    assert _collect(as_data_source(batches, size=(4, 4)), 8)[0].images.shape == (4, 4, 4, 3)


def test_iterable_label_problems_are_explained() -> None:
    images = np.zeros((2, 4, 4, 3))
    with pytest.raises(InvalidInputError, match="labels are given twice"):
        list(as_data_source([(images, [0, 1])], labels=[0, 1]).batches(2))
    with pytest.raises(InvalidInputError, match=r"some batches .* have labels and some do not"):
        list(as_data_source([(images, [0, 1]), images]).batches(2))
    with pytest.raises(InvalidInputError, match=r"labels= has 3 entries but .* yielded 2 images"):
        list(as_data_source([images], labels=[0, 1, 2]).batches(2))
    with pytest.raises(InvalidInputError, match=r"labels= has 1 entries but .* yields more"):
        list(as_data_source([images], labels=[0]).batches(2))
    with pytest.raises(InvalidInputError, match="got 3 labels for 2 images"):
        list(as_data_source([(images, [0, 1, 1])]).batches(2))
    with pytest.raises(InvalidInputError, match="pass class_names"):
        list(as_data_source([(images, ["cat", "dog"])]).batches(2))
    named = as_data_source([(images, ["cat", "dog"])], class_names=["dog", "cat"])
    assert _collect(named, 2)[0].labels.tolist() == [1, 0]
    with pytest.raises(InvalidInputError, match=r"'image' key .* got keys \['pixels'\]"):
        list(as_data_source([{"pixels": images}]).batches(2))
    with pytest.raises(InvalidInputError, match="a tuple of 3 items"):
        list(as_data_source([(images, [0, 1], "meta")]).batches(2))


def test_empty_and_one_shot_iterables() -> None:
    with pytest.raises(InvalidInputError, match="the dataset is empty: the list yielded no"):
        list(as_data_source([]).batches(2))
    with pytest.raises(InvalidInputError, match="looks like one image"):
        list(as_data_source([np.zeros((4, 4, 3))]).batches(2))  # a list of single images
    source = as_data_source(np.zeros((2, 3, 3, 1)) for _ in range(2))
    with pytest.raises(TypeError):
        len(source)
    assert sum(len(b) for b in source.batches(3)) == 4 and len(source) == 4
    with pytest.raises(InvalidInputError, match="one-shot iterator"):
        list(source.batches(3))


def test_unknown_inputs_and_options_are_explained() -> None:
    with pytest.raises(InvalidInputError, match="got int"):
        as_data_source(5)
    with pytest.raises(InvalidInputError, match="unknown on_error 'ignore'"):
        as_data_source(np.zeros((1, 2, 2, 1)), on_error="ignore")
    with pytest.raises(InvalidInputError, match="unknown channels"):
        as_data_source(np.zeros((1, 2, 2, 1)), channels="middle")
    with pytest.raises(InvalidInputError, match=r"size=\(height, width\) with two ints"):
        as_data_source(np.zeros((1, 2, 2, 1)), size=(0, 4))
    with pytest.raises(InvalidInputError, match="distinct class_names"):
        as_data_source(np.zeros((1, 2, 2, 1)), class_names=["a", "a"])
    source = as_data_source(np.zeros((1, 2, 2, 1)))
    assert as_data_source(source) is source
    with pytest.raises(InvalidInputError, match="carries its own"):
        as_data_source(source, labels=[0])


# -- real framework loaders ---------------------------------------------------------------


@pytest.mark.torch
def test_torch_dataloader_channels_first_batches_rebatched() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(10, 3, 6, 5, generator=generator)
    labels = torch.arange(10) % 4
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    source = as_data_source(loader, class_names=["a", "b", "c", "d"])
    joined, sizes = _collect(source, 3)
    assert sizes == [3, 3, 3, 1]
    np.testing.assert_array_equal(joined.images, images.permute(0, 2, 3, 1).numpy())
    assert joined.labels.tolist() == labels.tolist() and source.class_names == list("abcd")
    assert joined.names[:5] == ["batch0[0]", "batch0[1]", "batch0[2]", "batch0[3]", "batch1[0]"]
    _assert_same(joined, _collect(source, 3)[0])
    assert len(source) == 10

    grads = torch.rand(4, 1, 5, 6, requires_grad=True)  # detached, grayscale channels-first
    alone = as_data_source(DataLoader(TensorDataset(grads * 255), batch_size=3), labels=[3] * 4)
    joined, _ = _collect(alone, 4)
    np.testing.assert_allclose(joined.images, (grads * 255).detach().permute(0, 2, 3, 1))
    assert joined.labels.tolist() == [3] * 4
    with pytest.raises(InvalidInputError, match="labels are given twice"):
        list(as_data_source(loader, labels=np.zeros(10, int)).batches(4))
    tensor_source = as_data_source(images)  # a tensor is an array
    np.testing.assert_array_equal(_collect(tensor_source, 4)[0].images, images.permute(0, 2, 3, 1))


@pytest.mark.tensorflow
def test_tf_dataset_batched_unbatched_dicts_and_names() -> None:
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (7, 6, 5, 3), dtype=np.uint8)
    names = np.array([b"cat", b"dog", b"cat", b"cat", b"dog", b"dog", b"cat"])
    expected = images.astype(np.float32)

    unbatched = as_data_source(
        tf.data.Dataset.from_tensor_slices((images, names)), class_names=["cat", "dog"]
    )
    joined, sizes = _collect(unbatched, 3)
    assert sizes == [3, 3, 1] and joined.names == [f"element[{i}]" for i in range(7)]
    np.testing.assert_array_equal(joined.images, expected)
    assert joined.labels.tolist() == [0, 1, 0, 0, 1, 1, 0]
    _assert_same(joined, _collect(unbatched, 3)[0])

    batched = as_data_source(
        tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(7)}).batch(4)
    )
    joined, sizes = _collect(batched, 3)
    assert sizes == [3, 3, 1] and joined.names[3:5] == ["batch0[3]", "batch1[0]"]
    np.testing.assert_array_equal(joined.images, expected)
    assert joined.labels.tolist() == list(range(7))

    gray = as_data_source(tf.data.Dataset.from_tensor_slices(images[..., 0]), labels=[1] * 7)
    joined, _ = _collect(gray, 4)
    np.testing.assert_array_equal(joined.images, expected[..., :1])
    assert joined.labels.tolist() == [1] * 7 and len(gray) == 7
    with pytest.raises(InvalidInputError, match="the dataset is empty"):
        list(as_data_source(tf.data.Dataset.from_tensor_slices(images[:0])).batches(2))
