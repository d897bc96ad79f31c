"""soniox/*: real speech through the Soniox adapter against a fake Soniox on loopback.

The fake (tests/engines/fake_vendors/soniox_server.py) checks every request's shape, transcribes the uploaded audio
with voxgate's real tiny.en engine and answers Soniox-style sub-word tokens, so text, word times, language and
vocabulary here are real. Token-joining details are checked against an in-process mock vendor instead. The failures
every cloud adapter handles alike (keys, retries, timeouts, failed and stalled jobs, clean-up after them) are in
test_every_cloud.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.engines.fake_vendors import Fault
from tests.engines.fake_vendors.soniox_server import FakeSoniox
from tests.engines.harness import SONIOX, Make, Speech, cloud_fixture, heard_jfk
from tests.speech import reference, wer
from voxgate.audio.pcm import encode_wav
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.soniox.rest import SonioxEngine
from voxgate.errors import ProviderError
from voxgate.models.catalog import resolve
from voxgate.types import SAMPLE_RATE, Audio, SonioxOptions, TranscriptionOptions

LOCAL = "whisper/tiny.en"
CLEANUP = list(SONIOX.cleanup)
cloud = cloud_fixture(SONIOX, LOCAL)  # each test's fake Soniox; conftest's ``fake`` and ``make`` use it


def mock_vendor(settings: Settings, tokens: list[dict[str, Any]]) -> tuple[Engine, list[Any]]:
    """An engine whose vendor is an in-process mock answering ``tokens``, and the transcription bodies it got."""
    sent: list[Any] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "DELETE":
            return httpx.Response(204)
        if path == "/v1/files":
            return httpx.Response(201, json={"id": "f1"})
        if path == "/v1/transcriptions":
            sent.append(json.loads(request.content))
            return httpx.Response(201, json={"id": "t1", "status": "queued"})
        if path == "/v1/transcriptions/t1":
            return httpx.Response(200, json={"id": "t1", "status": "completed"})
        text = "".join(t["text"] for t in tokens)
        return httpx.Response(200, json={"id": "t1", "text": text, "tokens": tokens})

    config = settings.model_copy(
        update={"soniox_api_key": SecretStr("soniox-mock-key"), "soniox_base_url": "https://api.soniox.invalid"}
    )
    return SonioxEngine(resolve("soniox/stt-async-v3", ""), config, transport=httpx.MockTransport(vendor)), sent


def token(text: str, start: int, end: int, language: str | None = "en", confidence: float = 0.9) -> dict[str, Any]:
    t: dict[str, Any] = {"text": text, "start_ms": start, "end_ms": end, "confidence": confidence}
    if language:
        t["language"] = language
    return t


# -- results --------------------------------------------------------------------------------------------------------


def test_transcribes_real_speech_with_word_times(fake: FakeSoniox, make: Make, jfk_speech: Speech) -> None:
    engine = make()
    assert isinstance(engine, SonioxEngine)
    assert engine.model_id == "soniox/stt-async-v3"
    t = engine.transcribe(jfk_speech.audio, TranscriptionOptions(language="en"))
    heard_jfk(t, SONIOX, jfk_speech)

    # The sub-word tokens were joined back into exactly the words the vendor's recogniser heard.
    heard = fake.recognize(encode_wav(jfk_speech.audio), "en").words
    assert [w.word for w in t.words] == [w.word for w in heard]
    for got, want in zip(t.words, heard, strict=True):
        assert got.start == pytest.approx(want.start, abs=0.001)
        assert got.end == pytest.approx(want.end, abs=0.001)
        assert got.confidence == pytest.approx(want.confidence, abs=0.001)

    # What Soniox was sent, and that nothing was left behind there.
    (body,) = fake.created
    assert body == {
        "model": "stt-async-v3",
        "enable_language_identification": True,
        "language_hints": ["en"],
        "file_id": body["file_id"],
    }
    assert fake.calls[:2] == ["upload", "create"]
    assert fake.calls[-3:] == ["transcript", *CLEANUP]
    assert set(fake.calls[2:-3]) == {"poll"}
    assert fake.uploads == {}
    assert fake.jobs == {}


def test_detects_the_language_when_none_is_given(fake: FakeSoniox, make: Make, data: Path, sentence: Audio) -> None:
    t = make().transcribe(sentence, TranscriptionOptions())
    (body,) = fake.created
    assert "language_hints" not in body
    assert body["enable_language_identification"] is True
    assert t.language == "en"
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2
    SONIOX.sane(t)


def test_vocabulary_reaches_the_vendor_and_the_transcript(fake: FakeSoniox, make: Make, comfyui: Audio) -> None:
    t = make().transcribe(comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI", "ComfyUI ", "")))
    assert fake.created[0]["context"] == {"terms": ["ComfyUI"]}
    assert "ComfyUI" in t.text
    assert any(w.word.startswith("ComfyUI") for w in t.words)  # joined from " Comf" + "yUI"
    assert t.warnings == ()


def test_word_timestamps_can_be_skipped(fake: FakeSoniox, make: Make, data: Path, sentence: Audio) -> None:
    t = make().transcribe(sentence, TranscriptionOptions(word_timestamps=False))
    assert t.words == ()
    assert t.warnings == ()
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2


def test_a_real_time_model_falls_back_to_its_async_model_with_a_warning(
    fake: FakeSoniox, make: Make, sentence: Audio
) -> None:
    t = make("soniox/stt-rt-v3").transcribe(sentence, TranscriptionOptions())
    assert fake.created[0]["model"] == "stt-async-v3"
    (warning,) = t.warnings
    assert "real-time model" in warning
    assert "stt-async-v3" in warning
    assert t.model_id == "soniox/stt-rt-v3"
    assert "dog" in t.text


def test_tokens_are_joined_into_words_and_segments(settings: Settings) -> None:
    tokens = [
        token("Hel", 100, 200, confidence=0.9),
        token("lo", 200, 400, confidence=0.7),
        token(",", 400, 400),
        token(" world", 450, 800),
        {"text": " Hi", "start_ms": 450, "end_ms": 800, "translation_status": "translation", "language": "de"},
        token(" wie", 900, 1000, "de"),
        token(" ", 1000, 1000, "de"),
        token("geht", 1000, 1200, "de"),
        token(" es", 1200, 1300, "de"),
        token("?", 1300, 1310, "de"),
        token(" Gut", 2600, 2900, "de"),
    ]
    engine, sent = mock_vendor(settings, tokens)
    try:
        t = engine.transcribe(
            np.zeros(3 * SAMPLE_RATE, np.float32), TranscriptionOptions(prompt="Greetings.", prompts=("Hello",))
        )
    finally:
        engine.close()
    assert sent[0]["context"] == {"terms": ["Hello"], "text": "Greetings."}
    assert [(w.word, w.start, w.end, w.confidence) for w in t.words] == [
        ("Hello,", 0.1, 0.4, 0.7),
        ("world", 0.45, 0.8, 0.9),
        ("wie", 0.9, 1.0, 0.9),
        ("geht", 1.0, 1.2, 0.9),
        ("es?", 1.2, 1.31, 0.9),
        ("Gut", 2.6, 2.9, 0.9),
    ]
    # cut where the language changes, after a question, and (here too) before a long pause
    assert [(s.text, s.language) for s in t.segments] == [
        ("Hello, world", "en"),
        ("wie geht es?", "de"),
        ("Gut", "de"),
    ]
    assert t.language == "de"  # most of the words
    assert t.warnings == ()


# -- failures only Soniox has ---------------------------------------------------------------------------------------


def test_a_failed_transcript_download_is_retried(fake: FakeSoniox, make: Make, sentence: Audio) -> None:
    fake.script(Fault(status=502), route="transcript")
    t = make().transcribe(sentence, TranscriptionOptions())
    assert "dog" in t.text.lower()
    assert fake.calls.count("transcript") == 2
    assert fake.uploads == {}
    assert fake.jobs == {}


def test_clean_up_failures_do_not_fail_the_transcription(
    fake: FakeSoniox, make: Make, sentence: Audio, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Fault(drop=True), route="delete_transcription")
    fake.script(Fault(status=500), route="delete_file")
    with caplog.at_level(logging.WARNING, logger="voxgate.engines.soniox.rest"):
        t = make().transcribe(sentence, TranscriptionOptions())
    assert "dog" in t.text.lower()
    assert fake.calls[-2:] == CLEANUP  # one try each
    assert len([r for r in caplog.records if "could not delete" in r.getMessage()]) == 2


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"id": "x", "text": "", "tokens": {"text": "a"}}', "not a list"),
        (b'{"id": "x", "text": "", "tokens": [{"start_ms": 0}]}', "cannot read"),
        (b'{"id": "x", "text": "", "tokens": ["a"]}', "cannot read"),
    ],
)
def test_broken_transcripts_are_provider_errors(
    fake: FakeSoniox, make: Make, sentence: Audio, body: bytes, match: str
) -> None:
    fake.script(Fault(body=body), route="transcript")
    with pytest.raises(ProviderError, match=match) as caught:
        make().transcribe(sentence, TranscriptionOptions())
    assert type(caught.value) is ProviderError
    assert fake.calls[-2:] == CLEANUP


# -- the reference's provider block ----------------------------------------------------------------------------------


def test_soniox_config_is_merged_into_the_request(fake: FakeSoniox, make: Make, sentence: Audio) -> None:
    block = SonioxOptions(
        language_hints=("en", "de"), language_hints_strict=True, context_general=(("domain", "pets"),),
        context_text="About a dog.", context_terms=("puppy", "dog"), enable_endpoint_detection=True,
    )  # fmt: skip
    options = TranscriptionOptions(language="en", prompts=("dog",), prompt="A child.", vendor=block)
    t = make().transcribe(sentence, options)
    (body,) = fake.created
    assert body["language_hints"] == ["en", "de"]
    assert body["language_hints_strict"] is True
    assert body["context"] == {
        "general": [{"key": "domain", "value": "pets"}],
        "terms": ["dog", "puppy"],
        "text": "A child.\nAbout a dog.",
    }
    assert "enable_endpoint_detection" not in body  # a stream setting: said, not sent
    assert any("endpoint fields apply to streams only" in w for w in t.warnings)
    assert "dog" in t.text
