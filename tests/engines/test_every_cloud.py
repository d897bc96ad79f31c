"""What every cloud adapter must do alike — above all, fail alike — checked once for every vendor.

Batch APIs (:data:`~tests.engines.harness.CLOUDS`): each vendor's fake on loopback (its wire format, real speech
transcribed by the local whisper/base), faults scripted on the route a transcription starts with (``first``: the one
request of Deepgram and OpenAI, the upload of the async-job vendors) or on the one whose answer holds the transcript
(``answer``). The async-job vendors (:data:`~tests.engines.harness.JOBS`: AssemblyAI, Soniox) are also held to what a
job must survive, and to cleaning up after it where the vendor keeps what was sent (Soniox). Live sockets
(:data:`~tests.engines.harness.LIVES`): each vendor's fake socket (transcribing with tiny.en), refusing, dropping or
falling silent.

What only one vendor does (its wire format, its mapping of results, its own ways of failing) is tested in that
vendor's module.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    stream,
)
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.engines.registry import load_engine
from voxgate.errors import (
    InvalidRequest,
    ModelUnavailable,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.models.catalog import resolve
from voxgate.types import Audio, TranscriptionOptions

LOCAL = "whisper/base"
"""What the batch fakes transcribe with."""
LIVE_LOCAL = "whisper/tiny.en"
"""What the live fakes transcribe with."""
SAYS = "dog"
"""A word the transcript of ``sentence`` holds."""

every_cloud = pytest.mark.parametrize("cloud", CLOUDS, indirect=True, ids=str)
every_job_vendor = pytest.mark.parametrize("cloud", JOBS, indirect=True, ids=str)
every_live_socket = pytest.mark.parametrize("live", LIVES, indirect=True, ids=str)


@pytest.fixture
def cloud(request: pytest.FixtureRequest, fakes: Fakes) -> Iterator[Cloud[Any]]:
    with fakes.cloud(request.param, LOCAL) as cloud:
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


# -- results -----------------------------------------------------------------------------------------------------------


@every_cloud
@pytest.mark.parametrize("clip", ["spk1_snt3.wav", "spk2_snt1.wav"])
def test_more_speakers(cloud: Cloud[Any], make: Make, data: Path, clip: str) -> None:
    t = make().transcribe(decode(data / "en" / clip), EN)
    assert wer(reference(data, f"en/{clip}"), t.text) <= 0.2, t.text
    cloud.kind.sane(t)


# -- configuration and refusals ----------------------------------------------------------------------------------------


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


# -- retries -----------------------------------------------------------------------------------------------------------


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
def test_one_slow_answer_is_retried(cloud: Cloud[Any], make: Make, sentence: Audio) -> None:
    make().transcribe(sentence, EN)  # the fake now has this transcript at hand: its next answers are quick
    before = len(cloud.fake.received)
    cloud.fake.script(Fault(delay=0.8), route=cloud.kind.first)
    assert SAYS in make(provider_timeout_seconds=0.3).transcribe(sentence, EN).text.lower()
    assert cloud.fake.calls[before] == cloud.kind.first
    cloud.assert_clean(cloud.fake.received[before + 1 :])


# -- broken answers ----------------------------------------------------------------------------------------------------


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


# -- async jobs --------------------------------------------------------------------------------------------------------


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


# -- live sockets ------------------------------------------------------------------------------------------------------


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
