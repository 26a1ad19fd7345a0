"""`python -m runner.bench` end to end, in subprocesses: on a tiny Imagenette-shaped folder of real
JPEGs, on digits (where the file stages do not apply) with an MLflow record, and on user mistakes.
Figures are checked for being there and positive, never against the targets: timing is the
bench's job, not the tests'."""

import json
import pathlib

import hydra
import mlflow
import pytest

from apps import SHELL_UNSET, Result, run_app
from image_folders import make_image_folder
from runner.bench import peer
from runner.bench.figures import FIGURES, RATIOS, STAGES, Stage, median_round

REPO = pathlib.Path(__file__).resolve().parents[1]
HAS_TORCH = bool(peer.software())
KEYS = {*FIGURES.values(), "ratios", "peak_rss_mib", "machine"}
SMALL = ("trainer.batch_size=8", "bench.warmup_batches=1", "bench.batches=4", "bench.rounds=2", "bench.warmup_steps=1",
         "bench.step_batches=2", "bench.memory_batches=1", "bench.fit_steps=2")


def bench(tmp_path: pathlib.Path, *overrides: str) -> tuple[Result, pathlib.Path]:
    """The command in tmp_path (its outputs/ there), without the caller's MLFLOW_TRACKING_URI."""
    output = tmp_path / "bench.json"
    done = run_app("runner.bench", f"bench.output={output}", *overrides, cwd=tmp_path,
                   env=SHELL_UNSET)
    return done, output


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_a_figure_is_its_median_round_with_the_highest_peak():
    rounds = [Stage("decode", 300, 1.0, start_rss_mib=10, peak_rss_mib=50),
              Stage("decode", 100, 1.0, start_rss_mib=12, peak_rss_mib=70),
              Stage("decode", 200, 1.0, start_rss_mib=11, peak_rss_mib=60)]
    median = median_round(rounds)
    assert (median.images_per_second, median.start_rss_mib, median.peak_rss_mib) == (200, 10, 70)
    assert median_round(rounds[:2]).images_per_second == 100  # of two, the slower: no round is flattered
    assert median_round([*rounds, Stage("decode", reason="no files")]).reason == "no files"


@pytest.mark.e2e
def test_bench_on_an_image_folder_gives_every_figure_ratio_and_peak(tmp_path):
    root = make_image_folder(tmp_path / "imagenette", per_class=8, size=(160, 200), formats=("jpeg",))
    done, output = bench(tmp_path, "model=resnet18", "model.input_shape=[64,64,3]", "data=imagenette",
                         f"data.root={root}", "trainer.jit_compile=false", *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert set(result) == KEYS
    measured = [stage for stage in STAGES if stage != "peer" or HAS_TORCH]  # torch: an optional extra
    assert all(positive(result[FIGURES[stage]]) for stage in measured), result
    assert set(result["ratios"]) == set(RATIOS), result
    assert all(positive(value) for name, value in result["ratios"].items() if name != "step_over_peer" or HAS_TORCH)
    assert set(result["peak_rss_mib"]) == set(STAGES)
    assert all(positive(result["peak_rss_mib"][stage]) for stage in measured), result["peak_rss_mib"]
    assert {"cpu", "cores", "device", "tensorflow"} <= set(result["machine"])
    for name in (*FIGURES.values(), "pipeline / decode", "fit / step", "step / peer", "peak RSS"):
        assert name in done.stdout
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # the fit stage's store is a throwaway one


@pytest.mark.e2e
def test_bench_on_digits_leaves_the_file_stages_null_and_records_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    done, output = bench(tmp_path, "model=lenet", "data=digits", "bench.log_mlflow=true", f"tracking.uri={uri}",
                         "trainer.batch_size=32", *SMALL[1:])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert set(result) == KEYS
    assert result["decode_images_per_second"] is None and result["keras_baseline_images_per_second"] is None
    for stage in ("pipeline", "cached", "step", "fit"):
        assert positive(result[FIGURES[stage]]), stage
    assert result["ratios"]["fit_over_step"] > 0 and result["ratios"]["pipeline_over_decode"] is None
    assert "data=digits has no image files" in done.stdout

    client = mlflow.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    assert run.data.tags["runner.role"] == "bench" and run.info.status == "FINISHED"
    assert run.data.metrics["step_images_per_second"] == pytest.approx(result["step_images_per_second"])
    assert "decode_images_per_second" not in run.data.metrics and "bench.decode.not_measured" in run.data.tags
    logged = pathlib.Path(client.download_artifacts(run.info.run_id, "bench.json", str(tmp_path / "artifact")))
    assert json.loads(logged.read_text()) == result


@pytest.mark.parametrize("overrides, message", [
    (("data=imagenet", "model=resnet18"), "error: data.root is not set"),
    (("bench.stages=[decode,warp]",), "error: bench.stages: unknown stage 'warp'"),
])
def test_a_mistake_is_one_line_not_a_traceback(tmp_path, overrides, message):
    done, output = bench(tmp_path, *overrides)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(message), done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not output.exists()


def test_bench_config_is_the_runners_with_its_own_schema_and_hydra_folders():
    """conf/bench.yaml is conf/config.yaml plus the bench's node, with Hydra's plain settings."""
    with hydra.initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = hydra.compose("bench", overrides=["model=resnet18", "data=imagenette", "bench.fit_steps=7"],
                            return_hydra_config=True)
    assert cfg.bench.fit_steps == 7 and cfg.augment.name == "crop_flip" and cfg.trainer.batch_size == 64
    assert cfg.hydra.run.dir.startswith("outputs/bench/") and not cfg.hydra.callbacks
