"""A third party's provider, added with ``register()`` and configured through ``VOXGATE_PROVIDERS``, gets its key and
base URL and serves real speech; the built-in entries load through the registry's lazy factories."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engines.fake_vendors import FakeVendor
from tests.engines.harness import EN, OPENAI, Cloud, Speech, cloud_fixture
from tests.speech import wer
from voxgate.config import Settings
from voxgate.engines.openai.rest import OpenAIEngine
from voxgate.engines.registry import PROVIDERS, Provider, load_engine, register
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import ModelSpec, resolve
from voxgate.service import Service

cloud = cloud_fixture(OPENAI, "whisper/base")  # the fake vendor the third party's engine talks to


class AcmeEngine(OpenAIEngine):
    """A third party's engine: a vendor speaking OpenAI's API, under a provider name of its own."""

    provider = "acme"


def load_acme(spec: ModelSpec, settings: Settings) -> AcmeEngine:
    return AcmeEngine(spec, settings)


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ``acme`` provider, registered for one test; no ``acme`` variable of the developer's own."""
    for name in ("VOXGATE_PROVIDERS", "VOXGATE_PROVIDERS__ACME__API_KEY", "VOXGATE_PROVIDERS__ACME__BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    register("acme", Provider(f"{__name__}:load_acme", models=("whisper-1",), remote=True))
    yield
    PROVIDERS.pop("acme", None)


def test_a_registered_provider_is_configured_through_the_providers_map(
    acme: None, cloud: Cloud[FakeVendor], settings: Settings, jfk_speech: Speech, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = resolve("acme/whisper-1", settings.default_model)
    assert spec.remote
    with pytest.raises(ModelUnavailable, match="VOXGATE_PROVIDERS__ACME__API_KEY"):
        load_engine(spec, settings)
    assert not PROVIDERS["acme"].configured(settings, spec)

    monkeypatch.setenv("VOXGATE_PROVIDERS__ACME__API_KEY", OPENAI.key)
    monkeypatch.setenv("VOXGATE_PROVIDERS__ACME__BASE_URL", cloud.url + OPENAI.path)
    configured = Settings(home=settings.home, preload=[], cpu_threads=settings.cpu_threads)
    assert PROVIDERS["acme"].configured(configured, spec)
    engine = load_engine(spec, configured)
    try:
        assert isinstance(engine, AcmeEngine)
        t = engine.transcribe(jfk_speech.audio, EN)
    finally:
        engine.close()
    assert wer(jfk_speech.reference, t.text) <= 0.2, t.text
    assert (t.model_id, t.language) == ("acme/whisper-1", "en")
    (request,) = cloud.fake.received
    assert request.headers["authorization"] == f"Bearer {OPENAI.key}"
    assert request.form["model"] == ["whisper-1"]

    service = Service(configured)
    try:
        listed = {m.id: m for m in service.list_models()}
    finally:
        service.close()
    assert listed["acme/whisper-1"].remote
    assert listed["acme/whisper-1"].configured


def test_a_registered_provider_without_a_base_url_says_which_variable_sets_it(
    acme: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXGATE_PROVIDERS__ACME__API_KEY", "acme-key")
    configured = Settings(home=settings.home, preload=[], cpu_threads=settings.cpu_threads)
    with pytest.raises(ModelUnavailable, match="VOXGATE_PROVIDERS__ACME__BASE_URL"):
        load_engine(resolve("acme/whisper-1", settings.default_model), configured)
