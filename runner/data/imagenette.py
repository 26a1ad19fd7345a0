"""fast.ai's Imagenette (https://github.com/fastai/imagenette): 10 easy classes of ImageNet.

Read from data.root (default: a cache folder), downloaded there first when it is absent or empty.
"""

from pathlib import Path

from runner.data import folders, source
from runner.data.cache_home import cache_home
from runner.data.download import Archive, fetch
from runner.mistakes.errors import UserError

_BUCKET = "https://s3.amazonaws.com/fast-ai-imageclas"

# Sizes and first-MiB md5s: fastai/fastai, fastai/data/checks.txt (commit 29be53d7; the same in
# fastai/data/download_checks.py). Whole-file md5s: pytorch/vision, torchvision/datasets/imagenette.py.
# data.variant is the archive's shorter side in pixels, or full.
ARCHIVES = {
    "full": Archive(f"{_BUCKET}/imagenette2.tgz", 1557161267,
                    "2c774ecb40005b35d7937d50f5d42336", "fe2fc210e6bb7c5664d602c3cd71e612", "imagenette2"),
    "320": Archive(f"{_BUCKET}/imagenette2-320.tgz", 341663724,
                   "1f1f74f133caff120e575856659b87a2", "3df6f0d01a2c9592104656642f5e78a3", "imagenette2-320"),
    "160": Archive(f"{_BUCKET}/imagenette2-160.tgz", 99003388,
                   "c475f8f7617a200ba35b9facc48443c3", "e793b78cc4c9e9a4ccc0c1155377a412", "imagenette2-160"),
}

# The ten ILSVRC-2012 synsets (WordNet ids) of Imagenette, by their ImageNet names.
CLASS_NAMES = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}


def from_config(cfg, training: bool = True) -> source.Source:
    archive = _archive(cfg.data.variant)
    root = Path(cfg.data.root).expanduser() if cfg.data.root else default_root(archive)
    if not (root.is_dir() and any(root.iterdir())):
        fetch(archive, root)
    return folders.tree(root, cfg, class_name=lambda wnid: CLASS_NAMES.get(wnid, wnid), training=training)


def default_root(archive: Archive) -> Path:
    return cache_home() / archive.folder


def _archive(variant) -> Archive:
    if str(variant) not in ARCHIVES:
        raise UserError(f"data.variant={variant} is not an Imagenette variant; valid: {', '.join(ARCHIVES)}")
    return ARCHIVES[str(variant)]
