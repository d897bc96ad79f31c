"""Audio in: container files and raw PCM to float32 mono 16 kHz."""

from voxgate.audio.decode import AudioInfo, decode, iter_decode, probe
from voxgate.audio.pcm import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    PcmEncoding,
    StreamResampler,
    check_sample_rate,
    decode_pcm,
    encode_linear16,
    encode_wav,
    pcm_to_float,
    resample,
)

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioInfo",
    "PcmEncoding",
    "StreamResampler",
    "check_sample_rate",
    "decode",
    "decode_pcm",
    "encode_linear16",
    "encode_wav",
    "iter_decode",
    "pcm_to_float",
    "probe",
    "resample",
]
