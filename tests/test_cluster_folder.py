"""Multi-worker training of a residual net on an Imagenette-shaped folder of JPEGs and PNGs with every
key of the training recipes at once: each worker reads its own half of the files, through every
augmentation, and both end with the same weights."""

import numpy as np
import pytest

from image_folders import make_image_folder
from test_cluster import run_cluster
from test_resume import final_weights, runs

# Every key of the training recipes at once; the images are RGB, so the colour steps act on colour.
EVERY_RECIPE_KEY = ["augment=scale_jitter", "augment.scale_range=[256,320]", "augment.pca_lighting=0.1",
                    "augment.photometric=1.0", "augment.policy=randaugment", "augment.random_erasing=0.25",
                    "augment.mixup=0.2", "augment.cutmix=1.0", "eval.scales=[224,288]", "trainer.ema=0.99",
                    "trainer.grad_accumulation=2", "data.class_weights=balanced", "data.sampling=balanced"]


@pytest.mark.e2e
def test_two_workers_train_resnet18_on_an_image_folder_with_every_recipe_key_into_one_model(tmp_path):
    root = make_image_folder(tmp_path / "imagenette", per_class=4, size=(80, 96))
    result = run_cluster(tmp_path, "model=resnet18", "data=imagenette", f"data.root={root}",
                         "model.input_shape=[64,64,3]", "trainer.epochs=1", "trainer.batch_size=8",
                         *EVERY_RECIPE_KEY)
    assert result.returncode == 0, result.stdout[-3000:]
    client, [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.params["workers"] == "2"
    assert "eval_top1_multiscale" in run.data.metrics
    assert [metric.step for metric in client.get_metric_history(run.info.run_id, "val_top1")] == [0]
    for mine, theirs in zip(final_weights(tmp_path / "run" / "model.keras"),
                            final_weights(tmp_path / "run" / "worker1" / "model.keras")):
        np.testing.assert_array_equal(mine, theirs)
