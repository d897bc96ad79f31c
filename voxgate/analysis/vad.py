"""Streaming voice activity detection: Silero VAD v6 (the ONNX file faster-whisper ships) plus a speech segmenter.

Three pieces, split by what they own:

* :class:`SileroVad` owns the ONNX session. Load it once per process and share it: onnxruntime sessions are safe to
  ``run`` from many threads at once, and the model itself holds no state between calls.
* :class:`VadStream` owns one audio stream's state (the model's LSTM state, the 64-sample context, the samples of an
  unfinished frame). Make one per WebSocket stream with :meth:`SileroVad.stream`; it turns audio into one speech
  probability per 512-sample (32 ms) frame.
* :class:`SpeechSegmenter` owns no model: a hysteresis state machine that turns frame probabilities into "speech
  started" / "speech ended" events and answers "how long have we been silent?" for a turn policy.

The model input layout is the one faster-whisper uses in ``faster_whisper.vad.SileroVADModel`` (adapted there from
snakers4/silero-vad, MIT): each 512-sample window is prefixed with the last 64 samples of the window before it (zeros
for the first), giving rows of 576 samples; rows go to the model as a batch whose first axis is *time* (the model's
LSTM runs across it), with ``h``/``c`` of shape (1, 1, 128) carried from call to call. Feeding the rows one call at a
time or all at once gives the same probabilities, which is what lets :class:`VadStream` match faster-whisper's own
(offline) run on the same audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime

from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import module_dir
from voxgate.types import SAMPLE_RATE, Audio

__all__ = [
    "CONTEXT_SAMPLES",
    "FRAME_SAMPLES",
    "SileroVad",
    "SpeechSegmenter",
    "VadEvent",
    "VadStream",
    "default_model_path",
]

FRAME_SAMPLES = 512
"""Samples per VAD frame at 16 kHz: one probability per 32 ms."""
CONTEXT_SAMPLES = 64
"""Samples of the previous frame the model sees in front of each frame."""
_STATE_SHAPE = (1, 1, 128)
_MAX_BATCH_FRAMES = 4096
"""Frames per ``session.run`` (about 131 s of audio), to bound the size of one input tensor."""
_MODEL_FILE = "silero_vad_v6.onnx"

Probabilities = npt.NDArray[np.float32]


def default_model_path() -> Path | None:
    """Where faster-whisper keeps ``silero_vad_v6.onnx``, found without importing faster-whisper; None if absent."""
    package = module_dir("faster_whisper")
    if package is None:
        return None
    return package / "assets" / _MODEL_FILE


class SileroVad:
    """The Silero VAD v6 model: one ONNX session, shared by every stream.

    Thread-safe: :meth:`probabilities` and every :class:`VadStream` made by :meth:`stream` may run concurrently from
    any number of threads. The session runs on one intra-op and one inter-op thread, so each call costs one core and
    concurrent streams scale across cores instead of fighting over them.
    """

    def __init__(self, session: onnxruntime.InferenceSession, path: Path) -> None:
        """Wrap an already created session (use :meth:`load` to make one)."""
        self._session = session
        self.path = path

    @classmethod
    def load(cls, path: Path | None = None) -> SileroVad:
        """Load the model from ``path``, or by default from faster-whisper's ``assets/silero_vad_v6.onnx``.

        Raises :class:`~voxgate.errors.ModelUnavailable` when the file is missing or onnxruntime cannot load it.
        """
        model_path = path if path is not None else default_model_path()
        if model_path is None:
            raise ModelUnavailable(
                f"Silero VAD model not found: it ships inside the faster-whisper package ({_MODEL_FILE} in its "
                "assets folder), and faster-whisper is not installed (pip install 'faster-whisper>=1.2,<2')"
            )
        if not model_path.is_file():
            raise ModelUnavailable(
                f"Silero VAD model not found at {model_path}: reinstall faster-whisper (>=1.2, which ships "
                f"{_MODEL_FILE}) or pass the path of a Silero VAD v6 ONNX file"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (unexported) exception types
            raise ModelUnavailable(f"could not load the Silero VAD model from {model_path}: {exc}") from exc
        return cls(session, model_path)

    def stream(self) -> VadStream:
        """A fresh per-stream state (zeroed LSTM state and context, nothing buffered) sharing this model."""
        return VadStream(self)

    def probabilities(self, audio: Audio) -> Probabilities:
        """One-shot: the speech probability of every complete 512-sample frame of ``audio`` (a trailing partial
        frame is ignored). Same numbers as feeding ``audio`` to a fresh :meth:`stream` in any chunking."""
        return self.stream().process(audio)

    def _run(
        self, rows: npt.NDArray[np.float32], h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
    ) -> tuple[Probabilities, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Run the model over ``rows`` (frames, 576), in time order, from LSTM state ``(h, c)``.

        Returns the frame probabilities and the LSTM state after the last row.
        """
        outputs: list[Probabilities] = []
        for first in range(0, rows.shape[0], _MAX_BATCH_FRAMES):
            probs, h, c = self._session.run(None, {"input": rows[first : first + _MAX_BATCH_FRAMES], "h": h, "c": c})
            outputs.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        return (outputs[0] if len(outputs) == 1 else np.concatenate(outputs)), h, c


class VadStream:
    """One stream's VAD state: feed audio as it arrives, get one speech probability per completed frame.

    Frame ``i`` (counting from 0 over the stream's life, or since :meth:`reset`) covers samples
    ``[i * 512, (i + 1) * 512)`` of everything fed; mapping frames to wall-clock or stream time is the caller's
    business. Not thread-safe: one stream is fed by one task at a time (streams themselves may run in parallel).
    """

    def __init__(self, model: SileroVad) -> None:
        """A fresh stream on ``model`` (prefer :meth:`SileroVad.stream`)."""
        self._model = model
        self.reset()

    def reset(self) -> None:
        """Forget everything: zero the LSTM state and context, drop buffered samples, restart frame numbering."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames = 0

    @property
    def frames(self) -> int:
        """Frames completed so far: the index the next returned probability will have."""
        return self._frames

    @property
    def buffered(self) -> int:
        """Samples fed but not yet part of a completed frame (always < 512)."""
        return int(self._pending.shape[0])

    def process(self, audio: Audio) -> Probabilities:
        """Feed ``audio`` (mono float32 at 16 kHz, any length) and return the probabilities of the frames it completes.

        Returns a float32 array with one value in [0, 1] per newly completed 512-sample frame, in order (possibly
        empty); samples past the last complete frame are kept for the next call. The result does not depend on how
        the audio is split into calls.
        """
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"VAD expects mono audio (a 1-D array), got shape {samples.shape}")
        buffer = np.concatenate((self._pending, samples)) if self._pending.size else samples
        count = buffer.shape[0] // FRAME_SAMPLES
        if count == 0:
            self._pending = buffer.copy()
            return np.zeros(0, dtype=np.float32)
        frames = buffer[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
        rows = np.empty((count, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        rows[0, :CONTEXT_SAMPLES] = self._context
        rows[1:, :CONTEXT_SAMPLES] = frames[:-1, -CONTEXT_SAMPLES:]
        rows[:, CONTEXT_SAMPLES:] = frames
        probs, self._h, self._c = self._model._run(rows, self._h, self._c)
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        self._pending = buffer[count * FRAME_SAMPLES :].copy()
        self._frames += count
        return probs


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Speech started or ended, at a sample offset into everything the segmenter has seen."""

    kind: Literal["start", "end"]
    sample: int
    """Offset in samples from the first sample of frame 0 (the stream's start, or the last reset)."""

    @property
    def seconds(self) -> float:
        """:attr:`sample` in seconds at 16 kHz."""
        return self.sample / SAMPLE_RATE


class SpeechSegmenter:
    """Turns frame speech probabilities into start/end events, with hysteresis (pure: no model, no audio).

    The rules follow Silero's own ``get_speech_timestamps``/``VADIterator``, made causal:

    * Outside speech, a frame with probability >= ``threshold`` opens a *candidate* start. The candidate survives
      frames >= ``neg_threshold`` and dies at the first frame below it. Once it has lasted ``min_speech_ms``
      (counting its first frame) a ``start`` event is emitted, dated at the candidate's first frame minus
      ``speech_pad_ms``. So the event arrives ``min_speech_ms`` late but carries the true start.
    * Inside speech, silence begins at the first frame below ``neg_threshold``; frames between the two thresholds
      neither start nor break a silence, a frame >= ``threshold`` breaks it. Once a silence has lasted
      ``min_silence_ms`` an ``end`` event is emitted, dated at the silence's first frame plus ``speech_pad_ms``.

    Padding never makes a start earlier than the previous end or 0, nor an end later than the audio seen so far.
    Durations are rounded up to whole frames (32 ms at the defaults): 250 ms of speech means 8 frames.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech_ms: float = 250.0,
        min_silence_ms: float = 300.0,
        speech_pad_ms: float = 0.0,
        frame_samples: int = FRAME_SAMPLES,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        """Configure the thresholds (``neg_threshold`` defaults to ``max(threshold - 0.15, 0.01)``, as in Silero)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
        if not 0.0 <= self.neg_threshold <= threshold:
            raise ValueError(f"neg_threshold must be in [0, threshold], got {self.neg_threshold}")
        if min(min_speech_ms, min_silence_ms, speech_pad_ms) < 0:
            raise ValueError("min_speech_ms, min_silence_ms and speech_pad_ms must not be negative")
        self.frame_samples = frame_samples
        self.sample_rate = sample_rate
        self.frame_ms = 1000.0 * frame_samples / sample_rate
        self.min_speech_frames = max(1, math.ceil(min_speech_ms / self.frame_ms - 1e-9))
        self.min_silence_frames = max(1, math.ceil(min_silence_ms / self.frame_ms - 1e-9))
        self.pad_samples = round(speech_pad_ms * sample_rate / 1000.0)
        self.reset()

    def reset(self) -> None:
        """Back to the initial state: not in speech, no frames seen, event offsets restart at 0."""
        self._frames = 0
        self._in_speech = False
        self._candidate: int | None = None
        """First frame of a speech run not yet long enough to be declared (outside speech)."""
        self._speech_start = 0
        """First frame of the current speech (inside speech)."""
        self._silence_start: int | None = 0
        """First frame of the current silence; None while speech is ongoing."""
        self._last_end_sample = 0

    @property
    def frames(self) -> int:
        """Frames pushed so far."""
        return self._frames

    @property
    def in_speech(self) -> bool:
        """True between a ``start`` event and the following ``end`` event."""
        return self._in_speech

    @property
    def speech_pending(self) -> bool:
        """True while a speech run has begun outside speech but has not yet lasted ``min_speech_ms``."""
        return self._candidate is not None

    @property
    def silence_ms(self) -> float:
        """Length of the trailing silence in ms: from the first silent frame after the last speech (or from the
        first frame, before any speech) to now. 0 while speech is ongoing. Runs of speech too short to be declared
        do not interrupt it (check :attr:`speech_pending` to see one in progress)."""
        if self._silence_start is None:
            return 0.0
        return (self._frames - self._silence_start) * self.frame_ms

    @property
    def speech_ms(self) -> float:
        """Length in ms of the current speech, from its first frame to its last non-silent frame; 0 outside speech."""
        if not self._in_speech:
            return 0.0
        last = self._frames if self._silence_start is None else self._silence_start
        return (last - self._speech_start) * self.frame_ms

    def push(self, probabilities: Iterable[float] | npt.NDArray[np.floating]) -> list[VadEvent]:
        """Consume the next frames' speech probabilities (in order) and return the events they trigger, in order."""
        events: list[VadEvent] = []
        for value in np.asarray(probabilities, dtype=np.float64).reshape(-1).tolist():
            frame = self._frames
            self._frames += 1
            if self._in_speech:
                if value >= self.threshold:
                    self._silence_start = None
                elif value < self.neg_threshold and self._silence_start is None:
                    self._silence_start = frame
                if self._silence_start is not None and self._frames - self._silence_start >= self.min_silence_frames:
                    events.append(self._end(self._silence_start))
            elif self._candidate is None:
                if value >= self.threshold:
                    self._candidate = frame
            elif value < self.neg_threshold:
                self._candidate = None
            if (
                not self._in_speech
                and self._candidate is not None
                and self._frames - self._candidate >= self.min_speech_frames
            ):
                events.append(self._start(self._candidate))
        return events

    def flush(self) -> list[VadEvent]:
        """Close the stream's speech, if any: an ``end`` at the current silence's start (padded) or at the last frame.

        Call it when the audio ends; the segmenter is then out of speech and may keep being pushed to.
        """
        if not self._in_speech:
            self._candidate = None
            return []
        end = self._frames if self._silence_start is None else self._silence_start
        return [self._end(end)]

    def _start(self, frame: int) -> VadEvent:
        self._in_speech = True
        self._candidate = None
        self._speech_start = frame
        self._silence_start = None
        sample = max(frame * self.frame_samples - self.pad_samples, self._last_end_sample, 0)
        return VadEvent("start", sample)

    def _end(self, silence_start: int) -> VadEvent:
        self._in_speech = False
        self._silence_start = silence_start
        sample = min(silence_start * self.frame_samples + self.pad_samples, self._frames * self.frame_samples)
        self._last_end_sample = sample
        return VadEvent("end", sample)
