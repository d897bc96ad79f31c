"""Kept windows: a real transcript through the codec, and the store's windows fenced by the claim."""

from __future__ import annotations

from pathlib import Path

from voxgate.jobs.checkpoint import StoreCheckpoints, decode_transcript, encode_transcript
from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import NewJob
from voxgate.service import Service
from voxgate.types import TranscriptionOptions


async def test_a_transcript_comes_back_exactly(service: Service, data: Path) -> None:
    transcript = await service.transcribe(data / "en" / "jfk.flac", TranscriptionOptions(), "whisper/tiny.en")
    assert transcript.segments[0].words
    assert decode_transcript(encode_transcript(transcript)) == transcript


async def test_windows_are_kept_for_the_next_attempt_only_by_the_claim_holder(
    service: Service, data: Path, tmp_path: Path
) -> None:
    transcript = await service.transcribe(data / "en" / "spk1_snt1.wav", TranscriptionOptions(), "whisper/tiny.en")
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job_id = "a" * 32
    store.submit(NewJob(job_id, "", b"{}"), b"audio", max_queued=10, now=0.0)
    first = store.claim("w1", lease_seconds=10, max_attempts=3, retention=60, now=0.0)
    assert first is not None
    kept = StoreCheckpoints(store, first, "w1")
    kept.save("m/-/0", transcript)
    second = store.claim("w2", lease_seconds=10, max_attempts=3, retention=60, now=20.0)  # w1 died
    assert second is not None
    again = StoreCheckpoints(store, second, "w2")
    assert again.load("m/-/0") == transcript
    assert again.load("m/-/160000") is None
    assert again.reused == 1
    assert not store.save_window(job_id, "w1", 1, "m/-/160000", b"stale")  # the old claim writes nothing
    assert store.window(job_id, "m/-/160000") is None
    store.finish(job_id, "w2", 2, result=b"{}", retention=60, now=21.0)
    assert store.window(job_id, "m/-/0") is None  # gone with the audio
    store.close()
