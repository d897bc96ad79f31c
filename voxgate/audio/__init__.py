"""Audio in: container files (:mod:`voxgate.audio.decode`, PyAV) and raw PCM (:mod:`voxgate.audio.pcm`) to float32
mono 16 kHz.

Import from the submodule you need: the package itself imports nothing, so code that only handles PCM (the client
SDK) does not load FFmpeg.
"""
