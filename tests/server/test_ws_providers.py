"""The WebSocket protocol, unchanged, through a cloud provider's own live socket (a local fake speaking Deepgram's
wire format), and mid-stream fallback to a local model when that socket drops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors import deepgram_live_server as dg_fake
from tests.engines.fake_vendors.deepgram_live_server import LiveFault, LiveVendor
from tests.server.wsutil import CLOSE_STREAM, TINY, Received, config_frame, drain, open_stream, pcm16, send_pcm
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service

KEY = "dg-ws-test-key-0123456789"


@pytest.fixture(scope="module")
def vendor(service: Service) -> Iterator[tuple[LiveVendor, LiveServer]]:
    fake = LiveVendor(service.engine(TINY), api_key=KEY)
    with LiveServer(dg_fake.create_app(fake)) as server:
        yield fake, server


@pytest.fixture(scope="module")
def server(settings: Settings, vendor: tuple[LiveVendor, LiveServer]) -> Iterator[LiveServer]:
    configured = settings.model_copy(
        update={"deepgram_api_key": SecretStr(KEY), "deepgram_base_url": vendor[1].url, "preload": []}
    )
    svc = Service(configured)
    try:
        with LiveServer(create_app(configured, service=svc)) as live:
            yield live
    finally:
        svc.close()


async def _stream(server: LiveServer, data: Path, model: object, **config: object) -> Received:
    audio = decode(data / "en" / "jfk.flac")
    async with open_stream(server) as ws:
        manual = {"mode": "manual"}
        await ws.send(config_frame(model_id=None, modelId=model, language="en", turnDetection=manual, **config))
        await send_pcm(ws, pcm16(audio), speed=8.0)
        await ws.send(CLOSE_STREAM)
        return await drain(ws)


async def test_stream_through_the_vendor_socket(
    server: LiveServer, vendor: tuple[LiveVendor, LiveServer], data: Path
) -> None:
    fake, _ = vendor
    fake.reset()
    got = await _stream(server, data, "deepgram/nova-3", voiceProfileConfig={"enableVoiceProfile": True})
    assert got.close_code == 1000
    assert len(got.finals) == 1
    assert wer(reference(data, "en/jfk.flac"), str(got.finals[0]["transcript"])) <= 0.2
    assert "Finalize" in fake.controls  # the turn's final asked the vendor to settle
    # The voice profile runs locally on the audio, whichever provider transcribes.
    turn_profiles = [r["voiceProfile"] for r in got.of("result") if r.get("voiceProfile", {}).get("scope") == "turn"]
    assert len(turn_profiles) == 1
    assert turn_profiles[0]["language"][0]["label"] == "en"


async def test_stream_falls_back_when_the_vendor_socket_drops(
    server: LiveServer, vendor: tuple[LiveVendor, LiveServer], data: Path
) -> None:
    fake, _ = vendor
    fake.reset()
    fake.script_live(LiveFault(drop_after=3.0))
    got = await _stream(server, data, ["deepgram/nova-3", TINY])
    assert got.close_code == 1000
    assert len(got.finals) == 1
    # The whole clip is in the final: the audio heard before the drop was decoded by the fallback model.
    assert wer(reference(data, "en/jfk.flac"), str(got.finals[0]["transcript"])) <= 0.2


async def test_a_deepgram_block_and_a_flux_id_reach_the_vendor_socket(
    server: LiveServer, vendor: tuple[LiveVendor, LiveServer], data: Path
) -> None:
    fake, _ = vendor
    fake.reset()
    block = {"keyterms": ["Americans"], "endpointing": 300, "smartFormat": False}
    got = await _stream(server, data, "deepgram/flux-general-en", deepgramConfig=block)
    assert got.close_code == 1000, got.messages
    (final,) = got.finals
    assert wer(reference(data, "en/jfk.flac"), str(final["transcript"])) <= 0.2
    # Through the whole stack: wire block -> options -> session -> decoder -> the vendor's socket query.
    (request,) = fake.received
    assert request.params("model") == ["nova-3"]
    assert request.params("language") == ["en"]
    assert request.params("keyterm") == ["Americans"]
    assert request.params("endpointing") == ["300"]
    assert request.params("smart_format") == ["false"]
    (usage,) = [r["usage"] for r in got.of("result") if "usage" in r]
    assert usage["modelId"] == "deepgram/flux-general-en"
