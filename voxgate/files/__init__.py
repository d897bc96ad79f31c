"""File transcription: sources (:mod:`.source`), results and their merging (:mod:`.merge`), and the one pipeline
every caller runs (:mod:`.pipeline`: the REST and OpenAI routes, the CLI, the benchmarks)."""

from voxgate.files.merge import FileResult, WindowResult, merge_channels, merge_windows
from voxgate.files.source import AudioSource, RawAudio

__all__ = ["AudioSource", "FileResult", "RawAudio", "WindowResult", "merge_channels", "merge_windows"]
