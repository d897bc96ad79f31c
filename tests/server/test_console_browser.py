"""The web console in a real browser: Debian's headless Chromium driven by Playwright, a real speech file as the
microphone (Chromium's fake capture device plays it in real time), the real service behind it.

Screenshots of each run land in ``build/test-artifacts/`` (``VOXGATE_TEST_ARTIFACTS`` to change it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, WebSocket, sync_playwright
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.server.wsutil import clip
from tests.speech import conversation, reference, wer
from voxgate.audio.pcm import encode_wav
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service

KEY = "console-key-7f3a"
TINY = "whisper/tiny.en"
CHROMIUM_FLAGS = [
    # what this machine's Chromium needs headless, as root, with no network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# JFK's 11 s (one or more turns, by where the turn model hears the end), a pause, then a Harvard sentence.
MIC_CLIPS = ("en/jfk.flac", "en/spk1_snt1.wav")
MIC_RATE = 48_000  # a typical device rate: the page's 16 kHz AudioContext has to resample it
ARTIFACTS = Path(
    os.environ.get("VOXGATE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
)

pytestmark = pytest.mark.timeout(240)


def chromium_path() -> str:
    found = os.environ.get("VOXGATE_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    if os.environ.get("VOXGATE_REQUIRE_BROWSER"):
        pytest.fail(message)  # .ci/run installs it and sets this: a missing browser there is a broken build
    pytest.skip(message)


# -- fixtures -------------------------------------------------------------------------------------------------------


@dataclass
class Microphone:
    wav: Path
    seconds: float
    reference: str


@pytest.fixture(scope="module")
def microphone(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Microphone:
    """The fake microphone's recording: 48 kHz 16-bit WAV, speech with pauses long enough to end turns."""
    pause = np.zeros(int(2.5 * 16_000), np.float32)
    parts = [np.zeros(8_000, np.float32)]
    for name in MIC_CLIPS:
        parts += [clip(data / name), pause]
    audio = soxr.resample(np.concatenate(parts), 16_000, MIC_RATE)
    path = tmp_path_factory.mktemp("mic") / "microphone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MIC_RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    text = " ".join(reference(data, name) for name in MIC_CLIPS)
    return Microphone(path, len(audio) / MIC_RATE, text)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    chromium_path()
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright, microphone: Microphone) -> Iterator[Browser]:
    """Chromium whose microphone plays ``microphone.wav`` once, permission granted as if the user clicked Allow."""
    flags = [
        *CHROMIUM_FLAGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone.wav}%noloop",
    ]
    b = playwright.chromium.launch(executable_path=chromium_path(), args=flags)
    yield b
    b.close()


@pytest.fixture(scope="module")
def keyed_server(settings: Settings, service: Service) -> Iterator[LiveServer]:
    """A server that requires an API key (the shared service: models are loaded once)."""
    with LiveServer(create_app(settings.model_copy(update={"api_keys": [SecretStr(KEY)]}), service=service)) as s:
        yield s


@dataclass
class Visit:
    """A page plus what it did: requests, uncaught errors and console errors (checked at the end of each test)."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Control frames the page sent on its streams (audio chunks are counted in ``chunk_bytes`` instead)."""
    chunk_bytes: list[int] = field(default_factory=list)

    def check_clean(self, *, expected_statuses: tuple[int, ...] = ()) -> None:
        """Nothing loaded from outside the server; no error but the HTTP answers the test provoked."""
        ws_origin = self.origin.replace("http://", "ws://")
        outside = [u for u in self.requests if not u.startswith((self.origin, ws_origin, "blob:", "data:"))]
        assert not outside, f"the page reached outside the server: {outside}"
        provoked = tuple(f"the server responded with a status of {n} " for n in expected_statuses)
        errors = [e for e in self.errors if not (provoked and any(p in e for p in provoked))]
        assert not errors, errors

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def visit(browser: Browser, server: LiveServer) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    v = Visit(page, server.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            v.errors.append(message.text)

    def on_request(request: Request) -> None:
        v.requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: v.errors.append(f"uncaught: {error}"))
    page.on("request", on_request)

    def on_frame(payload: str | bytes) -> None:
        frame = json.loads(payload)
        if "audioChunk" in frame:
            v.chunk_bytes.append(len(base64.b64decode(frame["audioChunk"]["content"])))
        else:
            v.sent.append(frame)

    def on_websocket(ws: WebSocket) -> None:
        v.requests.append(ws.url)
        ws.on("framesent", on_frame)

    page.on("websocket", on_websocket)
    page.set_default_timeout(30_000)
    page.goto(server.url + "/")
    try:
        yield v
    finally:
        context.close()


@pytest.fixture
def keyed_page(browser: Browser, keyed_server: LiveServer) -> Iterator[Visit]:
    yield from visit(browser, keyed_server)


@pytest.fixture
def open_page(browser: Browser, live_server: LiveServer) -> Iterator[Visit]:
    yield from visit(browser, live_server)


# -- helpers --------------------------------------------------------------------------------------------------------

CLOCK = r"(\d{2}):(\d{2}):(\d{2})[,.](\d{3})"


def cue_times(subtitles: str) -> list[tuple[float, float]]:
    pairs = re.findall(CLOCK + " --> " + CLOCK, subtitles)
    return [
        (int(a) * 3600 + int(b) * 60 + int(c) + int(d) / 1000, int(e) * 3600 + int(f) * 60 + int(g) + int(h) / 1000)
        for a, b, c, d, e, f, g, h in pairs
    ]


def cue_text(subtitles: str) -> str:
    lines = [
        line
        for line in subtitles.splitlines()
        if line and line != "WEBVTT" and not line.isdigit() and "-->" not in line
    ]
    return " ".join(lines)


def check_subtitles(text: str, reference_text: str, *, vtt: bool) -> None:
    assert text.startswith("WEBVTT\n\n") == vtt
    times = cue_times(text)
    assert times, text
    for (start, end), (next_start, _) in zip(times, [*times[1:], (float("inf"), 0.0)], strict=True):
        assert 0 <= start < end <= next_start, times
        assert end - start <= 6.5, times  # long segments are split into readable cues
    for line in text.splitlines():
        assert len(line) <= 42 or "-->" in line, line
    assert wer(reference_text, cue_text(text)) <= 0.1


def fetch_download(page: Page, selector: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def give_key(page: Page, key: str) -> None:
    """Answer the page's API key prompt (it opens by itself when the server wants a key)."""
    page.wait_for_selector("#key-panel:not([hidden])")
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")


def wait_for_stream_time(page: Page, seconds: float, timeout_ms: int = 30_000) -> None:
    """Until the microphone has captured ``seconds`` of audio (the page's stream clock)."""
    page.wait_for_function(
        "seconds => parseFloat(document.querySelector('#live-clock').textContent.split(':')[1]) >= seconds",
        arg=seconds,
        timeout=timeout_ms,
    )


# -- tests ----------------------------------------------------------------------------------------------------------


def test_talking_into_the_microphone(keyed_page: Visit, microphone: Microphone) -> None:
    """Key prompt, live partials → finals per turn, automatic ends of turn, latency, voice profile, downloads."""
    page = keyed_page.page

    # The server wants a key: the page says so and asks for it; a wrong one is refused, the right one accepted.
    page.wait_for_selector("#key-panel:not([hidden])")
    assert page.inner_text("#server-status") == "API key required"
    assert page.is_disabled("#mic-start")
    give_key(page, "not-the-key")
    page.wait_for_function("() => document.querySelector('#key-hint').textContent.includes('refused')")
    give_key(page, KEY)
    page.wait_for_selector("body.ready")

    page.select_option("#model", TINY)
    assert page.is_checked("input[name=turn-mode][value=semantic]")  # the default: the turn model decides
    page.click("#mic-start")
    page.wait_for_selector("body[data-live=live]")
    page.wait_for_selector("#turns .turn.partial", timeout=15_000)  # words appear while the speaker talks

    # Let the whole recording play, then Stop (closeStream flushes whatever turn is still open).
    wait_for_stream_time(page, microphone.seconds - 0.3, timeout_ms=int(microphone.seconds * 1000) + 20_000)
    finals_before_stop = page.locator("#turns .turn.final").count()
    keyed_page.screenshot("console-live.png")
    page.click("#mic-stop")
    page.wait_for_selector("body[data-live=idle]", timeout=30_000)

    turns = page.locator("#turns .turn")
    finals = page.locator("#turns .turn.final")
    assert turns.count() == finals.count() >= 2  # every turn settled; the pause split the two recordings
    # A pause ended a turn on its own (semantic model or its silence fallback) long before Stop: JFK's turn(s).
    assert finals_before_stop >= 1
    transcript = " ".join(finals.nth(i).locator(".turn-text").inner_text() for i in range(finals.count()))
    assert wer(microphone.reference, transcript) <= 0.1, transcript
    for i in range(finals.count()):
        assert re.search(r"final \d+( ms|\.\d+ s) after speech", finals.nth(i).inner_text()), finals.nth(i).inner_text()
    assert "English" in finals.first.locator(".turn-meta").inner_text()

    # On the wire: the reference protocol, 16 kHz LINEAR16 in 100 ms chunks from the AudioWorklet.
    config = keyed_page.sent[0]["transcribeConfig"]
    assert config["audioEncoding"] == "LINEAR16"
    assert config["sampleRateHertz"] == 16_000
    assert config["modelId"] == TINY
    assert config["turnDetection"] == {"mode": "semantic"}
    assert config["voiceProfileConfig"]["enableVoiceProfile"] is True
    assert keyed_page.sent[-1] == {"closeStream": {}}
    assert set(keyed_page.chunk_bytes[:-1]) == {3200}
    assert sum(keyed_page.chunk_bytes) / 32_000 >= microphone.seconds - 0.5

    # The voice profile appeared and moved with the stream.
    assert int(page.get_attribute("#profile", "data-updates") or 0) >= 3
    assert page.inner_text("#profile [data-dimension=language] .bar.top .bar-label") == "English"
    for dimension in ("emotion", "gender", "age", "pitch", "vocalStyle", "accent"):
        bar = page.locator(f"#profile [data-dimension={dimension}] .bar.top")
        assert bar.count() == 1, dimension
        width = bar.locator(".bar-fill").evaluate("e => parseFloat(e.style.width)")
        assert 0 < width <= 100
    assert "Median pitch" in page.inner_text("#features")

    # The timeline drew the input, speech and turns.
    painted = page.evaluate(
        """() => { const c = document.querySelector('#timeline');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n / (c.width * c.height); }"""
    )
    assert painted > 0.05
    stats = page.inner_text("#stats")
    assert re.search(r"Partials\s+[1-9]", stats), stats
    assert re.search(r"Final latency p50\s+\d", stats), stats

    # Downloads of the session.
    name, srt = fetch_download(page, "#view-live [data-download=srt]")
    assert name.startswith("voxgate-live-")
    assert name.endswith(".srt")
    check_subtitles(srt, microphone.reference, vtt=False)
    _, vtt = fetch_download(page, "#view-live [data-download=vtt]")
    check_subtitles(vtt, microphone.reference, vtt=True)
    _, text = fetch_download(page, "#view-live [data-download=txt]")
    assert wer(microphone.reference, text) <= 0.1
    _, raw = fetch_download(page, "#view-live [data-download=json]")
    doc = json.loads(raw)
    assert doc["source"] == "microphone"
    assert doc["modelId"] == TINY
    assert [s["turnIndex"] for s in doc["segments"]] == sorted(s["turnIndex"] for s in doc["segments"])
    assert all(s["words"] for s in doc["segments"])
    assert doc["voiceProfile"]["language"][0]["label"] == "en"

    keyed_page.screenshot("console-live-done.png")
    # What the page showed, kept beside the screenshots (not asserted on: timings vary with the machine's load).
    report = {
        "turns": [finals.nth(i).inner_text() for i in range(finals.count())],
        "wer": wer(microphone.reference, transcript),
        "stats": page.inner_text("#stats"),
        "profile_updates": int(page.get_attribute("#profile", "data-updates") or 0),
        "audio_chunks": len(keyed_page.chunk_bytes),
    }
    (ARTIFACTS / "console-live.json").write_text(json.dumps(report, indent=2) + "\n")
    keyed_page.check_clean(expected_statuses=(401,))


def test_a_revoked_key_ends_the_stream_with_a_plain_error(keyed_page: Visit) -> None:
    page = keyed_page.page
    give_key(page, KEY)
    page.wait_for_selector("body.ready")
    page.evaluate("sessionStorage.setItem('voxgate.apiKey', 'revoked')")  # the key changes under the page
    page.click("#mic-start")
    alert = page.wait_for_selector(".alert[data-code=unauthenticated]")
    assert "invalid API key" in alert.inner_text()
    page.wait_for_selector("body[data-live=idle]")  # the microphone was released, the page is usable again
    assert page.is_visible("#mic-start")
    assert page.is_enabled("#mic-start")
    keyed_page.check_clean(expected_statuses=(401,))


def test_manual_turns_end_only_on_end_turn(open_page: Visit) -> None:
    page = open_page.page
    page.wait_for_selector("body.ready")
    page.select_option("#model", TINY)
    page.check("input[name=turn-mode][value=manual]")
    page.check("#speakers-toggle", force=True)
    page.click("#mic-start")
    page.wait_for_selector("body[data-live=live]")
    # "And so, my fellow Americans," then a pause that would end a turn in the other modes
    wait_for_stream_time(page, 3.6)
    assert page.locator("#turns .turn.final").count() == 0
    page.click("#end-turn")
    final = page.wait_for_selector("#turns .turn.final", timeout=15_000)
    assert "americans" in final.inner_text().lower()
    assert re.search(r"\d+( ms|\.\d+ s) after End turn", final.inner_text()), final.inner_text()
    assert final.query_selector(".turn-meta .speaker").inner_text() == "Speaker 1"  # the first voice heard
    page.click("#mic-stop")
    page.wait_for_selector("body[data-live=idle]")
    assert {"endTurn": {}} in open_page.sent
    assert open_page.sent[0]["transcribeConfig"]["turnDetection"] == {"mode": "manual"}
    assert open_page.sent[0]["transcribeConfig"]["diarizationConfig"] == {"enableSpeakerDiarization": True}
    open_page.check_clean()


def test_a_file_plays_back_with_its_words_highlighted(open_page: Visit, data: Path) -> None:
    page = open_page.page
    page.wait_for_selector("body.ready")
    page.click("#tab-file")
    page.select_option("#model", TINY)
    page.set_input_files("#file-input", str(data / "en" / "jfk.flac"))
    page.wait_for_selector("#file-transcript .word")
    expected = reference(data, "en/jfk.flac")
    transcript = page.inner_text("#file-transcript .segment-text")
    assert wer(expected, transcript) <= 0.1, transcript
    assert transcript.endswith("country.")  # shown with the transcript's punctuation (the timed words are bare)
    assert page.locator("#file-transcript .speaker").count() == 0  # "Speakers" is off by default
    stats = page.inner_text("#stats")
    assert TINY in stats
    assert "real time" in stats
    assert page.locator("#profile [data-dimension=language] .bar").count() >= 1

    # Playback: the highlighted word follows the audio.
    page.evaluate("document.querySelector('#player').play()")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 4")
    for _ in range(3):
        state = page.evaluate(
            """() => { const t = document.querySelector('#player').currentTime;
                       const words = [...document.querySelectorAll('#file-transcript .word')];
                       const i = words.findIndex(w => w.classList.contains('current'));
                       return {t, i, start: i < 0 ? null : +words[i].dataset.start,
                               next: i + 1 < words.length ? +words[i + 1].dataset.start : null,
                               spoken: words.filter(w => w.classList.contains('spoken')).length}; }"""
        )
        assert state["i"] > 0, state
        assert state["start"] <= state["t"] + 0.1, state  # the current word has started...
        assert state["next"] is None or state["next"] > state["t"] - 0.1, state  # ...and the next has not
        assert state["spoken"] == state["i"], state
        page.wait_for_timeout(400)
    open_page.screenshot("console-file.png")

    # Clicking a word plays from it.
    word = page.locator("#file-transcript .word").nth(10)
    start = float(word.get_attribute("data-start") or "nan")
    word.click()
    page.evaluate("document.querySelector('#player').pause()")
    assert abs(page.evaluate("document.querySelector('#player').currentTime") - start) < 0.5

    name, srt = fetch_download(page, "#view-file [data-download=srt]")
    assert name == "jfk.srt"
    check_subtitles(srt, expected, vtt=False)
    _, vtt = fetch_download(page, "#view-file [data-download=vtt]")
    check_subtitles(vtt, expected, vtt=True)
    _, text = fetch_download(page, "#view-file [data-download=txt]")
    assert wer(expected, text) <= 0.1
    _, raw = fetch_download(page, "#view-file [data-download=json]")
    doc = json.loads(raw)
    assert doc["source"] == "jfk.flac"
    assert doc["response"]["usage"]["modelId"] == TINY
    open_page.check_clean()


def test_a_conversation_is_shown_by_speaker(open_page: Visit, data: Path, tmp_path: Path) -> None:
    """Speakers on: the file view shows one paragraph per speaker turn with its chip, and downloads name them."""
    clips = ["en/spk1_snt1.wav", "en/spk2_snt2.wav", "en/spk1_snt3.wav"]
    audio, _ = conversation(data, clips)
    path = tmp_path / "talk.wav"
    path.write_bytes(encode_wav(audio))
    page = open_page.page
    page.wait_for_selector("body.ready")
    page.click("#tab-file")
    page.select_option("#model", TINY)
    page.check("#speakers-toggle", force=True)
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#file-transcript .speaker")  # the server tags speakers only when the config asks
    paragraphs = page.locator("#file-transcript .segment")
    assert paragraphs.count() == 3
    for i, (name, tag) in enumerate(zip(clips, [1, 2, 1], strict=True)):
        assert paragraphs.nth(i).locator(".speaker").inner_text() == f"Speaker {tag}"
        assert wer(reference(data, name), paragraphs.nth(i).locator(".segment-text").inner_text()) <= 0.2
    stats = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#stats dt')]"
        ".map(dt => [dt.textContent, dt.nextElementSibling.textContent]))"
    )
    assert stats["Speakers"] == "2", stats
    # The profile panel offers each speaker's own profile beside the whole file's.
    voices = page.locator("#profile-voices button")
    assert [voices.nth(i).inner_text() for i in range(voices.count())] == ["Whole file", "Speaker 1", "Speaker 2"]
    assert voices.nth(0).get_attribute("aria-pressed") == "true"
    whole = page.inner_text("#features")
    voices.nth(2).click()
    assert voices.nth(2).get_attribute("aria-pressed") == "true"
    page.wait_for_function("(before) => document.querySelector('#features').innerText !== before", arg=whole)
    open_page.screenshot("console-speakers.png")

    _, text = fetch_download(page, "#view-file [data-download=txt]")
    assert [line.split(":")[0] for line in text.strip().splitlines()] == ["Speaker 1", "Speaker 2", "Speaker 1"]
    _, vtt = fetch_download(page, "#view-file [data-download=vtt]")
    assert "<v Speaker 2>" in vtt
    _, srt = fetch_download(page, "#view-file [data-download=srt]")
    assert all(len(line) <= 42 or "-->" in line for line in srt.splitlines()), srt
    assert "Speaker 2: " in srt
    open_page.check_clean()


def test_a_file_that_is_not_audio_gets_a_plain_error(open_page: Visit, tmp_path: Path) -> None:
    page = open_page.page
    page.wait_for_selector("body.ready")
    page.click("#tab-file")
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not audio\n")
    page.set_input_files("#file-input", str(notes))
    alert = page.wait_for_selector(".alert[data-code=audio_decode_error]")
    assert "could not decode audio" in alert.inner_text()
    assert page.inner_text("#file-status") == "Failed"
    assert page.is_disabled("#view-file [data-download=txt]")
    open_page.check_clean(expected_statuses=(422,))


def test_a_blocked_microphone_is_explained(playwright: Playwright, live_server: LiveServer) -> None:
    """No fake-UI flag: headless Chromium denies the microphone as a user clicking Block would."""
    b = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    try:
        page = b.new_page()
        page.goto(live_server.url + "/")
        page.wait_for_selector("body.ready")
        page.click("#mic-start")
        alert = page.wait_for_selector(".alert[data-code^=microphone_]", timeout=15_000)
        assert "microphone" in alert.inner_text().lower()
        page.wait_for_selector("body[data-live=idle]")
    finally:
        b.close()


# -- the page's own logic, run in the browser ------------------------------------------------------------------------


def test_subtitle_cues(open_page: Visit) -> None:
    result = open_page.page.evaluate(
        """async () => {
        const f = await import('/console/formats.js');
        const w = (word, s, e) => ({word, startTimeSeconds: s, endTimeSeconds: e, confidence: 0.9});
        const words = [];
        for (let i = 0; i < 30; i++) words.push(w(`word${i}`, i * 0.5, i * 0.5 + 0.4));
        const long = {start: 0, end: 15, text: words.map(x => x.word).join(' ') + '.', words};
        const cjk = {start: 0, end: 1, text: '你好世界', words: [w('你好', 0, 0.5), w('世界', 0.5, 1)]};
        const punctuated = {start: 0, end: 2, text: 'Hello, world!',
                            words: [w('Hello', 0, 0.5), w('world', 0.6, 1.2)]};
        return {
          clock: [f.clock(3661.2345, ','), f.clock(0, '.'), f.clock(-1, '.')],
          long: f.cues({segments: [long]}),
          cjk: f.alignWords(cjk.text, cjk.words).map(a => [a.token, a.space]),
          punctuated: f.alignWords(punctuated.text, punctuated.words).map(a => a.token),
          overlap: f.cues({segments: [{start: 0, end: 3, text: 'a', words: []},
                                      {start: 2, end: 4, text: 'b', words: []}]}),
          wrapped: f.wrapLines('one two three four five six seven eight nine ten eleven twelve'),
          wrappedLong: f.wrapLines('word '.repeat(30).trim()),
          srt: f.toSrt({segments: [punctuated]}),
          vtt: f.toVtt({segments: [punctuated]}),
        };
    }"""
    )
    assert result["clock"] == ["01:01:01,235", "00:00:00.000", "00:00:00.000"]
    long = result["long"]
    assert len(long) >= 3
    assert all(c["end"] - c["start"] <= 6 and len(c["text"]) <= 84 for c in long), long
    assert " ".join(c["text"] for c in long).split() == [f"word{i}" for i in range(29)] + ["word29."]
    assert result["cjk"] == [["你好", False], ["世界", False]]  # no spaces invented between CJK words
    assert result["punctuated"] == ["Hello,", "world!"]
    first, second = result["overlap"]
    assert first["end"] <= second["start"]
    assert result["wrapped"] == ["one two three four five six seven", "eight nine ten eleven twelve"]  # balanced
    assert len(result["wrappedLong"]) == 4
    assert all(len(line) <= 42 for line in result["wrappedLong"])
    assert result["srt"] == "1\n00:00:00,000 --> 00:00:02,000\nHello, world!\n"
    assert result["vtt"] == "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello, world!\n"
    open_page.check_clean()
