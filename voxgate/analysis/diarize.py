"""Speaker diarization of a transcript: who spoke each word.

Works on any engine's output, local or cloud, as long as it has word times (segments without words are taken whole):

1. **Chunks.** Each segment's words are grouped into chunks of speech: a pause longer than :data:`PAUSE` or a chunk
   reaching :data:`CHUNK_SECONDS` starts a new one. A change of speaker nearly always comes with a pause, so a chunk
   rarely holds two voices, and the words of one chunk share its speaker.
2. **Embeddings.** Every chunk's audio goes through the speaker encoder (:class:`~voxgate.analysis.speaker.
   SpeakerEncoder`, a GE2E d-vector): one 256-d unit vector per chunk. This is the costly step and runs window by
   window while the file is transcribed; only the vectors are kept.
3. **Clustering.** Agglomerative clustering (average linkage, cosine distance, scipy) of the chunks long enough to
   carry a voice (:data:`MIN_CLUSTER_SECONDS`), cut at :data:`DISTANCE`, or into the requested number of speakers
   when the caller bounds it. Shorter chunks then join the nearest speaker's centroid.
4. Speakers are numbered 1, 2, ... in order of first appearance.

What it cannot do: overlapping speech (one label per chunk), and very short turns ("yes") of a speaker heard nowhere
else are absorbed by the nearest voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage

from voxgate.analysis.speaker import unit_vectors
from voxgate.types import SAMPLE_RATE, Audio, DiarizationOptions, Segment, Speakers

__all__ = [
    "CHUNK_SECONDS",
    "DISTANCE",
    "MAX_ANCHORS",
    "Chunk",
    "OnlineSpeakers",
    "assign",
    "chunks_of",
    "clip_of",
    "cluster",
]

PAUSE = 0.3
"""Seconds of silence between two words that start a new chunk."""
CHUNK_SECONDS = 3.5
"""A chunk stops growing once it spans this many seconds (a voice is well measured by then)."""
MIN_CLUSTER_SECONDS = 0.8
"""Chunks shorter than this do not shape the clusters; they join the nearest one afterwards."""
MIN_EMBED_SECONDS = 0.3
"""The shortest audio embedded: a shorter chunk is widened around its centre to this length."""
DISTANCE = 0.4
"""Cosine distance (average linkage) above which two groups of chunks are different speakers. Chosen on the shared
recordings (Harvard speakers and JFK): with chunks of up to 3.5 s, same-voice pairs were at most 0.27-0.31 apart,
different voices at least 0.46-0.48; bench/diarization.py measures the result on conversations built from them."""
MAX_ANCHORS = 2000
"""At most this many chunks (evenly spread over the file) shape the clusters; the rest join the nearest. Linkage
needs memory for every pair: 2000 chunks (~1 h of speech) are 2 M distances, 20000 would be 200 M."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stretch of one voice: its span, its segment and the words it holds (indices among all the transcript's)."""

    start: float
    end: float
    segment: int
    words: tuple[int, ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def shifted(self, seconds: float, segments: int, words: int) -> Chunk:
        """The chunk of a window placed in the whole file: times and indices moved on."""
        return Chunk(
            self.start + seconds, self.end + seconds, self.segment + segments, tuple(i + words for i in self.words)
        )


def chunks_of(segments: Sequence[Segment]) -> list[Chunk]:
    """Cut segments into chunks of one voice (a segment without words is one chunk)."""
    chunks: list[Chunk] = []
    index = 0
    for s, segment in enumerate(segments):
        if not segment.words:
            if segment.end > segment.start:
                chunks.append(Chunk(segment.start, segment.end, s))
            continue
        start, end = segment.words[0].start, segment.words[0].end
        held = [index]
        for w in segment.words[1:]:
            index += 1
            if w.start - end > PAUSE or w.end - start > CHUNK_SECONDS:
                chunks.append(Chunk(start, end, s, tuple(held)))
                start, held = w.start, []
            end = max(end, w.end)
            held.append(index)
        chunks.append(Chunk(start, end, s, tuple(held)))
        index += 1
    return chunks


def clip_of(audio: Audio, chunk: Chunk, offset: float = 0.0) -> Audio:
    """The chunk's audio out of ``audio`` (which starts at ``offset`` seconds), widened to :data:`MIN_EMBED_SECONDS`."""
    start, end = chunk.start - offset, chunk.end - offset
    if end - start < MIN_EMBED_SECONDS:
        middle = (start + end) / 2
        start, end = middle - MIN_EMBED_SECONDS / 2, middle + MIN_EMBED_SECONDS / 2
    lo = max(0, round(start * SAMPLE_RATE))
    hi = min(len(audio), max(lo + 1, round(end * SAMPLE_RATE)))
    return audio[lo:hi]


def cluster(
    embeddings: npt.NDArray[np.float32], seconds: Sequence[float], options: DiarizationOptions = DiarizationOptions()
) -> list[int]:
    """A speaker number (1, 2, ... by first appearance) for each embedding (unit vectors, in time order)."""
    n = len(embeddings)
    if n == 0:
        return []
    anchors = [i for i, s in enumerate(seconds) if s >= MIN_CLUSTER_SECONDS]
    if len(anchors) < 2:  # too little to compare voices: take every chunk, however short
        anchors = list(range(n))
    if len(anchors) > MAX_ANCHORS:
        anchors = [anchors[round(k)] for k in np.linspace(0, len(anchors) - 1, MAX_ANCHORS)]
    labels = np.zeros(n, dtype=np.int64)
    if len(anchors) == 1:
        labels[:] = 1
    else:
        tree = linkage(embeddings[anchors].astype(np.float64), method="average", metric="cosine")
        found = fcluster(tree, t=DISTANCE, criterion="distance")
        count = len(set(found.tolist()))
        wanted = min(max(count, options.min_speakers), options.max_speakers, len(anchors))
        if wanted != count:
            found = fcluster(tree, t=wanted, criterion="maxclust")
        labels[anchors] = found
        centroids = {k: unit_vectors(embeddings[labels == k].mean(axis=0)) for k in set(found.tolist())}
        keys = sorted(centroids)
        matrix = np.stack([centroids[k] for k in keys])
        for i in range(n):
            if labels[i] == 0:
                labels[i] = keys[int(np.argmax(matrix @ embeddings[i]))]
    order: dict[int, int] = {}
    for k in labels.tolist():
        order.setdefault(k, len(order) + 1)
    return [order[k] for k in labels.tolist()]


def assign(chunks: Sequence[Chunk], speakers: Sequence[int], *, words: int, segments: int) -> Speakers:
    """Hand each chunk's speaker to its words and, by time spoken, to its segment."""
    by_word = [0] * words
    heard: list[dict[int, float]] = [{} for _ in range(segments)]
    for chunk, speaker in zip(chunks, speakers, strict=True):
        for i in chunk.words:
            by_word[i] = speaker
        heard[chunk.segment][speaker] = heard[chunk.segment].get(speaker, 0.0) + chunk.seconds
    by_segment = tuple(max(h, key=h.__getitem__) if h else None for h in heard)
    return Speakers(tuple(by_word), by_segment, len(set(speakers)))


class OnlineSpeakers:
    """Speakers of a live stream, decided turn by turn as each final comes (no look-ahead, no relabelling).

    A turn joins the nearest known voice when its cosine distance to that voice's centroid is within
    :data:`DISTANCE` (or when ``max_speakers`` are already known); otherwise it is a new speaker. Turns shorter than
    :data:`MIN_CLUSTER_SECONDS` never found a new speaker nor move a centroid (unless no speaker exists yet).
    Centroids are running means of their turns' embeddings, weighted by seconds.
    """

    def __init__(self, options: DiarizationOptions = DiarizationOptions()) -> None:
        self.options = options
        self._sums: list[npt.NDArray[np.float64]] = []

    @property
    def count(self) -> int:
        return len(self._sums)

    def assign(self, embedding: npt.NDArray[np.float32], seconds: float) -> int:
        """The speaker number (1, 2, ...) of a turn with this embedding and this much audio."""
        vector = embedding.astype(np.float64)
        if self._sums:
            centroids = unit_vectors(np.stack(self._sums))
            similarity = centroids @ vector
            best = int(np.argmax(similarity))
            near = 1.0 - float(similarity[best]) <= DISTANCE
            full = len(self._sums) >= self.options.max_speakers
            short = seconds < MIN_CLUSTER_SECONDS
            if near or full or short:
                if not short:
                    self._sums[best] = self._sums[best] + seconds * vector
                return best + 1
        self._sums.append(seconds * vector)
        return len(self._sums)
