"""Every data source through `runner.data.splits.load`, on real files the tests write and on real digits."""

import dataclasses
import hashlib
import io
import socket
import tarfile
import time

import numpy as np
import pytest
import tensorflow as tf

from helpers import compose
from image_folders import CLASS_COLOURS, make_image_folder
from runner.data import augment, digits, download, imagenette, pipeline, pixels, source, synthetic
from runner.data.splits import load
from runner.mistakes.errors import UserError

CLASSES = ("n01440764", "n02102040", "n02979186")
PER_CLASS = 5  # 15 images per split: batches of 4 leave a remainder of 3


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """3 classes x 5 images per split; JPEG and PNG, one in three gray, landscape and portrait."""
    return make_image_folder(tmp_path_factory.mktemp("tree") / "photos", classes=CLASSES, per_class=PER_CLASS,
                             size=(40, 56), grayscale_every=3)


def folder(root, *overrides):
    return compose("data=folder", f"data.root={root}", "data.num_classes=3", "model.input_shape=[32,32,3]",
                   "trainer.batch_size=4", *overrides)


def batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def class_of(image: np.ndarray) -> int:
    """The class whose colour (or its gray) is nearest to the image's mean colour, image in uint8."""
    mean = image.reshape(-1, image.shape[-1]).mean(0)
    colours = CLASS_COLOURS[: len(CLASSES)].astype(np.float32)
    grays = np.repeat(colours @ pixels.LUMA, 3).reshape(-1, 3)
    distances = np.linalg.norm(np.concatenate([colours, grays]) - mean, axis=1)
    return int(np.argmin(distances)) % len(CLASSES)


# --- image folders -----------------------------------------------------------------------------


def test_folder_batches_have_the_model_shape_and_keep_or_drop_the_remainder(tree):
    splits = load(folder(tree))
    assert splits.class_names == list(CLASSES)
    assert (splits.train_examples, splits.val_examples) == (15, 15)
    images, labels = splits.train.element_spec
    assert (images.shape.as_list(), images.dtype, labels.shape.as_list(), labels.dtype) == (
        [4, 32, 32, 3], tf.uint8, [4], tf.int32)  # static: XLA compiles one shape; uint8: normalised on the device
    assert [len(labels) for _, labels in batches(splits.train)] == [4, 4, 4]
    val = batches(splits.val)
    assert [len(labels) for _, labels in val] == [4, 4, 4, 3]
    assert np.concatenate([labels for _, labels in val]).tolist() == [0] * 5 + [1] * 5 + [2] * 5


@pytest.mark.parametrize("overrides", [(), ("data.cache=true",), ("augment=inception",), ("augment=none",)])
def test_labels_stay_with_their_images(tree, overrides):
    splits = load(folder(tree, *overrides))
    for dataset in (splits.train, splits.val):
        for images, labels in batches(dataset):
            assert [class_of(image) for image in images] == labels.tolist()


def test_training_is_reshuffled_every_epoch(tree):
    splits = load(folder(tree))
    orders = [np.concatenate([labels for _, labels in batches(splits.train)]).tolist() for _ in range(3)]
    assert all(np.bincount(order, minlength=3).max() <= PER_CLASS for order in orders)
    assert len({tuple(order) for order in orders}) > 1


def test_crops_change_every_epoch():
    # Four copies of one image: each copy and each epoch gets its own crop and flip.
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), np.uint8)
    examples = source.tensors(np.stack([image] * 4), np.arange(4))
    view = augment.training(compose("augment=crop_flip").augment, (8, 8))
    train = pipeline.training(examples, view, batch_size=4, seed=0, shuffle_buffer=4)

    def epoch():
        images, labels = next(iter(train))
        return images.numpy()[np.argsort(labels.numpy())]

    first, second = epoch(), epoch()
    assert len({crop.tobytes() for crop in first}) > 1
    assert not np.array_equal(first, second)


def test_gray_and_colour_files_fit_a_gray_model(tree):
    splits = load(folder(tree, "model.input_shape=[24,20,1]"))
    assert splits.train.element_spec[0].shape.as_list() == [4, 24, 20, 1]
    assert all(images.shape[1:] == (24, 20, 1) for images, _ in batches(splits.val))


def test_images_are_normalised_with_the_data_mean_and_std(tree):
    splits = load(folder(tree, "data.mean=[0.5,0.4,0.3]", "data.std=[0.2,0.25,0.5]"))
    [(raw, _), *_] = batches(splits.val)
    assert raw.dtype == np.uint8 and raw.max() > 1  # 0 to 255, not yet normalised
    normalised = splits.normalise(tf.constant(raw)).numpy()
    np.testing.assert_allclose(normalised, (raw / 255 - [0.5, 0.4, 0.3]) / [0.2, 0.25, 0.5], atol=1e-5)


def test_a_gray_model_takes_the_luma_of_rgb_statistics():
    images = pipeline.normaliser(pipeline.IMAGENET, 1)(tf.fill([1, 2, 2, 1], 255))
    mean, std = np.dot(pixels.LUMA, [0.485, 0.456, 0.406]), np.dot(pixels.LUMA, [0.229, 0.224, 0.225])
    np.testing.assert_allclose(images.numpy(), (1 - mean) / std, rtol=1e-6)


def test_a_mean_per_channel_must_match_the_channels(tree):
    with pytest.raises(UserError, match=r"^data.mean has 2 values but the model takes 3 channels; give 1 or 3$"):
        load(folder(tree, "data.mean=[0.5,0.5]"))


def test_the_cache_gives_the_same_val_batches(tree):
    plain, cached = (batches(load(folder(tree, f"data.cache={cache}")).val) for cache in (False, True))
    for (images, labels), (cached_images, cached_labels) in zip(plain, cached, strict=True):
        np.testing.assert_array_equal(labels, cached_labels)
        # The cache rounds its resized image to uint8 before cropping (a grey level), from a full
        # decode (another: see the ten-crop test).
        np.testing.assert_allclose(images.astype(int), cached_images, atol=2)


@pytest.mark.e2e
def test_the_cache_can_go_to_files_of_its_own(tree, tmp_path):
    in_memory = load(folder(tree, "data.cache=true"))
    in_files = load(folder(tree, "data.cache=true", f"data.cache_dir={tmp_path / 'cache'}"))
    for (images, labels), (file_images, file_labels) in zip(batches(in_memory.val), batches(in_files.val), strict=True):
        np.testing.assert_array_equal(images, file_images)
        np.testing.assert_array_equal(labels, file_labels)
    assert len(batches(in_files.train)) == 3  # the first epoch writes the training cache
    [own] = (tmp_path / "cache").iterdir()  # this load's folder: no other run reads or locks it
    assert {"train.index", "val.index"} <= {path.name for path in own.iterdir()}


def test_a_cache_dir_that_cannot_be_made_is_a_one_line_error(tree, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^data.cache_dir=.*/file/cache: cannot create a folder there"):
        load(folder(tree, "data.cache=true", f"data.cache_dir={tmp_path / 'file' / 'cache'}"))


def test_ten_crop_batches_hold_ten_views_per_image(tree):
    assert load(folder(tree)).val_ten_crop is None
    splits = load(folder(tree, "eval.ten_crop=true"))
    assert splits.val_ten_crop.element_spec[0].shape.as_list() == [None, 10, 32, 32, 3]
    for (crops, labels), (centre, centre_labels) in zip(batches(splits.val_ten_crop), batches(splits.val), strict=True):
        np.testing.assert_array_equal(labels, centre_labels)
        # The centre crop decodes only its window; libjpeg's chroma upsampling may then differ
        # from a full decode by a grey level at the window's edge.
        np.testing.assert_allclose(crops[:, 4].astype(int), centre, atol=1)
        np.testing.assert_array_equal(crops[:, 5:], crops[:, :5, :, ::-1])


def test_files_are_told_apart_by_content_not_name():
    rows, columns = np.mgrid[0:12, 0:16]  # smooth: JPEG keeps it within a few grey levels
    image = np.stack([rows * 20, columns * 15, rows * 5 + columns * 10], -1).astype(np.uint8)
    whole = lambda shape, read: read(0, 0, shape[0], shape[1])
    as_png = pixels.encoded(tf.io.encode_png(image), 3, whole).numpy()
    as_jpeg = pixels.encoded(tf.io.encode_jpeg(image, quality=100), 3, whole).numpy()
    np.testing.assert_array_equal(as_png, image)
    np.testing.assert_allclose(as_jpeg.astype(int), image, atol=13)
    gray = pixels.encoded(tf.io.encode_png(image[..., :1]), 3, whole).numpy()
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


@pytest.mark.parametrize("overrides, message", [
    (("data.root=null",), r"^data.root is not set; pass data.root=/path/to/dataset, the folder holding "
                          r"<root>/train/<class>/<image> and <root>/val/<class>/<image>$"),
    (("data.root=/no/such/folder",), r"^data.root=/no/such/folder is not a folder; expected <root>/train/"),
    (("data.num_classes=5",), r"^data.num_classes=5 but .*/train holds 3 class folders; pass data.num_classes=3$"),
    (("trainer.batch_size=16",), r"^data has 15 training images, fewer than trainer.batch_size=16$"),
    (("data.name=cifar",),
     r"^data.name: unknown dataset 'cifar'; valid: digits, imagenette, imagenet, folder, synthetic$"),
])
def test_folder_mistakes_are_one_line_errors(tree, overrides, message):
    with pytest.raises(UserError, match=message) as raised:
        load(folder(tree, *overrides))
    assert "\n" not in str(raised.value)


def test_folder_without_num_classes_says_how_many_it_found(tree):
    cfg = compose("data=folder", f"data.root={tree}")
    message = r"^data.num_classes is not set; .* holds 3 class folders: pass data.num_classes=3$"
    with pytest.raises(UserError, match=message):
        load(cfg)


def test_imagenet_checks_its_thousand_classes(tree):
    with pytest.raises(UserError, match=r"^data.num_classes=1000 but .* holds 3 class folders"):
        load(compose("data=imagenet", f"data.root={tree}"))


@pytest.mark.parametrize("broken, message", [
    ("val", r"^data.root=.* has no val/ folder; expected <root>/train/<class>/<image> and <root>/val/<class>/<image>$"),
    ("train", r"^data.root=.* has no train/ folder; expected"),
])
def test_a_missing_split_folder_names_the_layout(tmp_path, broken, message):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    for path in sorted((root / broken).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / broken).rmdir()
    with pytest.raises(UserError, match=message):
        load(folder(root, "trainer.batch_size=2"))


# --- imagenette ----------------------------------------------------------------------------------


def test_imagenette_reads_its_folder_and_names_the_classes(tmp_path):
    root = make_image_folder(tmp_path / "imagenette2-320", per_class=1)
    splits = load(compose("data=imagenette", f"data.root={root}", "trainer.batch_size=5"))
    assert splits.class_names == ["tench", "English springer", "cassette player", "chain saw", "church",
                                  "French horn", "garbage truck", "gas pump", "golf ball", "parachute"]
    assert (splits.train_examples, splits.val_examples) == (10, 10)


@pytest.fixture
def unreachable(monkeypatch):
    """Imagenette's 320 px archive at a closed port: what no network looks like, minus the wait."""
    url = "http://127.0.0.1:9/imagenette2-320.tgz"
    monkeypatch.setitem(imagenette.ARCHIVES, "320", dataclasses.replace(imagenette.ARCHIVES["320"], url=url))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return url


@pytest.mark.parametrize("root", ["absent", "empty", "default"])
def test_imagenette_without_network_fails_in_seconds_saying_what_to_do(tmp_path, monkeypatch, unreachable, root):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parent = tmp_path / "cache" / "classic-cnns" if root == "default" else tmp_path
    folder = parent / "imagenette2-320"
    if root == "empty":
        folder.mkdir()
    started = time.monotonic()
    with pytest.raises(UserError) as raised:
        load(compose("data=imagenette", *([] if root == "default" else [f"data.root={folder}"])))
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download {unreachable} (")
    assert message.endswith("): download it by hand, extract it and pass data.root=/path/to/imagenette2-320 "
                            "(the folder holding train/ and val/)")
    assert [path.name for path in folder.parent.iterdir()] == (["imagenette2-320"] if root == "empty" else [])


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as server:  # listens, never accepts or answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}/imagenette2-320.tgz"
        monkeypatch.setattr(download, "TIMEOUT_S", 0.5)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        archive = dataclasses.replace(imagenette.ARCHIVES["320"], url=url)
        started = time.monotonic()
        with pytest.raises(UserError, match=r"^cannot download .*timed out"):
            download.fetch(archive, tmp_path / "imagenette2-320")
        assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


def tgz(tmp_path, members: dict[str, bytes]):
    """A .tgz holding `members` (name -> bytes) and the Archive that describes it exactly."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return described(tmp_path / "archive.tgz", buffer.getvalue())


def described(path, data: bytes):
    path.write_bytes(data)
    return download.Archive(path.as_uri(), len(data), hashlib.md5(data[: download.HEAD_BYTES]).hexdigest(),
                            hashlib.md5(data).hexdigest(), "imagenette2-320")


def imagenette_members(tmp_path) -> dict[str, bytes]:
    tree = make_image_folder(tmp_path / "source" / "imagenette2-320", per_class=1, formats=("jpeg",))
    return {str(path.relative_to(tree.parent)): path.read_bytes() for path in tree.rglob("*") if path.is_file()}


def test_a_verified_archive_is_extracted_into_place(tmp_path, monkeypatch):
    archive = tgz(tmp_path, imagenette_members(tmp_path))
    monkeypatch.setitem(imagenette.ARCHIVES, "320", archive)
    data = tmp_path / "data"
    splits = load(compose("data=imagenette", f"data.root={data / 'imagenette2-320'}", "trainer.batch_size=5"))
    assert (splits.train_examples, splits.val_examples, splits.class_names[0]) == (10, 10, "tench")
    assert [path.name for path in data.iterdir()] == ["imagenette2-320"]  # no staging folder left


@pytest.mark.parametrize("damage, message", [
    ("checksum", r"^file://.* does not match its checksum \(got \d+ bytes, md5 [0-9a-f]{32}; "
                 r"expected \d+ bytes, md5 0{32}\): download it by hand"),
    ("truncated", r"^cannot extract file://.*: download it by hand"),
    ("layout", r"^file://.* holds no imagenette2-320/train and imagenette2-320/val: download it by hand"),
])
def test_a_bad_archive_leaves_nothing_that_looks_like_a_dataset(tmp_path, damage, message):
    members = imagenette_members(tmp_path)
    if damage == "layout":
        members = {name.replace("/train/", "/training/"): data for name, data in members.items()}
    archive = tgz(tmp_path, members)
    if damage == "checksum":
        archive = dataclasses.replace(archive, md5="0" * 32)
    if damage == "truncated":  # its checksum is right: the archive itself is broken
        whole = (tmp_path / "archive.tgz").read_bytes()
        archive = described(tmp_path / "archive.tgz", whole[: len(whole) // 2])
    data = tmp_path / "data"
    with pytest.raises(UserError, match=message) as raised:
        download.fetch(archive, data / "imagenette2-320")
    assert "\n" not in str(raised.value)
    assert list(data.iterdir()) == []


# --- digits and synthetic ------------------------------------------------------------------------


def test_digits_split_is_fixed_and_stratified():
    (train_images, train_labels), (val_images, val_labels) = digits.split(0.2)
    (_, again_train), (again_images, again_labels) = digits.split(0.2)
    np.testing.assert_array_equal(val_images, again_images)
    np.testing.assert_array_equal(val_labels, again_labels)
    np.testing.assert_array_equal(train_labels, again_train)
    assert (len(train_labels), len(val_labels)) == (1437, 360)
    everyone = np.bincount(np.concatenate([train_labels, val_labels]))
    assert np.all(np.abs(np.bincount(val_labels) - 0.2 * everyone) <= 1)


def test_digits_are_the_scanned_counts_over_16():
    # An 8x8x1 model and no resizing: the validation batch is the split's images themselves.
    cfg = compose("model.input_shape=[8,8,1]", "eval.resize_ratio=1.0", "trainer.batch_size=400")
    [(images, labels)] = batches(load(cfg).val)
    _, (val_images, val_labels) = digits.split(0.2)
    np.testing.assert_array_equal(labels, val_labels)
    np.testing.assert_array_equal(images, val_images)
    counts = images / 255 * 16
    np.testing.assert_allclose(counts, np.round(counts), atol=16 / 255 / 2)  # 17 levels in 8 bits


def test_digits_fit_lenet_with_shifts_but_no_mirror():
    cfg = compose()
    assert (cfg.data.name, cfg.augment.name, cfg.augment.flip) == ("digits", "crop", False)
    assert list(cfg.model.input_shape) == [32, 32, 1]
    splits = load(cfg)
    assert splits.class_names == [str(digit) for digit in range(10)]
    assert (splits.train_examples, splits.val_examples) == (1437, 360)
    assert splits.train.element_spec[0].shape.as_list() == [64, 32, 32, 1]
    images, _ = next(iter(splits.val))
    assert images.shape == (64, 32, 32, 1)
    normalised = splits.normalise(images).numpy()
    assert -1 <= normalised.min() < normalised.max() <= 1  # mean 0.5, std 0.5


def test_digits_fit_a_colour_model():
    images, _ = next(iter(load(compose("model.input_shape=[64,64,3]")).train))
    assert images.shape == (64, 64, 64, 3)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_synthetic_images_are_fixed_by_the_seed():
    image = lambda index, split=0, seed=0: synthetic.image(tf.constant(index, tf.int64), split, (16, 16, 3), 4, seed)
    np.testing.assert_array_equal(image(5), image(5))
    for other in (image(6), image(5, split=1), image(5, seed=1)):
        assert not np.allclose(image(5), other)


def test_synthetic_images_are_learnable():
    splits = load(compose("data=synthetic", "model.input_shape=[16,16,3]", "data.num_classes=4",
                          "data.train_size=64", "data.val_size=32", "trainer.batch_size=16"))
    assert (splits.train_examples, splits.val_examples, len(splits.class_names)) == (64, 32, 4)
    assert splits.train.element_spec[0].shape.as_list() == [16, 16, 16, 3]
    # The nearest training class mean (of colours) already names most validation images.
    colours = lambda dataset: [(images.mean(axis=(1, 2)), labels) for images, labels in batches(dataset)]
    x, y = map(np.concatenate, zip(*colours(splits.train)))
    means = np.stack([x[y == label].mean(0) for label in range(4)])
    val_x, val_y = map(np.concatenate, zip(*colours(splits.val)))
    predicted = np.argmin(np.linalg.norm(val_x[:, None] - means[None], axis=-1), axis=1)
    assert (predicted == val_y).mean() > 0.9


def test_workers_read_disjoint_shares_of_the_files(tree):
    shards = [load(folder(tree, "trainer.batch_size=2"), source.Shard(count=2, index=index, batch_size=2))
              for index in (0, 1)]
    assert [splits.train_examples for splits in shards] == [8, 7]  # 15 files
    assert all(splits.steps_per_epoch == 3 for splits in shards)  # the smaller share decides: 7 // 2
    files = [set(path.decode() for path, _ in source_keys(tree, index)) for index in (0, 1)]
    assert not files[0] & files[1] and len(files[0] | files[1]) == 15


def source_keys(tree, index):
    from runner.data import folders

    examples = folders.from_config(folder(tree)).train
    return source.sharded(examples, source.Shard(count=2, index=index, batch_size=2)).keys.as_numpy_iterator()


def test_a_num_classes_other_than_the_datas_is_one_line():
    with pytest.raises(UserError, match=r"^data.num_classes=5 but data=digits has 10 classes; "
                                        r"pass data.num_classes=10$"):
        load(compose("data.num_classes=5"))
