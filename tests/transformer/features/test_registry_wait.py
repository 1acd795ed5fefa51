"""The transformer's start-up wait for the Feast registry, against a scripted store."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from transformer.features import FeatureConfigError, wait_for_feature_service

pytestmark = pytest.mark.unit


@dataclass
class Service:
    name: str


class ScriptedStore:
    """Answers list_feature_services from a script: a list of names or an exception."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = self.refreshes = 0

    def list_feature_services(self):
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        return [Service(n) for n in step]

    def refresh_registry(self):
        self.refreshes += 1


def test_present_service_returns_without_waiting():
    store = ScriptedStore(["click_model_v1"])
    wait_for_feature_service(store, "click_model_v1", 60, sleep=lambda s: pytest.fail("slept"))
    assert (store.calls, store.refreshes) == (1, 0)


def test_waits_through_an_unreachable_then_empty_registry():
    store = ScriptedStore(ConnectionError("registry:6570 refused"), [], [], ["click_model_v1"])
    slept = []
    wait_for_feature_service(store, "click_model_v1", 60, poll_s=0.5, sleep=slept.append)
    assert slept == [0.5, 0.5, 0.5]
    assert store.refreshes == 3  # a cached registry is re-read before every retry


def test_other_services_only_is_a_configuration_error_at_once():
    store = ScriptedStore(["fraud_v2", "click_model_v0"])
    with pytest.raises(FeatureConfigError, match=r"\['click_model_v0', 'fraud_v2'\]"):
        wait_for_feature_service(store, "click_model_v1", 60, sleep=lambda s: pytest.fail("slept"))


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        (ConnectionError("registry:6570 refused"), "cannot be read (ConnectionError: registry"),
        ([], "has no feature service yet"),
    ],
)
def test_gives_up_after_the_wait_naming_the_last_problem(step, needle):
    store = ScriptedStore(step)
    with pytest.raises(FeatureConfigError, match=r"gave up after 0s") as e:
        wait_for_feature_service(store, "click_model_v1", 0, sleep=lambda s: None)
    assert needle in str(e.value)
