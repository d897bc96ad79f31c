"""What a request asks of the core: the one mapping from the routes' fields to :class:`TranscriptionOptions` (and, for
a stream, its :class:`SessionConfig`).

Each route keeps its own field names — the reference API's ``transcribeConfig`` (REST and WebSocket) and OpenAI's
form fields — and every one of them reaches the core through :func:`transcription_options`. This module imports the
streaming core, so the client SDK (which needs only :mod:`voxgate.protocol.http` and :mod:`voxgate.protocol.ws`)
never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from voxgate.errors import InvalidRequest
from voxgate.models.catalog import ALIASES, PROVIDERS
from voxgate.protocol.http import (
    PROVIDER_BLOCKS,
    DiarizationConfig,
    ReferenceConfig,
    TranscribeConfig,
    normalize_language,
)
from voxgate.protocol.ws import StreamTranscribeConfig
from voxgate.streaming.policy import TurnMode, TurnPolicy
from voxgate.streaming.session import SessionConfig
from voxgate.types import (
    AssemblyAIOptions,
    DeepgramOptions,
    DiarizationOptions,
    GroqOptions,
    SonioxOptions,
    TranscriptionOptions,
    VendorOptions,
)

__all__ = [
    "check_prompts",
    "diarization",
    "inactivity_timeout",
    "options_of",
    "session_config",
    "transcription_options",
    "turn_policy",
    "vendor_options",
    "wants_profile",
]

PROMPT_FORBIDDEN = "#/@|"
"""Characters the reference refuses in a ``prompts`` item (INVALID_ARGUMENT)."""


def transcription_options(
    *,
    language: str | None,
    prompts: Iterable[str] = (),
    prompt: str | None = None,
    word_timestamps: bool = True,
    temperature: float = 0.0,
    task: str = "transcribe",
) -> TranscriptionOptions:
    """A language tag as clients send it (``en-US``, ``auto``), vocabulary prompts (blank ones dropped), OpenAI's
    free-text ``prompt`` (empty means none), and the rest as they are."""
    return TranscriptionOptions(
        language=normalize_language(language),
        prompts=tuple(p for p in prompts if p.strip()),
        prompt=prompt or None,
        word_timestamps=word_timestamps,
        temperature=temperature,
        task=task,
    )


def options_of(config: TranscribeConfig | StreamTranscribeConfig) -> TranscriptionOptions:
    """The options of a ``transcribeConfig`` (REST or WebSocket: the same field names), with its provider block.
    Raises :class:`InvalidRequest` (``invalid_argument``) for a prompt the reference refuses or a block that matches
    no model of the request."""
    check_prompts(config.prompts)
    options = transcription_options(
        language=config.language, prompts=config.prompts, word_timestamps=config.include_word_timestamps
    )
    return replace(options, vendor=vendor_options(config))


def check_prompts(prompts: Iterable[str]) -> None:
    """The reference's rule: a ``prompts`` item containing ``#``, ``/``, ``@`` or ``|`` is refused."""
    for i, item in enumerate(prompts):
        bad = sorted({c for c in item if c in PROMPT_FORBIDDEN})
        if bad:
            raise InvalidRequest(
                f"prompts[{i}] {item[:60]!r} contains {' '.join(repr(c) for c in bad)}: "
                f"prompts may not contain any of {' '.join(PROMPT_FORBIDDEN)}"
            )


def _providers(model_id: str | list[str] | None) -> set[str]:
    """The providers a request's model list routes to, as written (an alias by its own provider and its target's;
    no id, or ``default``, stands for the server's default model, served by voxgate itself)."""
    ids = [model_id] if isinstance(model_id, str) or model_id is None else model_id
    out: set[str] = set()
    for raw in ids:
        written = (raw or "default").strip() or "default"
        for one in (written, ALIASES.get(written, written)):
            provider = one.partition("/")[0] if "/" in one else "default"
            out.add(provider)
    return out


def _local(provider: str) -> bool:
    """Served by voxgate's own engines and turn detection: the reference's own model, the default, local models."""
    if provider in ("inworld", "default"):
        return True
    entry = PROVIDERS.get(provider)
    return entry is not None and not entry.remote


def _block(config: ReferenceConfig) -> tuple[str, str] | None:
    """The one provider block given, as (its field's wire name, its provider); refuses two or more."""
    given = [(name, provider) for name, provider in PROVIDER_BLOCKS.items() if getattr(config, name) is not None]
    if len(given) > 1:
        names = ", ".join(_wire(name) for name, _ in given)
        raise InvalidRequest(f"at most one provider block may be given; got {names}")
    return given[0] if given else None


def _wire(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def check_block(config: ReferenceConfig, model_id: str | list[str] | None) -> None:
    """A provider block must be for a model the request can be served by (one of its fallback list): an
    ``inworldSttV1Config`` for the reference's own model or a local one, ``assemblyaiConfig`` for an
    ``assemblyai/...`` model, and so on. The block then applies to those models only."""
    block = _block(config)
    if block is None:
        return
    name, provider = block
    routed = _providers(model_id)
    ok = any(_local(p) for p in routed) if provider == "inworld" else provider in routed
    if not ok:
        shown = repr(model_id) if model_id is not None else "(none: the default model)"
        raise InvalidRequest(
            f"{_wire(name)} is for {provider} models, but modelId {shown} routes to "
            f"{', '.join(sorted(routed))}: send the block of the model's provider, or none"
        )


def vendor_options(config: TranscribeConfig | StreamTranscribeConfig) -> VendorOptions | None:
    """The request's cloud-vendor block as the domain type its adapter reads (None without one, or for the
    ``inworldSttV1Config`` block, which configures voxgate's own turn detection: :func:`turn_policy`)."""
    check_block(config, config.model_id)
    if (dg := config.deepgram_config) is not None:
        return DeepgramOptions(
            keyterms=tuple(t.strip() for t in dg.keyterms if t.strip()),
            smart_format=dg.smart_format,
            punctuate=dg.punctuate,
            profanity_filter=dg.profanity_filter,
            filler_words=dg.filler_words,
            numerals=dg.numerals,
            endpointing=dg.endpointing,
        )
    if (aai := config.assemblyai_config) is not None:
        return AssemblyAIOptions(
            vad_threshold=aai.vad_threshold,
            prompt=aai.prompt.strip() if aai.prompt and aai.prompt.strip() else None,
        )
    if (sx := config.soniox_config) is not None:
        context = sx.context
        return SonioxOptions(
            language_hints=tuple(dict.fromkeys(h for h in (normalize_language(x) for x in sx.language_hints) if h)),
            language_hints_strict=sx.language_hints_strict,
            enable_endpoint_detection=sx.enable_endpoint_detection,
            max_endpoint_delay_ms=sx.max_endpoint_delay_ms,
            context_general=tuple((g.key, g.value) for g in context.general) if context else (),
            context_text=context.text.strip() if context and context.text and context.text.strip() else None,
            context_terms=tuple(t.strip() for t in context.terms if t.strip()) if context else (),
        )
    if (groq := config.groq_config) is not None:
        return GroqOptions(temperature=groq.temperature)
    return None


def turn_policy(config: StreamTranscribeConfig) -> TurnPolicy:
    """The stream's turn detection: voxgate's ``turnDetection``, then the reference's fields over it
    (``endOfTurnConfidenceThreshold``; the turn silences of ``inworldSttV1Config`` or ``assemblyaiConfig``;
    ``inworldSttV1Config.vadThreshold``, where 0 means manual turns).

    voxgate decides every stream's turns, whatever engine transcribes it: an AssemblyAI socket left to end turns on
    its own would end them where voxgate does not, and words of the turn voxgate then settles are lost (a vendor turn
    ending just before a ``ForceEndpoint`` is taken for the forced one). So ``assemblyaiConfig``'s turn silences shape
    voxgate's turns, like the reference's own block's; its ``vadThreshold`` goes to the vendor's socket."""
    policy = config.turn_detection.to_policy()
    if config.end_of_turn_confidence_threshold is not None:
        policy = replace(policy, threshold=config.end_of_turn_confidence_threshold)
    block = config.inworld_stt_v1_config or config.assemblyai_config
    if block is not None:
        if block.min_end_of_turn_silence_when_confident is not None:
            policy = replace(policy, pause_ms=block.min_end_of_turn_silence_when_confident)
        if block.max_turn_silence is not None:
            policy = replace(policy, max_silence_ms=block.max_turn_silence)
    vad = config.inworld_stt_v1_config.vad_threshold if config.inworld_stt_v1_config is not None else None
    if vad == 0:
        policy = replace(policy, mode=TurnMode.MANUAL)
    elif vad is not None:
        policy = replace(policy, vad_threshold=vad)
    return policy


def inactivity_timeout(config: StreamTranscribeConfig, server_seconds: float) -> float:
    """The stream's idle timeout: the client's ``inactivityTimeoutSeconds``, never longer than the server's."""
    if config.inactivity_timeout_seconds is None:
        return server_seconds
    return min(config.inactivity_timeout_seconds, server_seconds)


def wants_profile(config: TranscribeConfig | StreamTranscribeConfig) -> bool:
    return config.voice_profile_config is not None and config.voice_profile_config.enable_voice_profile


def diarization(config: TranscribeConfig | StreamTranscribeConfig) -> DiarizationOptions | None:
    """Who spoke when, if asked: ``diarizationConfig`` (its bounds), or the reference's top-level
    ``enableSpeakerDiarization``."""
    block = config.diarization_config
    options = block.options() if block is not None else None
    if options is None and config.enable_speaker_diarization:
        bounds = block if block is not None else DiarizationConfig()
        return DiarizationOptions(min_speakers=bounds.min_speaker_count, max_speakers=bounds.max_speaker_count)
    return options


def session_config(config: StreamTranscribeConfig) -> SessionConfig:
    """A stream's ``transcribeConfig`` as the session takes it."""
    return SessionConfig(
        options=options_of(config),
        turn=turn_policy(config),
        partial_interval=config.partial_interval_ms / 1000,
        partials=config.enable_partials,
        profile=wants_profile(config),
        profile_interval=config.profile_interval_ms / 1000,
        diarize=diarization(config),
    )
