"""The bench's peer stage (runner/bench/peer.py, torch_step.py): PyTorch's step for the same network,
in a child process, on the step stage's batches. Without torch, or for a network torchvision lacks or
builds differently, it says why; with torch (not installed in CI), it trains. Never timed."""

import importlib.util

import keras
import pytest

from helpers import compose
from runner.bench import peer
from runner.bench.stages import NotApplicable, with_values
from runner.session.parts import prepare

pytestmark = pytest.mark.e2e  # every test here: the bench's PyTorch peer stage, training

HAS_TORCH = bool(peer.software())
SMALL = ("data=synthetic", "data.train_size=8", "data.val_size=4", "trainer.batch_size=4", "bench.warmup_steps=1",
         "bench.step_batches=1", "bench.memory_batches=1")


@pytest.fixture
def resnet18():
    cfg = compose("model=resnet18", "model.input_shape=[32,32,3]", *SMALL, app="bench")
    yield cfg, prepare(with_values(cfg, {"data.cache": False}))
    keras.backend.clear_session()


def test_without_torch_the_peer_says_how_to_add_it(resnet18, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "torch" else real(name, *rest))
    assert peer.software() == {}
    with pytest.raises(NotApplicable, match=r"PyTorch is not installed: pip install -e '\.\[peer\]'"):
        peer.peer_step(*resnet18)


def test_a_network_torchvision_lacks_has_no_peer():
    cfg = compose("model=lenet", "data=digits", *SMALL[3:], app="bench")
    with pytest.raises(NotApplicable, match="model=lenet has no torchvision counterpart"):
        peer.peer_step(cfg, None)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (the optional peer extra)")
def test_the_peer_trains_the_same_network_on_the_step_batches(resnet18):
    images, seconds = peer.peer_step(*resnet18)
    assert images == 4 and seconds > 0


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (the optional peer extra)")
def test_a_peer_of_another_size_is_refused(resnet18, monkeypatch):
    settings = peer._settings
    monkeypatch.setattr(peer, "_settings", lambda cfg, session: settings(cfg, session) | {"trainable_parameters": 1})
    with pytest.raises(NotApplicable, match=r"torchvision's resnet18 for 10 classes has 11,\d{3},\d{3} trainable "
                                            r"parameters and ours 1: not the same network"):
        peer.peer_step(*resnet18)
