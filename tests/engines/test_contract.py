"""The engine contract: one suite, run against every provider registered in
:data:`voxgate.engines.registry.PROVIDERS` and against the scripted engine of ``tests/scripted.py``.

Every engine (:data:`CONTRACT`): loaded through the registry as the service loads it (cloud ones with their settings
pointed at the fake vendors of ``tests/engines/fake_vendors``, which check the wire format and transcribe the audio
they receive with a real local whisper model), given the same real speech (``data/en/jfk.flac``), held to the same
checks. A provider registered without an entry fails :func:`test_every_registered_provider_has_a_contract_entry`.

Every cloud adapter (:data:`~tests.engines.harness.CLOUDS`) must also fail alike: faults scripted on the route a
transcription starts with (``first``: the one request of Deepgram and OpenAI, the upload of the async-job vendors)
or on the one whose answer holds the transcript (``answer``). The async-job vendors
(:data:`~tests.engines.harness.JOBS`: AssemblyAI, Soniox) are also held to what a job must survive, and to cleaning up
after it where the vendor keeps what was sent (Soniox). Every live socket (:data:`~tests.engines.harness.LIVES`):
each vendor's fake socket (transcribing with tiny.en), refusing, dropping or falling silent.

What only one engine does (its wire format, its mapping of results, its own ways of failing, Whisper's English-only
models) is tested in that engine's module.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engines.fake_vendors import Fault
from tests.engines.fake_vendors.assemblyai_server import JobVendor
from tests.engines.fake_vendors.deepgram_live_server import LiveFault
from tests.engines.harness import (
    CHUNK,
    CLOUDS,
    EN,
    JOBS,
    LIVES,
    Cloud,
    CloudKind,
    Fakes,
    JobKind,
    Live,
    Make,
    decoding,
    failed,
    left_behind,
    quick,
    stream,
    words_are_sane,
)
from tests.scripted import Script, ScriptedEngine
from tests.speech import DATA, reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.engines import registry
from voxgate.engines.base import Engine, LiveEngine
from voxgate.engines.registry import PROVIDERS, load_engine
from voxgate.errors import (
    InvalidRequest,
    ModelUnavailable,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.models.catalog import ModelSpec, resolve
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions, Word

# -- who is held to the contract ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """What one model of a provider is held to."""

    model_id: str
    remote: bool
    """A cloud provider: ``capabilities.remote`` must say so (and must not, for a local one)."""
    language: str | None = "en"
    """The language the contract's requests name (None: let the engine use its own)."""
    expects_english: bool = True
    """Whether the engine can be expected to transcribe the English reference close to the reference text."""
    not_english_reason: str = ""

    @property
    def provider(self) -> str:
        return self.model_id.split("/", 1)[0]

    def __str__(self) -> str:
        return self.model_id


CONTRACT: list[Contract] = [
    Contract("whisper/tiny.en", remote=False),
    Contract("whisper/base", remote=False),
    Contract(
        "vosk/ko",
        remote=False,
        language=None,
        expects_english=False,
        not_english_reason="vosk/ko is a Korean-only model: English speech gives Korean nonsense, so only the "
        "structure of its transcript is checked, not its text",
    ),
    Contract("openai/whisper-1", remote=True),
    Contract("groq/whisper-large-v3", remote=True),
    Contract("deepgram/nova-3", remote=True),
    Contract("assemblyai/universal-2", remote=True),
    Contract("soniox/stt-async-v5", remote=True),
]
"""Each registered provider's models under contract (whisper's: an English-only and a multilingual one)."""

SCRIPTED = Contract("scripted/jfk", remote=False)
"""The scripted engine of the streaming tests, registered as a third-party provider for its run of the contract."""

REGISTERED = frozenset(PROVIDERS)
"""The providers registered when this module was collected (other tests may register a temporary one later)."""

LOCAL = "whisper/tiny.en"
"""What the fake vendors transcribe with in the every-engine checks (the smallest real model: keeps them fast)."""
CLOUD_LOCAL = "whisper/base"
"""What the batch fakes transcribe with in the cloud-adapter checks."""
LIVE_LOCAL = "whisper/tiny.en"
"""What the live fakes transcribe with."""
SAYS = "dog"
"""A word the transcript of ``sentence`` holds."""

CLOUD = {kind.provider: kind for kind in CLOUDS}
"""The cloud providers' fake vendors (tests/engines/harness.py)."""

JFK_WORDS = (
    ("And", 0.0, 0.52), ("so,", 0.52, 0.82), ("my", 0.82, 1.18), ("fellow", 1.18, 1.58), ("Americans,", 1.58, 2.1),
    ("ask", 3.17, 3.73), ("not", 3.73, 4.21), ("what", 4.21, 5.23), ("your", 5.52, 5.76), ("country", 5.76, 6.22),
    ("can", 6.22, 6.62), ("do", 6.62, 6.82), ("for", 6.82, 7.08), ("you,", 7.08, 7.36), ("ask", 7.68, 8.48),
    ("what", 8.48, 8.76), ("you", 8.76, 9.04), ("can", 9.04, 9.34), ("do", 9.34, 9.56), ("for", 9.56, 9.78),
    ("your", 9.78, 9.96), ("country.", 9.96, 10.36),
)  # fmt: skip
"""The scripted engine's script of ``en/jfk.flac``: the reference's words, timed as whisper/base times them."""


def scripted_jfk(spec: ModelSpec, settings: Settings) -> Engine:
    """Engine factory for ``registry.register("scripted", "tests.engines.test_contract:scripted_jfk")``."""
    words = tuple(Word(w, start, end, 1.0) for w, start, end in JFK_WORDS)
    return ScriptedEngine(Script(decode(DATA / "en" / "jfk.flac"), words), model_id=spec.id, max_batch=2)


def test_every_registered_provider_has_a_contract_entry() -> None:
    providers = {c.provider for c in CONTRACT}
    assert providers == REGISTERED, (
        f"providers without a contract entry: {sorted(REGISTERED - providers)}; "
        f"contract entries for unregistered providers: {sorted(providers - REGISTERED)}"
    )


def test_every_cloud_provider_has_a_fake_vendor() -> None:
    """The cloud-adapter checks below run for every remote provider (and only for those)."""
    remote = {name for name, entry in PROVIDERS.items() if entry.remote}
    assert set(CLOUD) == remote
    assert {c.provider for c in CONTRACT if c.remote} == remote
    assert {kind.provider for kind in LIVES} <= remote


@pytest.fixture(scope="module", autouse=True)
def fast() -> Iterator[None]:
    """Retry backoff and job polling in milliseconds, not seconds."""
    with quick():
        yield


# -- every engine ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    contract: Contract
    settings: Settings
    engine: Engine

    @property
    def provider(self) -> str:
        return self.contract.provider

    def options(self, **update: Any) -> TranscriptionOptions:
        return replace(TranscriptionOptions(language=self.contract.language), **update)

    def load(self) -> Engine:
        """Another engine for the same model, as the registry makes it."""
        return load_engine(resolve(self.contract.model_id, self.settings.default_model), self.settings)


@pytest.fixture(scope="module", params=[*CONTRACT, SCRIPTED], ids=str)
def loaded(request: pytest.FixtureRequest, settings: Settings, fakes: Fakes) -> Iterator[Loaded]:
    """Each model's engine, loaded through the registry (cloud ones against their fake), closed afterwards."""
    contract: Contract = request.param
    provider = contract.provider
    update: dict[str, Any] = {"provider_max_retries": 2, "provider_timeout_seconds": 60.0}
    if provider in CLOUD:
        update |= fakes.cloud(CLOUD[provider], LOCAL).update()
    configured = settings.model_copy(update=update)
    with contextlib.ExitStack() as stack:
        if contract is SCRIPTED:
            registry.register(provider, "tests.engines.test_contract:scripted_jfk")
            stack.callback(PROVIDERS.pop, provider, None)
        engine = load_engine(resolve(contract.model_id, configured.default_model), configured)
        yield Loaded(contract, configured, engine)
        engine.close()


@pytest.fixture(scope="module")
def transcript(loaded: Loaded, jfk: np.ndarray) -> Transcript:
    """The engine's transcript of the JFK clip with word times (once per engine)."""
    return loaded.engine.transcribe(jfk, loaded.options(word_timestamps=True))


def _duration(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


def _structure_is_sane(t: Transcript, loaded: Loaded, audio: np.ndarray) -> None:
    assert isinstance(t, Transcript)
    assert t.model_id == loaded.contract.model_id
    # A local engine knows the audio's length to the sample; a vendor may round it.
    assert t.duration == pytest.approx(_duration(audio), abs=0.1 if loaded.contract.remote else 1e-6)


def _english(loaded: Loaded) -> None:
    if not loaded.contract.expects_english:
        pytest.skip(f"not applicable: {loaded.contract.not_english_reason}")


def _local(loaded: Loaded, what: str) -> None:
    """Checks the local engines keep and the cloud adapters do not (yet): they send such requests to the vendor."""
    if loaded.contract.remote:
        pytest.skip(f"local engines only: a cloud adapter {what}")


def _plain(text: str) -> str:
    return text.replace(",", "").replace(".", "").lower()


def test_is_an_engine(loaded: Loaded) -> None:
    assert isinstance(loaded.engine, Engine)
    assert loaded.engine.model_id == loaded.contract.model_id
    languages = loaded.engine.capabilities.languages
    assert languages or loaded.contract.remote  # empty: the vendor's many languages, see its list
    if loaded.contract.expects_english and languages:
        assert "en" in languages


def test_remote_exactly_for_cloud_providers(loaded: Loaded) -> None:
    assert loaded.engine.capabilities.remote is loaded.contract.remote
    if loaded.contract is not SCRIPTED:
        assert PROVIDERS[loaded.provider].remote is loaded.contract.remote


def test_transcribes_real_speech(loaded: Loaded, transcript: Transcript, jfk: np.ndarray) -> None:
    _structure_is_sane(transcript, loaded, jfk)
    assert transcript.text.strip(), "empty transcript of 11 s of speech"
    if loaded.engine.capabilities.word_timestamps:
        words_are_sane(transcript, within=transcript.duration + 0.1)


def test_text_is_close_to_the_reference(loaded: Loaded, transcript: Transcript, data: Path) -> None:
    _english(loaded)
    error = wer(reference(data, "en/jfk.flac"), transcript.text)
    assert error <= 0.25, f"WER {error:.2f}: {transcript.text!r}"
    for phrase in ("fellow americans", "ask not what your country can do for you"):
        assert phrase in _plain(transcript.text)


def test_words_are_where_they_are_said(loaded: Loaded, transcript: Transcript) -> None:
    """ "Americans" is said around 1.5-2.3 s into the clip, "country" last near 10 s."""
    _english(loaded)
    americans = next(w for w in transcript.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert transcript.words[-1].end > 9.0


def test_detects_language_when_none_given(loaded: Loaded, jfk: np.ndarray) -> None:
    _english(loaded)
    t = loaded.engine.transcribe(jfk, TranscriptionOptions())
    assert t.language == "en"
    if not loaded.contract.remote:  # vendors do not all say how sure they are
        assert t.language_probability is not None
        assert 0.5 < t.language_probability <= 1.0


def test_silence_gives_no_segments(loaded: Loaded) -> None:
    _local(loaded, "sends silence to the vendor, whose fake (plain whisper/tiny.en, no VAD) may hear a word in it")
    t = loaded.engine.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), loaded.options())
    assert t.segments == ()
    assert t.text == ""


def test_without_word_timestamps_there_are_no_words(loaded: Loaded, jfk: np.ndarray) -> None:
    """Only the words go: the segments and their text stay."""
    t = loaded.engine.transcribe(jfk, loaded.options(word_timestamps=False))
    _structure_is_sane(t, loaded, jfk)
    assert t.text.strip()
    assert t.words == ()
    assert t.segments
    if loaded.contract.expects_english:
        assert "country" in t.text


def test_rejects_a_language_it_does_not_know(loaded: Loaded, jfk: np.ndarray) -> None:
    _local(loaded, "passes the language to the vendor, whose refusal is a ProviderError")
    with pytest.raises(InvalidRequest):
        loaded.engine.transcribe(jfk[:SAMPLE_RATE], loaded.options(language="xx"))


def test_an_unsupported_task_is_refused(loaded: Loaded, jfk: np.ndarray) -> None:
    if loaded.engine.capabilities.translate:
        pytest.skip(f"{loaded.engine.model_id} translates")
    with pytest.raises(InvalidRequest):
        loaded.engine.transcribe(jfk, loaded.options(task="translate"))


def test_transcribe_utterance(loaded: Loaded, jfk: np.ndarray) -> None:
    t = loaded.engine.transcribe_utterance(jfk, loaded.options())
    _structure_is_sane(t, loaded, jfk)
    assert t.text.strip()


def test_utterance_path_matches_the_file_path(loaded: Loaded, jfk: np.ndarray) -> None:
    """A streaming final (whisper: its fast path, a shortened encoder window) gives the same words, with sane
    times."""
    _english(loaded)
    fast = loaded.engine.transcribe_utterance(jfk, loaded.options())
    full = loaded.engine.transcribe(jfk, loaded.options())
    assert _plain(fast.text) == _plain(full.text)
    if not loaded.engine.capabilities.word_timestamps:
        return
    words_are_sane(fast, within=fast.duration + 0.05)
    gaps = [abs(a.start - b.start) for a, b in zip(fast.words, full.words, strict=True)]
    # Without the file path's VAD cuts, a word after a long pause may be dated into the pause ("ask" after
    # "Americans," by ~0.7 s on base); on average the two agree closely.
    assert sum(gaps) / len(gaps) < 0.15
    assert max(gaps) < 0.8


@pytest.mark.parametrize("samples", [0, 1, 120, 160, 200, 1000])
def test_utterance_too_short_to_hold_a_word(loaded: Loaded, samples: int) -> None:
    _local(loaded, "sends even an empty clip to the vendor")
    t = loaded.engine.transcribe_utterance(np.zeros(samples, dtype=np.float32), loaded.options())
    assert t.segments == ()


def test_transcribe_batch(loaded: Loaded, jfk: np.ndarray) -> None:
    results = loaded.engine.transcribe_batch([(jfk, loaded.options())])
    assert isinstance(results, list)
    assert len(results) == 1
    _structure_is_sane(results[0], loaded, jfk)
    assert results[0].text.strip()


def test_drafts_in_one_batch_keep_their_own_options(loaded: Loaded, jfk: np.ndarray) -> None:
    """As many drafts as the engine takes at once, each with its own audio and options; drafts carry text only."""
    _english(loaded)
    short = jfk[: 3 * SAMPLE_RATE]
    items = [(jfk, loaded.options()), (short, TranscriptionOptions(prompts=("Americans",)))]
    step = loaded.engine.capabilities.max_batch
    drafts = [d for i in range(0, len(items), step) for d in loaded.engine.transcribe_batch(items[i : i + step])]
    assert len(drafts) == 2
    assert "country" in drafts[0].text.lower()
    assert "fellow" in drafts[1].text.lower()
    assert "country" not in drafts[1].text.lower()
    assert drafts[1].language == "en"
    if not loaded.contract.remote:  # a cloud adapter's drafts keep the words its vendor sends
        assert drafts[0].words == ()


def test_close(loaded: Loaded) -> None:
    """A second engine for the same model closes cleanly (the shared one is closed when its tests are done)."""
    other = loaded.load()
    assert other.model_id == loaded.contract.model_id
    other.close()


def test_every_cloud_socket_is_held_to_the_live_checks(loaded: Loaded) -> None:
    """A cloud model with a live connector has its vendor's fake socket among the live-socket checks below."""
    engine = loaded.engine
    if not loaded.contract.remote or not isinstance(engine, LiveEngine) or engine.live_connector() is None:
        pytest.skip(f"{engine.model_id} has no cloud socket")
    assert loaded.provider in {kind.provider for kind in LIVES}


every_cloud = pytest.mark.parametrize("cloud", CLOUDS, indirect=True, ids=str)
every_job_vendor = pytest.mark.parametrize("cloud", JOBS, indirect=True, ids=str)
every_live_socket = pytest.mark.parametrize("live", LIVES, indirect=True, ids=str)


@pytest.fixture
def cloud(request: pytest.FixtureRequest, fakes: Fakes) -> Iterator[Cloud[Any]]:
    with fakes.cloud(request.param, CLOUD_LOCAL) as cloud:
        yield cloud


@pytest.fixture
def live(request: pytest.FixtureRequest, fakes: Fakes) -> Iterator[Live[Any]]:
    with fakes.live(request.param, LIVE_LOCAL) as live:
        yield live


def job_kind(cloud: Cloud[Any]) -> JobKind[Any]:
    assert isinstance(cloud.kind, JobKind)
    return cloud.kind


def cleans_up(cloud: Cloud[Any], *, processing: bool = False) -> None:
    """Once a job was created, the transcription ends (done, failed or given up) with the vendor's clean-up: nothing
    is left there (but a job still processing, which the vendor refuses to delete)."""
    if isinstance(cloud.kind, JobKind):
        cleanup = cloud.kind.cleanup_after()
        assert cloud.fake.calls[len(cloud.fake.calls) - len(cleanup) :] == cleanup
        left_behind(cloud, processing=processing)


# -- every cloud adapter: results -----------------------------------------------------------------------------------


@every_cloud
@pytest.mark.parametrize("clip", ["spk1_snt3.wav", "spk2_snt1.wav"])
def test_more_speakers(cloud: Cloud[Any], make: Make, data: Path, clip: str) -> None:
    t = make().transcribe(decode(data / "en" / clip), EN)
    assert wer(reference(data, f"en/{clip}"), t.text) <= 0.2, t.text
    cloud.kind.sane(t)


# -- every cloud adapter: configuration and refusals ----------------------------------------------------------------


@pytest.mark.parametrize("kind", CLOUDS, ids=str)
def test_a_missing_key_names_its_variable(settings: Settings, kind: CloudKind[Any]) -> None:
    no_key = settings.model_copy(update={f"{kind.provider}_api_key": None})
    with pytest.raises(ModelUnavailable, match=kind.variable):
        load_engine(resolve(kind.model_id, settings.default_model), no_key)


@every_cloud
def test_a_refused_key_is_provider_unauthorized_and_not_retried(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    with pytest.raises(ProviderUnauthorized, match=cloud.kind.variable):
        make(key="voxgate-wrong-key").transcribe(sentence, EN)
    assert cloud.log() == [(cloud.kind.first, 401)]


@every_cloud
def test_translation_is_refused_before_any_call(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    with pytest.raises(InvalidRequest, match="translat"):
        make().transcribe(sentence, TranscriptionOptions(task="translate"))
    assert cloud.fake.received == []


@every_cloud
def test_an_unreachable_vendor_is_a_provider_error(make: Make, sentence: Audio) -> None:
    with pytest.raises(ProviderError, match="unreachable"):
        make(url="http://127.0.0.1:9").transcribe(sentence, EN)  # the discard port: nothing listens


# -- every cloud adapter: retries -----------------------------------------------------------------------------------


@every_cloud
def test_429_is_retried_after_its_retry_after(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    """Retry-After in fractions of a second, or in seconds."""
    limited = [Fault(status=429, retry_after="0.3"), Fault(status=429, retry_after="1")]
    cloud.fake.script(*limited, route=cloud.kind.first)
    assert SAYS in make().transcribe(sentence, EN).text.lower()
    first, second, third, *rest = cloud.fake.received
    assert cloud.log()[:2] == [(cloud.kind.first, 429)] * 2
    assert second.at - first.at >= 0.3
    assert third.at - second.at >= 1.0
    cloud.assert_clean([third, *rest])


@every_cloud
@pytest.mark.parametrize("retry_after", [None, "0"], ids=["without-retry-after", "retry-after-0"])
def test_429_past_the_retries_is_provider_rate_limited(
    cloud: Cloud[Any], make: Make, sentence: Audio, retry_after: str | None
) -> None:
    cloud.fake.script(*[Fault(status=429, retry_after=retry_after)] * 5, route=cloud.kind.first)
    with pytest.raises(ProviderRateLimited, match=cloud.kind.limited):
        make().transcribe(sentence, EN)
    assert cloud.log() == [(cloud.kind.first, 429)] * 3  # one try and provider_max_retries=2


@every_cloud
def test_5xx_are_retried(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    cloud.fake.script(Fault(status=500), Fault(status=502), Fault(status=503), route=cloud.kind.first)
    assert SAYS in make(provider_max_retries=3).transcribe(sentence, EN).text.lower()
    assert cloud.log()[:3] == [(cloud.kind.first, 500), (cloud.kind.first, 502), (cloud.kind.first, 503)]
    cloud.assert_clean(cloud.fake.received[3:])


@every_cloud
def test_a_5xx_past_the_retries_is_a_provider_error(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    cloud.fake.script(*[Fault(status=500)] * 5, route=cloud.kind.first)
    with pytest.raises(ProviderError, match=f"{cloud.kind.provider} answered 500") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    assert cloud.log() == [(cloud.kind.first, 500)] * 3


@every_cloud
def test_dropped_connections_are_retried(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    cloud.fake.script(Fault(drop=True), Fault(drop=True), route=cloud.kind.first)
    assert SAYS in make().transcribe(sentence, EN).text.lower()
    assert cloud.log()[:2] == [(cloud.kind.first, 200)] * 2  # a 200 cut short
    cloud.assert_clean(cloud.fake.received[2:])


@every_cloud
@pytest.mark.parametrize("retries", [0, 1], ids=["no-retry", "one-retry"])
def test_a_slow_answer_times_out(cloud: Cloud[Any], make: Make, sentence: Audio, retries: int) -> None:
    tries = 1 + retries
    cloud.fake.script(*[Fault(delay=0.8)] * tries, route=cloud.kind.first)
    engine = make(provider_timeout_seconds=0.3, provider_max_retries=retries)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        engine.transcribe(sentence, EN)
    assert time.monotonic() - started < 0.7 * tries  # each try gives up at 0.3 s, not after the 0.8 s delay
    assert cloud.fake.calls == [cloud.kind.first] * tries


@every_cloud
def test_an_answer_that_trickles_is_cut_off_at_the_deadline(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    """One byte every 0.1 s passes any per-read timeout; the call's own deadline still ends it, retries and all."""
    cloud.fake.script(*[Fault(drip=0.1)] * 3, route=cloud.kind.first)
    engine = make(provider_timeout_seconds=0.5, provider_deadline_seconds=1.2, provider_max_retries=5)
    engine.processing_allowance = 0.0
    with pytest.raises(ProviderTimeout):
        engine.transcribe(sentence, EN)
    assert cloud.fake.calls[:2] == [cloud.kind.first] * 2  # cut off, retried within the deadline, cut off again
    assert len(cloud.fake.calls) <= 3  # ... and never past it


@every_cloud
def test_one_slow_answer_is_retried(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    make().transcribe(sentence, EN)  # the fake now has this transcript at hand: its next answers are quick
    before = len(cloud.fake.received)
    cloud.fake.script(Fault(delay=0.8), route=cloud.kind.first)
    assert SAYS in make(provider_timeout_seconds=0.3).transcribe(sentence, EN).text.lower()
    assert cloud.fake.calls[before] == cloud.kind.first
    cloud.assert_clean(cloud.fake.received[before + 1 :])


# -- every cloud adapter: broken answers ----------------------------------------------------------------------------


@every_cloud
def test_an_answer_that_is_not_json_is_a_provider_error(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    cloud.fake.script(Fault(body=b"<html><body>502 Bad Gateway</body></html>"), route=cloud.kind.answer)
    with pytest.raises(ProviderError, match="not JSON") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    assert cloud.fake.calls.count(cloud.kind.answer) == 1
    cleans_up(cloud)


@every_cloud
def test_connections_that_keep_dropping_are_a_provider_error(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    cloud.fake.script(*[Fault(drop=True)] * 3, route=cloud.kind.answer)
    with pytest.raises(ProviderError, match="unreachable") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    assert [a for a in cloud.log() if a[0] == cloud.kind.answer] == [(cloud.kind.answer, 200)] * 3
    cleans_up(cloud)


# -- every async-job vendor -----------------------------------------------------------------------------------------


@every_job_vendor
def test_the_job_is_created_once_and_failed_polls_are_retried(
    cloud: Cloud[JobVendor], make: Make, sentence: Audio
) -> None:
    cloud.fake.script(Fault(status=500), Fault(drop=True), route="poll")
    assert SAYS in make().transcribe(sentence, EN).text.lower()
    assert cloud.fake.calls.count("create") == 1
    assert cloud.fake.calls.count("poll") >= 2 + cloud.fake.polls_to_complete + 1
    received = cloud.fake.received
    assert cloud.log()[2:4] == [("poll", 500), ("poll", 200)]  # (200 cut short)
    cloud.assert_clean([*received[:2], *received[4:]])
    left_behind(cloud)


@every_job_vendor
def test_creating_a_job_is_never_retried(cloud: Cloud[JobVendor], make: Make, sentence: Audio) -> None:
    """The job may exist despite the 5xx: a retry could bill the audio twice. The upload is still cleaned up."""
    cloud.fake.script(Fault(status=503), route="create")
    with pytest.raises(ProviderError, match="503") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    assert cloud.fake.calls == ["upload", "create", *job_kind(cloud).cleanup_after(job=False)]
    left_behind(cloud)


@every_job_vendor
def test_a_failed_job_raises_the_vendors_message(cloud: Cloud[JobVendor], make: Make, sentence: Audio) -> None:
    cloud.fake.job_error = "Transcoding failed. File does not appear to contain audio."
    with pytest.raises(ProviderError, match="File does not appear to contain audio") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    cleans_up(cloud)


@every_job_vendor
def test_an_unknown_job_status_is_a_provider_error(cloud: Cloud[JobVendor], make: Make, sentence: Audio) -> None:
    cloud.fake.stall = True
    cloud.fake.script(Fault(body=b'{"id": "x", "status": "exploded"}'), route="poll")
    with pytest.raises(ProviderError, match=f"unknown {job_kind(cloud).job} status") as caught:
        make().transcribe(sentence, EN)
    assert type(caught.value) is ProviderError
    assert cloud.fake.calls.count("poll") == 1


@every_job_vendor
def test_a_job_that_never_completes_times_out(
    cloud: Cloud[JobVendor], make: Make, sentence: Audio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloud.kind.engine, "processing_allowance", 0.0)
    cloud.fake.stall = True
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="did not finish"):
        make(provider_timeout_seconds=0.5).transcribe(sentence, EN)
    assert 0.5 <= time.monotonic() - started < 3.0
    assert cloud.fake.calls.count("poll") > 2
    cleans_up(cloud, processing=True)  # Soniox refuses to delete a transcription still processing (409, ignored)


# -- every live socket ----------------------------------------------------------------------------------------------


@every_live_socket
async def test_a_refused_key_on_the_socket(live: Live[Any]) -> None:
    wrong = live.kind.connector(live.config(key="voxgate-wrong-key"))
    with pytest.raises(ProviderUnauthorized, match=live.kind.variable):
        await wrong.connect(EN)
    assert [r.status for r in live.vendor.received] == [live.kind.refused]


@every_live_socket
@pytest.mark.parametrize(
    ("status", "error"),
    [(401, ProviderUnauthorized), (403, ProviderUnauthorized), (429, ProviderRateLimited), (503, ProviderError)],
)
async def test_a_refused_handshake(live: Live[Any], status: int, error: type[ProviderError]) -> None:
    live.vendor.script_live(LiveFault(status=status))
    with pytest.raises(error) as raised:
        await live.connector().connect(EN)
    assert type(raised.value) is error
    assert [r.status for r in live.vendor.received] == [status]


@every_live_socket
async def test_a_dropped_socket_fails_the_decoder(live: Live[Any], jfk: Audio) -> None:
    """What makes voxgate's stream fall back to the next engine."""
    live.vendor.script_live(LiveFault(drop_after=2.0))
    async with decoding(live.connector()) as (decoder, _):
        with contextlib.suppress(ProviderError):
            await stream(decoder, jfk)
        error = await failed(decoder)
        assert "1011" in error.message  # the vendor's close code
        with pytest.raises(ProviderError):
            decoder.draft(0.0, 1.0)
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(jfk[:CHUNK]))
        with pytest.raises(ProviderError):
            await decoder.settle(0.0, 3.0)


@every_live_socket
async def test_the_vendor_closes_a_silent_socket(live: Live[Any], jfk: Audio) -> None:
    live.vendor.idle_timeout = 0.5
    async with decoding(live.connector(**live.kind.quiet)) as (decoder, _):
        await stream(decoder, jfk[:CHUNK], pace=0.0)
        error = await failed(decoder)
        assert live.kind.idle in error.message
        with pytest.raises(ProviderError):
            await decoder.send(encode_linear16(jfk[:CHUNK]))


@every_live_socket
async def test_an_unreachable_or_silent_vendor(live: Live[Any]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = live.kind.connector(live.config(url=f"http://127.0.0.1:{port}"))
    with pytest.raises(ProviderError) as raised:
        await unreachable.connect(EN)
    assert type(raised.value) is ProviderError
    with socket.socket() as mute:  # accepts TCP (the kernel's backlog) but never answers the upgrade
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)
        silent = live.kind.connector(live.config(url=f"http://127.0.0.1:{mute.getsockname()[1]}", timeout=0.5))
        with pytest.raises(ProviderTimeout):
            await silent.connect(EN)
