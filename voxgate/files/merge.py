"""A file's result, and how per-window and per-channel results join into one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from voxgate.analysis.profile import VoiceProfile, merge_profiles
from voxgate.errors import EmptyAudio
from voxgate.types import SAMPLE_RATE, Segment, Speakers, Transcript

__all__ = ["FileResult", "WindowResult", "merge_channels", "merge_windows"]


@dataclass(frozen=True, slots=True)
class FileResult:
    transcript: Transcript
    profile: VoiceProfile | None = None
    """The whole file's voice profile (segments merged, weighted by speech)."""
    segment_profiles: tuple[VoiceProfile | None, ...] = ()
    """One per segment of the transcript, in order (None for segments too short to measure)."""
    speakers: Speakers | None = None
    """Who spoke each word and segment, when diarization was asked for."""
    speaker_profiles: dict[int, VoiceProfile] = field(default_factory=dict)
    """Each speaker's voice profile (their chunks merged), when diarization and a profile were both asked for."""


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window of a file: where it starts (samples), its transcript (times from the window's start) and, when
    asked for, a profile per segment."""

    offset: int
    transcript: Transcript
    profiles: tuple[VoiceProfile | None, ...] = ()


def merge_windows(parts: Sequence[WindowResult], model_id: str) -> FileResult:
    """Join per-window transcripts into one, moving every time by its window's offset."""
    if not parts:
        raise EmptyAudio("the audio contains no samples")
    segments: list[Segment] = []
    profiles: list[VoiceProfile | None] = []
    for part in parts:
        segments.extend(s.shifted(part.offset / SAMPLE_RATE) for s in part.transcript.segments)
        profiles.extend(part.profiles)
    first, last = parts[0].transcript, parts[-1]
    warnings = tuple(dict.fromkeys(w for part in parts for w in part.transcript.warnings))
    transcript = Transcript(
        segments=tuple(segments),
        warnings=warnings,
        duration=last.offset / SAMPLE_RATE + last.transcript.duration,
        language=first.language,
        language_probability=first.language_probability,
        language_candidates=first.language_candidates,
        model_id=model_id,
    )
    measured = [p for p in profiles if p is not None]
    return FileResult(transcript, merge_profiles(measured), tuple(profiles))


def merge_channels(results: Sequence[FileResult]) -> FileResult:
    """One result from each channel's (segments tagged with their channel): segments in time order, the language of
    the channel that spoke most, the longest duration, every channel's warnings."""
    ordered = sorted(
        ((s, p) for r in results for s, p in zip(r.transcript.segments, r.segment_profiles or _nones(r), strict=True)),
        key=lambda sp: (sp[0].start, sp[0].channel or 0),
    )
    main = max(results, key=lambda r: sum(s.end - s.start for s in r.transcript.segments)).transcript
    transcript = replace(
        main,
        segments=tuple(s for s, _ in ordered),
        duration=max(r.transcript.duration for r in results),
        warnings=tuple(dict.fromkeys(w for r in results for w in r.transcript.warnings)),
    )
    profiles = tuple(p for _, p in ordered)
    if not any(r.segment_profiles for r in results):
        return FileResult(transcript)
    return FileResult(transcript, merge_profiles([p for p in profiles if p is not None]), profiles)


def _nones(result: FileResult) -> tuple[None, ...]:
    return (None,) * len(result.transcript.segments)
