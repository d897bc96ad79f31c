"""voxgate's client SDK: streaming over WebSocket (:func:`connect`, :func:`stream_file`) and REST (:class:`Client`,
:class:`AsyncClient`, :func:`transcribe_file`).

Messages and responses are the pydantic models of :mod:`voxgate.protocol`; failures raise
:class:`VoxgateClientError` with the server's ``code`` and ``message``. The client speaks the reference API's wire
protocol, so it works against any server that does.
"""

from voxgate.client.errors import VoxgateClientError, VoxgateConnectionError
from voxgate.client.rest import DEFAULT_URL, AsyncClient, Client, FileOptions, transcribe_file
from voxgate.client.stream import (
    STREAM_PATH,
    AsyncStream,
    StreamFileOptions,
    StreamOptions,
    StreamResult,
    connect,
    parse_server_message,
    stream_file,
    stream_url,
)
from voxgate.protocol.http import TranscribeResponse
from voxgate.protocol.ws import (
    EagerEndOfTurnMessage,
    EndOfTurnMessage,
    ErrorMessage,
    ResultMessage,
    SpeechStartedMessage,
    SpeechStoppedMessage,
    StreamTranscription,
    TurnDetection,
    TurnMode,
    TurnResumedMessage,
    UsageMessage,
)

__all__ = [
    "DEFAULT_URL",
    "STREAM_PATH",
    "AsyncClient",
    "AsyncStream",
    "Client",
    "EagerEndOfTurnMessage",
    "EndOfTurnMessage",
    "ErrorMessage",
    "FileOptions",
    "ResultMessage",
    "SpeechStartedMessage",
    "SpeechStoppedMessage",
    "StreamFileOptions",
    "StreamOptions",
    "StreamResult",
    "StreamTranscription",
    "TranscribeResponse",
    "TurnDetection",
    "TurnMode",
    "TurnResumedMessage",
    "UsageMessage",
    "VoxgateClientError",
    "VoxgateConnectionError",
    "connect",
    "parse_server_message",
    "stream_file",
    "stream_url",
    "transcribe_file",
]
