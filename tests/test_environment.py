"""Environment variables set for a while (runner/environment.py): each name as it was afterwards, set
or unset, however the block ends."""

import os

import pytest

from runner import environment
from runner.environment import environment_set

SET, UNSET, ADDED = "RUNNER_TEST_SET", "RUNNER_TEST_UNSET", "RUNNER_TEST_ADDED"


@pytest.fixture
def variables(monkeypatch):
    monkeypatch.setenv(SET, "before")
    monkeypatch.delenv(UNSET, raising=False)
    monkeypatch.delenv(ADDED, raising=False)


def test_a_block_sees_its_values_and_the_names_are_as_before_after_it(variables):
    with environment_set(**{SET: None, UNSET: "during"}):
        assert SET not in os.environ and os.environ[UNSET] == "during"
        os.environ[SET] = "changed in the block"
    assert os.environ[SET] == "before" and UNSET not in os.environ


def test_a_block_that_raises_puts_the_names_back_too(variables):
    with pytest.raises(RuntimeError), environment_set(**{SET: "during", UNSET: "during"}):
        raise RuntimeError("stopped")
    assert os.environ[SET] == "before" and UNSET not in os.environ


def test_a_snapshot_put_back_undoes_what_was_set_and_unset_since(variables):
    before = environment.snapshot(SET, UNSET)
    assert before == {SET: "before", UNSET: None}
    environment.put({SET: None, UNSET: "later", ADDED: "later"})
    assert SET not in os.environ and os.environ[UNSET] == os.environ[ADDED] == "later"
    environment.put(before)
    assert os.environ[SET] == "before" and UNSET not in os.environ
    assert os.environ[ADDED] == "later"  # a name the snapshot did not take is left as it is
