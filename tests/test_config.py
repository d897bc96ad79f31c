"""Settings: cloud providers' keys and base URLs, from the flat variables of the built-in providers and from the
``providers`` map that any provider (one added with ``register()`` included) can be configured through."""

from __future__ import annotations

import json
import os

import pytest

from voxgate.config import Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with no provider variable of the developer's own."""
    for name in list(os.environ):
        if name.startswith("VOXGATE_") and ("_API_KEY" in name or "_BASE_URL" in name or "PROVIDERS" in name):
            monkeypatch.delenv(name)
    return monkeypatch


def test_built_in_providers_read_their_documented_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("VOXGATE_DEEPGRAM_API_KEY", "dg-key")
    env.setenv("VOXGATE_DEEPGRAM_BASE_URL", "https://gateway.example/deepgram/")
    config = Settings().provider("deepgram")
    assert (config.api_key, config.base_url) == ("dg-key", "https://gateway.example/deepgram")
    assert (config.key_variable, config.url_variable) == ("VOXGATE_DEEPGRAM_API_KEY", "VOXGATE_DEEPGRAM_BASE_URL")
    openai = Settings().provider("openai")
    assert (openai.api_key, openai.base_url) == (None, "https://api.openai.com/v1")


def test_any_provider_is_configured_through_the_providers_map(env: pytest.MonkeyPatch) -> None:
    env.setenv("VOXGATE_PROVIDERS", json.dumps({"acme": {"base_url": "https://api.acme.example/v1/"}}))
    env.setenv("VOXGATE_PROVIDERS__ACME__API_KEY", "acme-key")
    config = Settings().provider("acme")
    assert (config.api_key, config.base_url) == ("acme-key", "https://api.acme.example/v1")
    assert config.key_variable == "VOXGATE_PROVIDERS__ACME__API_KEY"
    assert config.url_variable == "VOXGATE_PROVIDERS__ACME__BASE_URL"


def test_the_map_wins_over_the_flat_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("VOXGATE_SONIOX_API_KEY", "flat-key")
    env.setenv("VOXGATE_PROVIDERS__SONIOX__API_KEY", "map-key")
    config = Settings().provider("soniox")
    assert (config.api_key, config.base_url) == ("map-key", "https://api.soniox.com")


def test_an_unconfigured_provider_has_no_key_and_the_engines_default_url(env: pytest.MonkeyPatch) -> None:
    config = Settings().provider("acme", "https://api.acme.example/")
    assert (config.api_key, config.base_url) == (None, "https://api.acme.example")
    assert Settings().provider("acme").base_url == ""
