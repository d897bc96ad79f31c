"""Local Whisper through faster-whisper / CTranslate2.

One code path: faster-whisper's batched pipeline, which cuts the audio at silences found by silero VAD (chunks of
at most 30 s), computes log-mel features per chunk and decodes ``batch_size`` chunks per CTranslate2 call. With
``batch_size=1`` that is plain sequential decoding.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from voxgate.config import Settings
from voxgate.engines.base import Capabilities, Listening, weigh_languages
from voxgate.errors import EngineError, InvalidRequest
from voxgate.models.catalog import ModelSpec
from voxgate.models.materialize import materialize
from voxgate.types import (
    SAMPLE_RATE,
    Audio,
    LanguageScore,
    ProgressCallback,
    Segment,
    Transcript,
    TranscriptionOptions,
    Word,
)
from voxgate.vocabulary import apply_vocabulary

__all__ = ["WhisperEngine", "load"]

log = logging.getLogger(__name__)

_CHUNK_SECONDS = 30
# faster-whisper's defaults for "this window is silence": no-speech probability high and decoder unsure.
_NO_SPEECH = 0.6
_LOW_LOGPROB = -1.0
_MAX_COMPRESSION = 2.4

# Drafts (streaming partials) encode only the audio they have plus this much padding instead of a full 30 s window:
# the encoder's cost is proportional to its input, and with the decoder's output capped in proportion to the audio
# the transcripts match full-window decoding (bench/draft_context.py measures both on the en clips).
_DRAFT_PAD_FRAMES = 500  # 5 s of 10 ms frames
_DRAFT_TOKENS_PER_SECOND = 7
_FULL_FRAMES = 3000
_MIN_UTTERANCE_SECONDS = 0.1
# faster-whisper's defaults for attaching punctuation to words.
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001


def _draft_features(model: WhisperModel, clips: Sequence[Audio]) -> tuple[np.ndarray, float]:
    """Log-mel features of every clip, padded (with the features of silence) to one shared, shortened length."""
    mels = [model.feature_extractor(audio)[..., :-1] for audio in clips]
    longest = max(m.shape[1] for m in mels)
    frames = min(_FULL_FRAMES, -(-(longest + _DRAFT_PAD_FRAMES) // 100) * 100)
    silence = model.feature_extractor(np.zeros(SAMPLE_RATE, dtype=np.float32))[..., :-1].min()
    padded = [
        np.pad(m, ((0, 0), (0, frames - m.shape[1])), constant_values=silence) if m.shape[1] < frames else m[:, :frames]
        for m in mels
    ]
    return np.stack(padded), longest / 100


def _select(encoder_output: ctranslate2.StorageView, rows: list[int]) -> ctranslate2.StorageView:
    """Some batch rows of an encoder output (on the CPU)."""
    array = np.asarray(encoder_output)
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array[rows]))


def _draft_tokens(seconds: float) -> int:
    return int(seconds * _DRAFT_TOKENS_PER_SECOND) + 10


def _repeats(text: str, n: int = 4) -> bool:
    """True when some run of ``n`` words occurs twice: the decoder's usual loop on trailing silence."""
    words = [w.strip(".,!?;:").lower() for w in text.split()]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams)


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw))


_SPEECH_FLOOR = 0.75
"""Encoder frames pooled for the voice embedding: those whose log-mel energy is within 30 dB of the clip's loudest
(Whisper's log-mel is log10 power scaled by 1/4, so 0.75 is 3 decades)."""


def pool_speech_frames(hidden: np.ndarray, mel: np.ndarray, samples: int) -> npt.NDArray[np.float32]:
    """Mean and standard deviation of the encoder's hidden states ``[frames, width]`` over the frames that hold
    speech: inside the clip's ``samples`` (not the padding) and loud enough in the log-mel ``[bins, mel frames]``
    (each encoder frame covers two mel frames). A clip of silence pools all its frames."""
    inside = max(1, min(hidden.shape[0], -(-samples // 320)))
    energy = mel[:, : inside * 2].mean(axis=0)
    if energy.shape[0] % 2:
        energy = np.append(energy, energy[-1])
    frame_energy = energy.reshape(-1, 2).max(axis=1)
    keep = frame_energy >= frame_energy.max() - _SPEECH_FLOOR
    states = hidden[:inside][keep[:inside]].astype(np.float32)
    return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)


class WhisperEngine:
    def __init__(
        self,
        model_id: str,
        model_dir: Path,
        *,
        languages: tuple[str, ...],
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        batch_size: int = 8,
        replicas: int = 2,
    ) -> None:
        self._model_id = model_id
        try:
            # Two CTranslate2 replicas (sharing the weights) when the scheduler has an urgent lane: a stream's final
            # then runs beside a long window instead of queueing behind it inside CTranslate2.
            self._model = WhisperModel(
                str(model_dir),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=max(1, replicas),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"could not load {model_id} from {model_dir}: {exc}") from exc
        self._pipeline = BatchedInferencePipeline(self._model)
        self._batch_size = max(1, batch_size)
        multilingual = bool(self._model.model.is_multilingual)
        self._capabilities = Capabilities(
            languages=languages if multilingual else ("en",),
            translate=multilingual,
            language_detection=multilingual,
            max_batch=self._batch_size,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def model(self) -> WhisperModel:
        """The faster-whisper model, for analysers that reuse its encoder (language ID)."""
        return self._model

    def close(self) -> None:
        del self._pipeline
        del self._model

    def _check(self, options: TranscriptionOptions) -> None:
        caps = self._capabilities
        if options.language is not None and options.language not in caps.languages:
            if caps.languages == ("en",):
                raise InvalidRequest(
                    f"{self._model_id} recognises English only, not {options.language!r}; "
                    "use a multilingual model such as whisper/base"
                )
            raise InvalidRequest(f"{self._model_id} does not support language {options.language!r}")
        if options.task not in ("transcribe", "translate"):
            raise InvalidRequest(f"unknown task {options.task!r}: use 'transcribe' or 'translate'")
        if options.task == "translate" and not caps.translate:
            raise InvalidRequest(f"{self._model_id} is English-only and cannot translate; use whisper/base")

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        """One encoder pass and one greedy generate call for all items; each item keeps its own language and prompt."""
        for _, options in items:
            self._check(options)
        model = self._model
        multilingual = self._capabilities.language_detection
        try:
            features, longest = _draft_features(model, [audio for audio, _ in items])
            encoder_output = model.encode(features)
            detected = (
                model.model.detect_language(encoder_output)
                if multilingual and any(o.language is None for _, o in items)
                else None
            )
            prompts, tokenizers, languages = [], [], []
            for i, (_, options) in enumerate(items):
                language, probability = options.language or "en", 1.0
                if options.language is None and detected is not None:
                    ranked = [(t[2:-2], float(p)) for t, p in detected[i]]
                    language, probability = weigh_languages(ranked, options.language_prior)[0]
                tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=options.task, language=language)
                previous = tokenizer.encode(" " + options.prompt.strip()) if options.prompt else []
                hotwords = ", ".join(p.strip() for p in options.prompts if p.strip()) or None
                prompts.append(model.get_prompt(tokenizer, previous, without_timestamps=True, hotwords=hotwords))
                tokenizers.append(tokenizer)
                languages.append((language, float(probability)))
            # CTranslate2 needs <|startoftranscript|> at one position across a batch: decode together only the
            # items whose prompts put it at the same place (same context length).
            results: list[Any] = [None] * len(items)
            groups: dict[int, list[int]] = {}
            for i, prompt in enumerate(prompts):
                groups.setdefault(prompt.index(tokenizers[i].sot), []).append(i)
            max_length = min(model.max_length, max(len(p) for p in prompts) + _draft_tokens(longest))
            suppress = list(get_suppressed_tokens(tokenizers[0], [-1]) or ())
            for members in groups.values():
                generated = model.model.generate(
                    encoder_output if len(members) == len(items) else _select(encoder_output, members),
                    [prompts[i] for i in members],
                    beam_size=1,
                    max_length=max_length,
                    suppress_blank=True,
                    suppress_tokens=suppress,
                    return_scores=True,
                    return_no_speech_prob=True,
                )
                for i, result in zip(members, generated, strict=True):
                    results[i] = result
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self._model_id} failed: {exc}") from exc
        out = []
        for (audio, options), result, tokenizer, (language, probability) in zip(
            items, results, tokenizers, languages, strict=True
        ):
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
            silent = result.no_speech_prob > _NO_SPEECH and avg_logprob < _LOW_LOGPROB
            text = "" if silent else tokenizer.decode(tokens).strip()
            if text and _compression_ratio(text) > _MAX_COMPRESSION:
                text = ""  # a repetition loop, not speech: show nothing rather than garbage
            duration = len(audio) / SAMPLE_RATE
            segment = Segment(text=text, start=0.0, end=duration, language=language, avg_logprob=float(avg_logprob))
            out.append(
                Transcript(
                    segments=apply_vocabulary([segment], options.prompts) if text else (),
                    duration=duration,
                    language=language,
                    language_probability=probability,
                    model_id=self._model_id,
                )
            )
        return out

    def detect_language(self, audio: Audio, top: int = 5) -> tuple[LanguageScore, ...]:
        """Language identification over (at most the last 25 s of) ``audio``, on a shortened encoder window."""
        if not self._capabilities.language_detection:
            return (LanguageScore("en", 1.0),)
        clip = audio[-(_FULL_FRAMES - _DRAFT_PAD_FRAMES) * 160 :]
        try:
            features, _ = _draft_features(self._model, [clip])
            ranked = self._model.model.detect_language(self._model.encode(features))[0]
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self._model_id} language identification failed: {exc}") from exc
        return tuple(LanguageScore(token[2:-2], round(float(p), 4)) for token, p in ranked[:top])

    def listen(self, audio: Audio, top: int = 5) -> Listening:
        """One encoder pass over (at most the last 25 s of) ``audio`` that serves the voice profile twice: language
        identification (as :meth:`detect_language`) and the encoder's hidden states pooled over the speech frames
        (:func:`pool_speech_frames`), the input of the trained profile heads."""
        clip = audio[-(_FULL_FRAMES - _DRAFT_PAD_FRAMES) * 160 :]
        try:
            features, _ = _draft_features(self._model, [clip])
            encoder_output = self._model.encode(features)
            if self._capabilities.language_detection:
                ranked = self._model.model.detect_language(encoder_output)[0]
                language = tuple(LanguageScore(token[2:-2], round(float(p), 4)) for token, p in ranked[:top])
            else:
                language = (LanguageScore("en", 1.0),)
            hidden = np.asarray(encoder_output)[0]
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self._model_id} encoder pass failed: {exc}") from exc
        mel = features[0]
        return Listening(language, pool_speech_frames(hidden, mel, len(clip)))

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        """A streaming turn (at most 30 s): beam search and word times like :meth:`transcribe`, on a shortened window.

        The encoder sees the turn plus 5 s of padding instead of a full 30 s window, which is what makes a final cost
        a fraction of a file decode. If the decoder loops (a compression ratio over 2.4), the turn is decoded again
        the standard way.
        """
        self._check(options)
        if len(audio) > _FULL_FRAMES * 160 - _DRAFT_PAD_FRAMES * 160:
            return self.transcribe(audio, options)
        model = self._model
        duration = len(audio) / SAMPLE_RATE
        if duration < _MIN_UTTERANCE_SECONDS:  # too short to hold a word, and too short to align one to
            return Transcript((), duration, options.language or "en", 1.0, (), self._model_id)
        multilingual = self._capabilities.language_detection
        try:
            features, _ = _draft_features(model, [audio])
            frames = min(features.shape[-1], round(duration * 100))
            encoder_output = model.encode(features)
            language, probability = options.language or "en", 1.0
            candidates: tuple[LanguageScore, ...] = ()
            if options.language is None and multilingual:
                ranked = [(t[2:-2], float(p)) for t, p in model.model.detect_language(encoder_output)[0]]
                language, probability = weigh_languages(ranked, options.language_prior)[0]
                # The turn's own scores, without the prior: what a stream adds to its evidence.
                candidates = tuple(LanguageScore(code, p) for code, p in ranked[:5])
            tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=options.task, language=language)
            previous = tokenizer.encode(" " + options.prompt.strip()) if options.prompt else []
            hotwords = ", ".join(p.strip() for p in options.prompts if p.strip()) or None
            prompt = model.get_prompt(tokenizer, previous, without_timestamps=True, hotwords=hotwords)
            result = model.model.generate(
                encoder_output,
                [prompt],
                beam_size=options.beam_size,
                max_length=min(model.max_length, len(prompt) + _draft_tokens(duration)),
                suppress_blank=True,
                suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1]) or ()),
                return_scores=True,
                return_no_speech_prob=True,
            )[0]
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
            if not tokens or (result.no_speech_prob > _NO_SPEECH and avg_logprob < _LOW_LOGPROB):
                return Transcript((), duration, language, probability, candidates, self._model_id)
            text = tokenizer.decode(tokens).strip()
            if _compression_ratio(text) > _MAX_COMPRESSION or _repeats(text):
                return self.transcribe(audio, options)
            words: tuple[Word, ...] = ()
            if options.word_timestamps:
                segment: dict[str, Any] = {"tokens": tokens, "seek": 0, "start": 0.0, "end": duration}
                model.add_word_timestamps([[segment]], tokenizer, encoder_output, frames, _PREPEND, _APPEND, 0.0)
                words = tuple(
                    Word(
                        w["word"].strip(),
                        round(float(w["start"]), 3),
                        round(float(min(w["end"], duration)), 3),
                        round(float(w["probability"]), 4),
                    )
                    for w in segment.get("words", ())
                    if w["word"].strip()
                )
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self._model_id} failed: {exc}") from exc
        seg = Segment(text, 0.0, duration, words, language, float(avg_logprob), float(result.no_speech_prob))
        return Transcript(
            segments=apply_vocabulary([seg], options.prompts),
            duration=duration,
            language=language,
            language_probability=probability,
            language_candidates=candidates,
            model_id=self._model_id,
        )

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        self._check(options)
        duration = len(audio) / SAMPLE_RATE
        detect = options.language is None and self._capabilities.language_detection
        clips: list[dict[str, float]] | None = None
        if not options.vad_filter:
            clips = [
                {"start": float(t), "end": min(float(t + _CHUNK_SECONDS), duration)}
                for t in range(0, max(1, int(duration + _CHUNK_SECONDS - 1e-9)), _CHUNK_SECONDS)
                if t < duration
            ]
        hotwords = ", ".join(p.strip() for p in options.prompts if p.strip()) or None
        try:
            raw_segments, info = self._pipeline.transcribe(
                audio,
                language=options.language,
                task=options.task,
                beam_size=options.beam_size,
                temperature=options.temperature,
                initial_prompt=options.prompt or None,
                hotwords=hotwords,
                word_timestamps=options.word_timestamps,
                vad_filter=options.vad_filter,
                clip_timestamps=clips,
                batch_size=self._batch_size,
                multilingual=detect,
            )
            segments = []
            for s in raw_segments:
                segment = _segment(s, info.language)
                if s.compression_ratio > _MAX_COMPRESSION or _repeats(s.text):
                    segment = self._redecode(audio, segment, options)
                if detect and segment.text:
                    segment = self._identify(audio, segment)
                segments.append(segment)
                if progress is not None:
                    progress(s.end, duration)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self._model_id} failed: {exc}") from exc
        candidates: tuple[LanguageScore, ...] = ()
        if info.all_language_probs:
            candidates = tuple(LanguageScore(code, float(p)) for code, p in info.all_language_probs[:5])
        return Transcript(
            segments=apply_vocabulary([s for s in segments if s.text], options.prompts),
            duration=duration,
            language=info.language,
            language_probability=float(info.language_probability),
            language_candidates=candidates,
            model_id=self._model_id,
        )

    def _identify(self, audio: Audio, segment: Segment) -> Segment:
        """The batched pipeline detects a language per chunk but does not say which: ask again for the segment.

        The scores stay on the segment, so a voice profile of the same audio need not identify it a second time.
        """
        clip = audio[int(segment.start * SAMPLE_RATE) : int(segment.end * SAMPLE_RATE)]
        if len(clip) < SAMPLE_RATE // 2:
            return segment
        scores = self.detect_language(clip)
        return replace(segment, language=scores[0].code, language_scores=scores)

    def _redecode(self, audio: Audio, segment: Segment, options: TranscriptionOptions) -> Segment:
        """A segment the batched pass decoded into a loop: decode its audio again with temperature fallback."""
        start = int(segment.start * SAMPLE_RATE)
        clip = audio[start : int(segment.end * SAMPLE_RATE)]
        log.info(
            "re-decoding a repetitive segment at %.1f-%.1f s with temperature fallback", segment.start, segment.end
        )
        parts, info = self._model.transcribe(
            clip,
            language=options.language or segment.language,
            task=options.task,
            beam_size=options.beam_size,
            temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            compression_ratio_threshold=_MAX_COMPRESSION,
            condition_on_previous_text=False,
            initial_prompt=options.prompt or None,
            word_timestamps=options.word_timestamps,
            vad_filter=False,
        )
        redone = [_segment(p, info.language).shifted(segment.start) for p in parts]
        if not redone:
            return replace(segment, text="", words=())
        return Segment(
            text=" ".join(r.text for r in redone),
            start=segment.start,
            end=segment.end,
            words=tuple(w for r in redone for w in r.words),
            language=segment.language,
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
        )


def _segment(s: Any, language: str) -> Segment:
    """A faster-whisper segment as voxgate's."""
    words = tuple(
        Word(
            word=w.word.strip(),
            start=round(float(w.start), 3),
            end=round(float(w.end), 3),
            confidence=round(float(w.probability), 4),
        )
        for w in (s.words or ())
        if w.word.strip()
    )
    return Segment(
        text=s.text.strip(),
        start=round(float(s.start), 3),
        end=round(float(s.end), 3),
        words=words,
        language=language,
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
    )


def load(spec: ModelSpec, settings: Settings) -> WhisperEngine:
    """Registry factory: materialise the model's files and load them."""
    return WhisperEngine(
        spec.id,
        materialize(spec, settings.home),
        languages=spec.languages,
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        batch_size=settings.batch_size,
        replicas=2 if settings.urgent_lane else 1,
    )
