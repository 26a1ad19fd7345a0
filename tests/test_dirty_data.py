"""Folders as users have them: odd but readable images are used, unreadable files skipped once, and a
class left with nothing is an error naming its folder."""

import numpy as np
import pytest

from helpers import compose
from image_folders import CLASS_COLOURS, dirty_files, make_image_folder, png_claiming
from runner.data import unreadable
from runner.data.splits import load
from runner.mistakes.errors import UserError

CLASSES = ("n01440764", "n02102040")
PER_CLASS = 4
MAX_PIXELS = 100_000_000  # data.max_pixels's default


@pytest.fixture(scope="module")
def dirty_tree(tmp_path_factory):
    """Clean images of 2 classes, plus every dirty kind in train/<first class> and val/<first class>."""
    root = make_image_folder(tmp_path_factory.mktemp("dirty") / "photos", classes=CLASSES, per_class=PER_CLASS)
    readable, broken = dirty_files(CLASS_COLOURS[0])
    for split in ("train", "val"):
        for name, data in {**readable, **broken}.items():
            (root / split / CLASSES[0] / name).write_bytes(data)
    return root


def folder(root, *overrides):
    return compose("data=folder", f"data.root={root}", f"data.num_classes={len(CLASSES)}",
                   "model.input_shape=[32,32,3]", "trainer.batch_size=2", *overrides)


def test_every_unreadable_file_is_found_with_the_decoders_reason(dirty_tree):
    readable, broken = dirty_files()
    paths = sorted(str(path) for path in dirty_tree.rglob("*") if path.is_file())
    found = unreadable.find(paths, MAX_PIXELS)
    assert sorted(found) == sorted(str(dirty_tree / split / CLASSES[0] / name)
                                   for split in ("train", "val") for name in broken)
    reasons = {path.rsplit("/", 1)[-1]: why for path, why in found.items()}
    assert reasons["empty.JPEG"] == "empty file"
    assert "Unknown image file format" in reasons["notes.JPEG"]
    assert all("\n" not in why for why in found.values())


def test_a_long_file_check_shows_its_progress(tmp_path, monkeypatch, capsys):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=1)
    paths = sorted(str(path) for path in root.rglob("*") if path.is_file())
    monkeypatch.setattr(unreadable, "PROGRESS_FROM", len(paths))
    assert unreadable.find(paths, MAX_PIXELS) == {}
    said = capsys.readouterr().out
    assert f"checking that {len(paths)} image files decode" in said and f"{len(paths)}/{len(paths)}" in said
    monkeypatch.setattr(unreadable, "PROGRESS_FROM", len(paths) + 1)
    unreadable.find(paths[:-1], MAX_PIXELS)  # not the cached verdict: other files
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("channels", [3, 1])
def test_readable_kinds_are_used_and_unreadable_ones_skipped(dirty_tree, channels):
    readable, broken = dirty_files()
    splits = load(folder(dirty_tree, f"model.input_shape=[32,32,{channels}]", "trainer.batch_size=1"))
    per_split = len(CLASSES) * PER_CLASS + len(readable)
    assert (splits.train_examples, splits.val_examples) == (per_split, per_split)
    assert len(splits.skipped_files) == 2 * len(broken)
    # A whole epoch of each split reads every remaining file: none stops it.
    train_images = sum(len(labels) for _, labels in splits.train)
    val = [(images.numpy(), labels.numpy()) for images, labels in splits.val]
    assert train_images == per_split and sum(len(labels) for _, labels in val) == per_split
    assert all(images.shape[1:] == (32, 32, channels) for images, _ in val)


def test_cmyk_and_palette_images_keep_their_colours(tmp_path):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=1, formats=("png",))
    readable, _ = dirty_files(CLASS_COLOURS[0])
    for name in ("cmyk.JPEG", "palette.gif", "rgba.png"):
        (root / "val" / CLASSES[0] / name).write_bytes(readable[name])
    cfg = folder(root, "trainer.batch_size=1", "eval.resize_ratio=1")
    val = [images.numpy()[0] for images, labels in load(cfg).val if labels.numpy()[0] == 0]
    assert len(val) == 4
    for image in val:  # the class's colour (noise +-8 grey levels), whatever the file's colour space
        np.testing.assert_allclose(image.mean((0, 1)), CLASS_COLOURS[0], atol=8)


def test_the_verdict_is_kept_for_unchanged_files(dirty_tree, monkeypatch):
    paths = sorted(str(path) for path in (dirty_tree / "train").rglob("*") if path.is_file())
    first = unreadable.find(paths, MAX_PIXELS)
    monkeypatch.setattr(unreadable, "_decode_all", lambda paths, largest: pytest.fail("decoded again"))
    assert unreadable.find(paths, MAX_PIXELS) == first
    # A changed file is a different listing: decoded again.
    changed = paths[:-1]
    with pytest.raises(pytest.fail.Exception, match="decoded again"):
        unreadable.find(changed, MAX_PIXELS)


def test_check_files_false_reads_the_listing_as_it_is(dirty_tree):
    readable, broken = dirty_files()
    splits = load(folder(dirty_tree, "data.check_files=false"))
    assert splits.skipped_files == {}
    assert splits.train_examples == len(CLASSES) * PER_CLASS + len(readable) + len(broken)


def test_a_class_folder_with_no_readable_image_is_named(tmp_path):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    _, broken = dirty_files()
    for path in (root / "train" / CLASSES[1]).iterdir():
        path.unlink()
    for name, data in broken.items():
        (root / "train" / CLASSES[1] / name).write_bytes(data)
    with pytest.raises(UserError, match=rf"^data.root=.*: train/{CLASSES[1]} holds no readable image; "
                                        r"fix or remove its files$"):
        load(folder(root))


def test_an_empty_class_folder_is_named(tmp_path):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    for path in (root / "val" / CLASSES[0]).iterdir():
        path.unlink()
    (root / "val" / CLASSES[0] / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=rf"^data.root=.*: val/{CLASSES[0]} holds no images \(.*\); "
                                        r"add some or remove the folder$"):
        load(folder(root))


def test_a_split_with_no_classes_is_named(tmp_path):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    for path in sorted((root / "val").rglob("*"), reverse=True):  # val/ itself stays, empty
        path.unlink() if path.is_file() else path.rmdir()
    with pytest.raises(UserError, match=r"^data.root=.*: val/ holds no class folders; expected"):
        load(folder(root))


def test_links_that_loop_or_lead_nowhere_are_skipped_like_unreadable_files(tmp_path):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    images = root / "train" / CLASSES[0]
    (images / "self.JPEG").symlink_to("self.JPEG")
    (images / "ping.JPEG").symlink_to("pong.JPEG")
    (images / "pong.JPEG").symlink_to("ping.JPEG")
    (images / "gone.JPEG").symlink_to("deleted.JPEG")
    (images / "here").symlink_to(".")  # a link to its own folder and one to its parent: never walked
    (images / "up").symlink_to("..")
    (root / "train" / "loop").symlink_to("loop")  # a class folder that is a loop is no class
    kept = min(path for path in images.iterdir() if not path.is_symlink())
    (images / "alias.JPEG").symlink_to(kept.name)  # a link that can be followed is an image like any
    splits = load(folder(root))
    reasons = {path.rsplit("/", 1)[-1]: why for path, why in splits.skipped_files.items()}
    assert reasons == {"self.JPEG": "symbolic link loop", "ping.JPEG": "symbolic link loop",
                       "pong.JPEG": "symbolic link loop",
                       "gone.JPEG": "symbolic link to nothing (No such file or directory)"}
    assert splits.train_examples == len(CLASSES) * 2 + 1


def test_a_file_name_with_a_newline_stays_on_one_line_in_the_warning_and_the_list(tmp_path, caplog):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2)
    _, broken = dirty_files()
    (root / "train" / CLASSES[0] / "two\nlines\t.JPEG").write_bytes(broken["notes.JPEG"])
    splits = load(folder(root))
    [warning] = [record.getMessage() for record in caplog.records if "skipping" in record.getMessage()]
    assert "\n" not in warning and "two\\nlines\\t.JPEG" in warning
    header, row, end = unreadable.as_tsv(splits.skipped_files).split("\n")
    assert header == "file\treason" and end == ""
    name, reason = row.split("\t")
    assert name.endswith(f"{CLASSES[0]}/two\\nlines\\t.JPEG") and "Unknown image file format" in reason


def test_skip_reasons_are_the_decoders_words_without_tensorflows_wrapping(dirty_tree):
    paths = sorted(str(path) for path in dirty_tree.rglob("*") if path.is_file())
    reasons = unreadable.find(paths, MAX_PIXELS).values()
    assert reasons and not any("function_node" in why or "{{" in why or "[Op:" in why for why in reasons)


def test_an_image_claiming_more_than_max_pixels_is_skipped_unread(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "photos", classes=CLASSES, per_class=2, size=(16, 16))
    huge = root / "train" / CLASSES[0] / "huge.png"
    huge.write_bytes(png_claiming(20_000, 20_000))  # 1.2 GB of RGB once decoded, from a few hundred bytes
    decoded = []
    real_decode_all = unreadable._decode_all
    monkeypatch.setattr(unreadable, "_decode_all", lambda paths, largest: decoded.extend(paths)
                        or real_decode_all(paths, largest))
    for check_files in ("true", "false"):
        splits = load(folder(root, f"data.check_files={check_files}"))
        assert splits.skipped_files == {str(huge): "400,000,000 pixels, more than data.max_pixels=100,000,000"}
        assert splits.train_examples == len(CLASSES) * 2
    assert decoded and str(huge) not in decoded
    paths = [str(path) for path in root.rglob("*") if path.is_file()]
    assert len(unreadable.find(paths, 256, decode=False)) == 1  # 16 x 16 pixels each: at the limit, kept
    assert len(unreadable.find(paths, 255, decode=False)) == len(paths)


def test_the_file_check_decodes_no_more_images_at_once_than_memory_holds(monkeypatch):
    monkeypatch.setattr(unreadable.psutil, "virtual_memory", lambda: type("Memory", (), {"available": 2**30}))
    monkeypatch.setattr(unreadable.os, "cpu_count", lambda: 64)
    assert unreadable._parallel_decodes(100) == 64
    assert unreadable._parallel_decodes(10_000_000) == 6  # half of 1 GiB over 80 MB per decode
    assert unreadable._parallel_decodes(100_000_000) == 1
