"""A fake of Deepgram's pre-recorded ``POST /v1/listen``.

Checks what Deepgram checks: ``Authorization: Token <key>`` exactly, a known ``model``, known query parameters with
well-formed values (booleans ``true``/``false``; ``keyterm`` only on Nova-3 models and ``keywords`` only on the
others, ``keywords`` as ``TERM`` or ``TERM:INTENSIFIER``; ``language`` or ``detect_language``, not both), an audio
``Content-Type``, and a body that is the 16 kHz mono 16-bit WAV voxgate promises to send.

Answers like the vendor: ``metadata`` (``request_id``, ``sha256``, ``duration``, ``channels``, ``model_info``...)
and ``results.channels[0].alternatives[0]`` with ``transcript``, ``confidence`` and ``words[]`` (``word`` in lower
case without punctuation, ``start``, ``end``, ``confidence``, and ``punctuated_word`` when punctuating), the
channel's ``detected_language`` and ``language_confidence`` when ``detect_language=true``, and
``results.utterances[]`` (words split at pauses of ``utt_split`` seconds, 0.8 by default) when ``utterances=true``.
Errors are ``{"err_code", "err_msg", "request_id"}``. The words come from voxgate's local engine, which gets the
request's ``language`` (or detects it) and its key terms as hotwords.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tests.engines.fake_vendors import FakeVendor, WireError, faulted, read_wav, received_from, timestamp
from voxgate.models.catalog import WHISPER_LANGUAGES
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions, Word

__all__ = ["MODELS", "check_query", "create_app", "error_body"]

MODELS = {"nova-3": "2025-04-17.21547", "nova-2": "2024-01-09.29447"}
_BOOLEANS = {
    "punctuate", "smart_format", "utterances", "detect_language", "diarize", "numerals", "paragraphs",
    "profanity_filter", "filler_words",
}  # fmt: skip
_KNOWN = _BOOLEANS | {"model", "language", "keyterm", "keywords", "utt_split", "tag"}
_KEYWORD = re.compile(r"^(?P<term>[^:]+?)(?::(?P<boost>-?\d+(?:\.\d+)?))?$")
_ERROR_CODES = {401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 429: "TOO_MANY_REQUESTS"}


def error_body(status: int, message: str) -> dict[str, Any]:
    code = _ERROR_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "Bad Request")
    if status == 429:
        message = "Too many requests. Please try again later"
    elif status >= 500:
        message = "An internal server error occurred."
    return {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}


def check_query(
    query: Sequence[tuple[str, str]], known: Collection[str], booleans: Collection[str]
) -> tuple[str, dict[str, str], list[str]]:
    """What Deepgram's batch and live APIs check alike: ``known`` parameters only, each once (but ``keyterm`` and
    ``keywords``), ``booleans`` spelled ``true``/``false``, a known ``model``, ``keyterm`` only on Nova-3 models and
    ``keywords`` (``TERM`` or ``TERM:INTENSIFIER``) only on the others. The model, the single parameters, the terms."""
    unknown = sorted({k for k, _ in query} - set(known))
    if unknown:
        raise WireError(f"Unknown query parameter(s): {', '.join(unknown)}")
    single = {k: v for k, v in query if k not in ("keyterm", "keywords")}
    for name in single:
        if sum(1 for k, _ in query if k == name) > 1:
            raise WireError(f"'{name}' was given more than once")
    for name in set(booleans) & set(single):
        if single[name] not in ("true", "false"):
            raise WireError(f"Invalid value for '{name}': {single[name]!r} (expected true or false)")
    model = single.get("model", "base")
    if model not in MODELS:
        raise WireError("No such model/language/tier combination found.")
    keyterms = [v for k, v in query if k == "keyterm"]
    keywords = [v for k, v in query if k == "keywords"]
    if keyterms and not model.startswith("nova-3"):
        raise WireError("Keyterm Prompting is only available with Nova-3 models. Use keywords instead.")
    if keywords and model.startswith("nova-3"):
        raise WireError("Keywords are not supported for Nova-3. Use keyterm instead.")
    terms = [t.strip() for t in keyterms if t.strip()]
    for value in keywords:
        match = _KEYWORD.match(value)
        if match is None:
            raise WireError(f"Invalid keyword {value!r}: expected KEYWORD or KEYWORD:INTENSIFIER")
        terms.append(match["term"].strip())
    return model, single, terms


def _check(query: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str], list[str], float]:
    model, single, terms = check_query(query, _KNOWN, _BOOLEANS)
    if "language" in single and single.get("detect_language") == "true":
        raise WireError("Use either language or detect_language=true, not both.")
    language = single.get("language")
    if language is not None and language.split("-")[0].lower() not in WHISPER_LANGUAGES:
        raise WireError("No such model/language/tier combination found.")
    try:
        utt_split = float(single.get("utt_split", "0.8"))
    except ValueError:
        raise WireError(f"Invalid value for 'utt_split': {single['utt_split']!r}") from None
    return model, single, terms, utt_split


def _word(w: Word, punctuate: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "word": re.sub(r"[^\w']+", "", w.word).lower(),
        "start": round(w.start, 2),
        "end": round(w.end, 2),
        "confidence": round(w.confidence, 4),
    }
    if punctuate:
        out["punctuated_word"] = w.word
    return out


def _text(words: Sequence[Word], punctuate: bool) -> str:
    if punctuate:
        return " ".join(w.word for w in words)
    return " ".join(re.sub(r"[^\w']+", "", w.word).lower() for w in words)


def listen_response(
    t: Transcript, wav: bytes, duration: float, model: str, params: dict[str, str], utt_split: float
) -> dict[str, Any]:
    punctuate = params.get("punctuate") == "true" or params.get("smart_format") == "true"
    words = list(t.words)
    confidence = round(sum(w.confidence for w in words) / len(words), 4) if words else 0.0
    model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, model))
    channel: dict[str, Any] = {
        "alternatives": [
            {
                "transcript": _text(words, punctuate),
                "confidence": confidence,
                "words": [_word(w, punctuate) for w in words],
            }
        ]
    }
    if params.get("detect_language") == "true":
        channel["detected_language"] = t.language
        channel["language_confidence"] = round(t.language_probability or 0.0, 4)
    results: dict[str, Any] = {"channels": [channel]}
    if params.get("utterances") == "true":
        runs: list[list[Word]] = []
        for w in words:
            if runs and w.start - runs[-1][-1].end < utt_split:
                runs[-1].append(w)
            else:
                runs.append([w])
        results["utterances"] = [
            {
                "start": round(run[0].start, 2),
                "end": round(run[-1].end, 2),
                "confidence": round(sum(w.confidence for w in run) / len(run), 4),
                "channel": 0,
                "transcript": _text(run, punctuate),
                "words": [_word(w, punctuate) for w in run],
                "id": str(uuid.uuid4()),
            }
            for run in runs
        ]
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": hashlib.sha256(wav).hexdigest(),
            "created": timestamp(),
            "duration": round(duration, 6),
            "channels": 1,
            "models": [model_uuid],
            "model_info": {model_uuid: {"name": f"general-{model}", "version": MODELS[model], "arch": model}},
        },
        "results": results,
    }


def create_app(vendor: FakeVendor) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/listen")
    async def listen(request: Request) -> Response:
        received = vendor.record(received_from(request, "listen"))
        if request.headers.get("authorization") != f"Token {vendor.api_key}":
            received.status = 401
            return JSONResponse(error_body(401, "Invalid credentials."), 401)
        scripted = await faulted(vendor, received, error_body)
        if scripted is not None:
            return scripted
        try:
            content_type = request.headers.get("content-type", "")
            if not content_type.startswith("audio/"):
                raise WireError(f"Content-Type {content_type!r}: send the audio with an audio/* type")
            model, params, terms, utt_split = _check(received.query)
            wav = await request.body()
            audio = read_wav(wav)
        except WireError as exc:
            received.status = exc.status
            return JSONResponse(error_body(exc.status, exc.message), exc.status)
        duration = len(audio) / SAMPLE_RATE
        received.audio_seconds = duration
        # Deepgram transcribes English unless told another language or to detect it.
        detect = params.get("detect_language") == "true"
        language = None if detect else params.get("language", "en").split("-")[0].lower()
        options = TranscriptionOptions(language=language, prompts=tuple(terms), word_timestamps=True)
        transcript = await run_in_threadpool(vendor.transcribe, audio, options)
        received.status = 200
        return JSONResponse(listen_response(transcript, wav, duration, model, params, utt_split))

    return app
