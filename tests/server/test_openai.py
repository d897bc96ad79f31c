"""The OpenAI-compatible routes, driven by the official ``openai`` SDK on a live server, with real models and speech."""

from __future__ import annotations

import io
import itertools
import re
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.audio import TranscriptionDiarized
from prometheus_client.parser import text_string_to_metric_families

from tests.speech import conversation, normalise, reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16, encode_wav
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service

TINY = "whisper/tiny.en"
BASE = "whisper/base"

SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"


def seconds(match: tuple[str, ...]) -> float:
    h, m, s, ms = (int(x) for x in match)
    return h * 3600 + m * 60 + s + ms / 1000


def parse_cues(text: str, time_pattern: str) -> list[tuple[float, float, str]]:
    """``start --> end`` lines and the text under them, from SRT or WebVTT."""
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            m = re.fullmatch(f"{time_pattern} --> {time_pattern}", line)
            if m:
                groups = m.groups()
                cues.append((seconds(groups[:4]), seconds(groups[4:]), " ".join(lines[i + 1 :]).strip()))
                break
    return cues


def audio_seconds(base_url: str, model: str) -> float:
    text = httpx.get(base_url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "voxgate_audio_seconds_total" and s.labels.get("model") == model:
                return float(s.value)
    return 0.0


def translate(client: openai.OpenAI, **kwargs: Any) -> Any:
    """``audio.translations.create``, which the SDK marks deprecated (OpenAI's endpoint is); voxgate serves it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="deprecated", category=DeprecationWarning)
        return client.audio.translations.create(**kwargs)


@pytest.fixture(scope="module")
def oai(live_server: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=live_server.url + "/v1", api_key="unused", max_retries=0, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def jfk(data: Path) -> Path:
    return data / "en" / "jfk.flac"


@pytest.fixture(scope="module")
def jfk_ref(data: Path) -> str:
    return reference(data, "en/jfk.flac")


@pytest.fixture(scope="module")
def german_wav(data: Path) -> bytes:
    """7 s of the German half of the license recording, as a 16 kHz WAV."""
    samples = decode(data / "multilingual" / "en-de-license.mp3")[int(30.5 * 16000) : int(37.5 * 16000)]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(encode_linear16(samples))
    return buf.getvalue()


# -- response formats ---------------------------------------------------------------------------------------------


def test_json(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(model=TINY, file=f)
    assert isinstance(result, openai.types.audio.Transcription)
    assert wer(jfk_ref, result.text) <= 0.15, result.text


def test_text(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(model=TINY, file=f, response_format="text")
    assert isinstance(result, str)
    assert not result.lstrip().startswith("{")
    assert wer(jfk_ref, result) <= 0.15, result


def test_srt(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(model=TINY, file=f, response_format="srt")
    assert isinstance(result, str)
    blocks = result.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == [str(i) for i in range(1, len(blocks) + 1)]
    for b in blocks:
        assert re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", b.split("\n")[1]), b
    cues = parse_cues(result, SRT_TIME)
    assert len(cues) == len(blocks)
    assert all(0.0 <= start < end <= 11.05 for start, end, _ in cues)
    assert all(a[1] <= b[0] + 1e-6 for a, b in itertools.pairwise(cues))
    assert wer(jfk_ref, " ".join(text for _, _, text in cues)) <= 0.15


def test_vtt(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(model=TINY, file=f, response_format="vtt")
    assert isinstance(result, str)
    assert result.startswith("WEBVTT\n\n")
    assert "," not in re.findall(r"\S+ --> \S+", result)[0]
    cues = parse_cues(result, VTT_TIME)
    assert cues
    assert all(0.0 <= start < end <= 11.05 for start, end, _ in cues)
    assert wer(jfk_ref, " ".join(text for _, _, text in cues)) <= 0.15


def test_vtt_content_type(live_server: Any, jfk: Path) -> None:
    with open(jfk, "rb") as f:
        response = httpx.post(
            live_server.url + "/v1/audio/transcriptions",
            files={"file": ("jfk.flac", f, "audio/flac")},
            data={"model": TINY, "response_format": "vtt"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/vtt")


def test_verbose_json_words_and_segments(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(
            model=TINY, file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert isinstance(result, openai.types.audio.TranscriptionVerbose)
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0, abs=0.05)
    assert wer(jfk_ref, result.text) <= 0.15

    assert result.words
    previous = 0.0
    for w in result.words:
        assert previous - 1e-6 <= w.start <= w.end <= 11.05, w
        previous = w.start
    assert normalise(" ".join(w.word for w in result.words)) == normalise(result.text)

    assert result.segments
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    for s in result.segments:
        assert 0.0 <= s.start < s.end <= 11.05
        assert s.text.strip()
        assert s.avg_logprob <= 0.0
        assert 0.0 <= s.no_speech_prob <= 1.0
    assert normalise(" ".join(s.text for s in result.segments)) == normalise(result.text)
    # words fall inside the segments' span
    assert result.words[0].start >= result.segments[0].start - 0.05
    assert result.words[-1].end <= result.segments[-1].end + 0.05


def test_verbose_json_granularities_choose_the_fields(oai: openai.OpenAI, data: Path) -> None:
    path = data / "en" / "spk2_snt2.wav"
    with open(path, "rb") as f:
        words_only = oai.audio.transcriptions.create(
            model=TINY, file=f, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert words_only.words
    assert not words_only.segments
    with open(path, "rb") as f:
        default = oai.audio.transcriptions.create(model=TINY, file=f, response_format="verbose_json")
    assert default.segments
    assert not default.words
    assert normalise(default.text) == normalise(words_only.text)
    assert "joy" in normalise(default.text)


def test_prompt(oai: openai.OpenAI, data: Path) -> None:
    path = data / "vocabulary" / "comfyui.mp3"
    with open(path, "rb") as f:
        plain = oai.audio.transcriptions.create(model=TINY, file=f)
    with open(path, "rb") as f:
        prompted = oai.audio.transcriptions.create(
            model=TINY, file=f, prompt="We set up ComfyUI and opened the ComfyUI folder."
        )
    assert "folder" in normalise(plain.text)
    assert "folder" in normalise(prompted.text)
    # the prompt's spelling is picked up; without it the small model writes something else
    assert "comfyui" not in plain.text.lower().replace(" ", "")
    assert "comfyui" in prompted.text.lower(), prompted.text


def test_language_hint(oai: openai.OpenAI, jfk: Path, jfk_ref: str) -> None:
    with open(jfk, "rb") as f:
        result = oai.audio.transcriptions.create(model=TINY, file=f, language="en")
    assert wer(jfk_ref, result.text) <= 0.15


# -- translation and models ---------------------------------------------------------------------------------------


def test_translation_to_english(oai: openai.OpenAI, german_wav: bytes) -> None:
    transcript = oai.audio.transcriptions.create(
        model=BASE, file=("de.wav", german_wav), response_format="verbose_json"
    )
    assert transcript.language == "german"
    translated = translate(oai, model=BASE, file=("de.wav", german_wav))
    assert isinstance(translated, openai.types.audio.Translation)
    english = set(normalise(translated.text).split())
    german = set(normalise(transcript.text).split())
    assert "software" in english
    assert {"the", "and"} & english, translated.text
    assert not {"der", "die", "und", "zu"} & english, translated.text
    assert {"der", "die", "und", "zu"} & german, transcript.text


def post_translation(live_server: Any, data: Path, response_format: str) -> httpx.Response:
    """A translation of spk2_snt2 by whisper/base over plain HTTP (the SDK would parse what these tests check raw)."""
    with open(data / "en" / "spk2_snt2.wav", "rb") as f:
        return httpx.post(
            live_server.url + "/v1/audio/translations",
            files={"file": ("a.wav", f, "audio/wav")},
            data={"model": BASE, "response_format": response_format},
            timeout=120,
        )


def test_translation_verbose_says_translate(live_server: Any, data: Path) -> None:
    response = post_translation(live_server, data, "verbose_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "translate"
    assert "joy" in normalise(body["text"])


def test_whisper_1_means_the_default_model(oai: openai.OpenAI, live_server: Any, data: Path) -> None:
    before_base, before_tiny = audio_seconds(live_server.url, BASE), audio_seconds(live_server.url, TINY)
    with open(data / "en" / "spk2_snt2.wav", "rb") as f:
        result = oai.audio.transcriptions.create(model="whisper-1", file=f)
    assert "joy" in normalise(result.text)
    assert audio_seconds(live_server.url, BASE) - before_base == pytest.approx(1.76, abs=0.05)
    assert audio_seconds(live_server.url, TINY) == before_tiny


def test_diarized_json(oai: openai.OpenAI, data: Path) -> None:
    """OpenAI's speaker-annotated format, parsed by the SDK's own TranscriptionDiarized model."""
    clips = ["en/spk1_snt2.wav", "en/spk2_snt3.wav", "en/spk1_snt4.wav"]
    audio, _ = conversation(data, clips)
    result = oai.audio.transcriptions.create(
        model=TINY, file=("talk.wav", encode_wav(audio)), response_format="diarized_json"
    )
    assert isinstance(result, TranscriptionDiarized)
    assert [s.speaker for s in result.segments] == ["A", "B", "A"]
    assert all(s.type == "transcript.text.segment" and s.start < s.end for s in result.segments)
    for segment, clip in zip(result.segments, clips, strict=True):
        assert wer(reference(data, clip), segment.text) <= 0.2
    assert result.duration == pytest.approx(len(audio) / 16_000, abs=0.01)
    assert normalise(result.text) == normalise(" ".join(s.text for s in result.segments))


def test_diarized_json_is_for_transcriptions(live_server: Any, data: Path) -> None:
    response = post_translation(live_server, data, "diarized_json")
    assert response.status_code == 400, response.text
    assert "diarized_json" in response.json()["error"]["message"]


def test_models_list(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert TINY in ids
    assert BASE in ids


# -- errors -------------------------------------------------------------------------------------------------------


def _assert_api_error(exc: openai.APIStatusError, status: int, code: str) -> None:
    assert exc.status_code == status
    assert exc.code == code, exc.body
    assert isinstance(exc.body, dict)
    assert isinstance(exc.body.get("message"), str)
    assert exc.body["message"].strip()
    assert "Traceback" not in exc.response.text


@pytest.mark.parametrize(
    ("kwargs", "error", "status", "code"),
    [
        pytest.param({"response_format": "docx"}, openai.BadRequestError, 400, "invalid_argument", id="bad-format"),
        pytest.param({"model": "whisper/nope"}, openai.NotFoundError, 404, "model_not_found", id="unknown-model"),
        pytest.param({"model": "acme/whisper-9"}, openai.NotFoundError, 404, "model_not_found", id="unknown-provider"),
        pytest.param({"temperature": 1.5}, openai.BadRequestError, 400, "invalid_argument", id="temperature"),
        pytest.param(
            {"response_format": "verbose_json", "timestamp_granularities": ["char"]},
            openai.BadRequestError,
            400,
            "invalid_argument",
            id="granularity",
        ),
        pytest.param({"language": "de"}, openai.BadRequestError, 400, "invalid_argument", id="english-only-model"),
        pytest.param(
            {"file": ("notes.txt", b"certainly not audio " * 40)},
            openai.UnprocessableEntityError,
            422,
            "audio_decode_error",
            id="not-audio",
        ),
        pytest.param(
            {"file": ("empty.wav", b"")}, openai.UnprocessableEntityError, 422, "empty_audio", id="empty-file"
        ),
    ],
)
def test_transcription_errors(
    oai: openai.OpenAI,
    data: Path,
    kwargs: dict[str, Any],
    error: type[openai.APIStatusError],
    status: int,
    code: str,
) -> None:
    args: dict[str, Any] = {"model": TINY, "file": ("a.wav", (data / "en" / "spk2_snt2.wav").read_bytes())}
    args.update(kwargs)
    with pytest.raises(error) as exc:
        oai.audio.transcriptions.create(**args)
    _assert_api_error(exc.value, status, code)


def test_translation_with_an_english_only_model(oai: openai.OpenAI, data: Path) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        translate(oai, model=TINY, file=("a.wav", (data / "en" / "spk2_snt2.wav").read_bytes()))
    _assert_api_error(exc.value, 400, "invalid_argument")


def test_missing_file_is_a_bad_request(live_server: Any) -> None:
    response = httpx.post(live_server.url + "/v1/audio/transcriptions", data={"model": TINY}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"


def test_api_key_with_the_sdk(tmp_path: Path, service: Service, data: Path) -> None:
    """The SDK sends ``Authorization: Bearer <api_key>``: a keyed server takes the right key and refuses others."""
    app = create_app(Settings(home=tmp_path, api_keys=["k1"], preload=[]), service=service)
    audio = ("a.wav", (data / "en" / "spk2_snt2.wav").read_bytes())
    # The TestClient (an httpx client) carries the SDK's requests to the app; it is closed by its own context.
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1") as http:
        good = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="k1", http_client=http, max_retries=0)
        assert "joy" in normalise(good.audio.transcriptions.create(model=TINY, file=audio).text)
        bad = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="k2", http_client=http, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.audio.transcriptions.create(model=TINY, file=audio)
        _assert_api_error(exc.value, 401, "unauthenticated")
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
