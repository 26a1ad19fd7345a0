"""Image folder trees in ImageNet's layout: root/train/<class>/<image> and root/val/<class>/<image>.

Files that cannot be decoded (truncated, empty, not images) are skipped with a warning, and so are
symbolic links that cannot be followed (a loop, a missing target); a class folder left without an
image is an error. Links are followed once: the tree is read two levels deep and never walked, so a
link to a parent folder cannot loop.
"""

import logging
import os
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from runner.data import source, unreadable
from runner.mistakes.errors import UserError

log = logging.getLogger(__name__)

LAYOUT = "<root>/train/<class>/<image> and <root>/val/<class>/<image>"
# What TensorFlow decodes; anything else in a class folder (.DS_Store, notes) is not an example.
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".gif"})


def from_config(cfg, training: bool = True) -> source.Source:
    """data=folder and data=imagenet: the tree at data.root."""
    if cfg.data.root is None:
        raise UserError(f"data.root is not set; pass data.root=/path/to/dataset, the folder holding {LAYOUT}")
    return tree(Path(cfg.data.root).expanduser(), cfg, training=training)


def tree(root: Path, cfg, class_name=str, training: bool = True) -> source.Source:
    """Class folders of root/train in sorted order are labels 0, 1, ...; `class_name(folder)` names them.
    Without `training` the training images are neither listed nor checked, and a tree of val/ alone
    (how ImageNet's validation set is often kept) takes its classes from val/'s folders."""
    if not root.is_dir():
        raise UserError(f"data.root={root} is not a folder; expected {LAYOUT}")
    classes = _class_folders(root, "train" if training or (root / "train").is_dir() else "val")
    _check_num_classes(cfg.data, len(classes), root)
    unknown = sorted(set(_class_folders(root, "val")) - set(classes))
    if unknown:
        raise UserError(f"data.root={root}: val/{unknown[0]} has no train/{unknown[0]}; "
                        "val classes must be train classes")
    channels = cfg.model.input_shape[2]
    if channels not in (1, 3):
        raise UserError(f"model.input_shape: image files give 1 or 3 channels, not {channels}")
    train = _images(root, "train", classes) if training else {}
    val = _images(root, "val", classes)
    paths = [*train, *val]
    # Without the file check, links that cannot be followed and oversized images are still skipped.
    skipped = unreadable.find(paths, cfg.data.max_pixels, decode=cfg.data.check_files)
    _warn(skipped, root)
    return source.Source(
        train=source.files(*_labelled(train, skipped, root), channels) if training else None,
        val=source.files(*_labelled(val, skipped, root), channels),
        class_names=[class_name(folder) for folder in classes],
        skipped=skipped,
        class_folders=classes,
    )


def _class_folders(root: Path, split: str) -> list[str]:
    folder = root / split
    if not folder.is_dir():
        raise UserError(f"data.root={root} has no {split}/ folder; expected {LAYOUT}")
    with os.scandir(folder) as entries:
        classes = sorted(entry.name for entry in entries if not entry.name.startswith(".") and _is_folder(entry))
    if not classes:
        raise UserError(f"data.root={root}: {split}/ holds no class folders; expected {LAYOUT}")
    return classes


def _check_num_classes(data, found: int, root: Path) -> None:
    if OmegaConf.is_missing(data, "num_classes"):
        raise UserError(f"data.num_classes is not set; {root}/train holds {found} class folders: "
                        f"pass data.num_classes={found}")
    if data.num_classes != found:
        raise UserError(f"data.num_classes={data.num_classes} but {root}/train holds {found} class folders; "
                        f"pass data.num_classes={found}")


def _images(root: Path, split: str, classes: list[str]) -> dict[str, int]:
    """{path: label}, sorted by class, then name; listed once: no per-epoch globbing."""
    images = {}
    for label, name in enumerate(classes):
        folder = root / split / name
        if not folder.is_dir():  # a class may lack validation images
            continue
        with os.scandir(folder) as entries:
            found = sorted(entry.path for entry in entries
                           if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and _is_file(entry))
        if not found:
            raise UserError(f"data.root={root}: {split}/{name} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))}); add some or remove the folder")
        images.update(dict.fromkeys(found, label))
    return images


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a link to one; a link that cannot be followed is not one."""
    try:
        return entry.is_dir()
    except OSError:  # ELOOP: a link to itself, or two links to each other
        return False


def _is_file(entry: os.DirEntry) -> bool:
    """A file, a link to one, or a link that cannot be followed (then skipped with its reason)."""
    try:
        return entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
    except OSError:  # ELOOP
        return True


def _labelled(images: dict[str, int], skipped: dict[str, str], root: Path) -> tuple[list[str], np.ndarray]:
    """Paths and labels of the decodable images; every class folder must keep at least one."""
    kept = {path: label for path, label in images.items() if path not in skipped}
    emptied = sorted({Path(path).parent for path in images} - {Path(path).parent for path in kept})
    if emptied:
        raise UserError(f"data.root={root}: {emptied[0].relative_to(root)} holds no readable image; "
                        "fix or remove its files")
    return list(kept), np.array(list(kept.values()), np.int32)


def _warn(skipped: dict[str, str], root: Path) -> None:
    if skipped:
        listed = "; ".join(f"{unreadable.escaped(str(Path(path).relative_to(root)))} ({why})"
                           for path, why in sorted(skipped.items()))
        log.warning("skipping %d unreadable image files under %s: %s", len(skipped), root, listed)
