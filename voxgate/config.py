"""One settings object, read from the environment (prefix ``VOXGATE_``, nesting with ``__``) and passed explicitly.

Nothing in voxgate reads the environment anywhere else, and nothing caches a global ``Settings``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ProfileModel", "ProviderConfig", "ProviderSettings", "Settings"]


def _default_home() -> Path:
    return Path(platformdirs.user_cache_dir("voxgate"))


class ProviderSettings(BaseModel):
    """One provider's entry of :attr:`Settings.providers`."""

    api_key: SecretStr | None = None
    base_url: str | None = None


class ProviderConfig(BaseModel):
    """What a cloud engine is given: the provider's key and base URL as configured, and the call limits."""

    name: str
    api_key: str | None
    base_url: str
    """Without a trailing ``/``; empty when neither the settings nor the engine name one."""
    key_variable: str
    """The environment variable that sets the key (for messages)."""
    url_variable: str
    """The environment variable that sets the base URL (for messages)."""
    timeout: float
    """Seconds one attempt may take, from connecting to the last byte of the answer."""
    deadline: float
    """Seconds the whole call may take, every retry and wait between them included."""
    max_retries: int


class ProfileModel(BaseModel):
    path: Path
    labels: list[str]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXGATE_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Cache directory: materialised models (the joined ``whisper/base``) live under ``home/models``."""

    host: str = "127.0.0.1"
    """Interface ``voxgate serve`` binds to."""
    port: int = 8000
    """Port ``voxgate serve`` listens on."""

    default_model: str = "whisper/base"
    """Model used when a request names none, and what the alias ``inworld/inworld-stt-1`` points at."""
    model_roots: list[Path] = Field(default_factory=list)
    """Directories under which a request may name a model directory (``whisper/<path>``), e.g.
    ``VOXGATE_MODEL_ROOTS='["/srv/models"]'``. Empty (the default): requests may name only packaged and cloud models;
    the default model and the preloaded ones may be directories anywhere (the operator chose them)."""
    max_loaded_models: int = Field(default=32, ge=1)
    """Most engines held at once; loading one more is refused with ``resource_exhausted``."""
    preload: list[str] = Field(default_factory=lambda: ["default"])
    """Models loaded at start-up (``default`` means ``default_model``), so the first request pays no load time."""

    device: str = "cpu"
    """CTranslate2 device: ``cpu``, ``cuda`` or ``auto``."""
    compute_type: str = "int8"
    """CTranslate2 compute type (``int8`` on CPU; ``float16`` or ``int8_float16`` on GPU)."""
    cpu_threads: int = Field(default_factory=lambda: os.cpu_count() or 1)
    """Threads CTranslate2 uses for one decode."""
    urgent_lane: bool = True
    """A second inference thread for urgent work only (a stream's final), so a final starts at once instead of
    waiting for a long file or job window already running; local Whisper models then hold two CTranslate2 replicas
    (the weights shared: about 60 MB more for base, and up to 200 MB more while both decode)."""
    stream_language_prior: bool = True
    """Streams whose language is not given weigh each turn's language identification by what the earlier turns said
    (:mod:`voxgate.streaming.language`): short turns stop flipping between neighbouring languages."""
    blas_threads: int = Field(default=1, ge=0)
    """Threads numpy's BLAS may use (speaker embeddings and other small matrix products), set process-wide when the
    service starts; 0 leaves them as they are. CTranslate2 keeps the cores busy with its own threads, and a second
    pool of spinning BLAS threads beside it cost 14 % more CPU and slower finals (bench/README.md)."""
    batch_size: int = 8
    """How many VAD chunks of a file are decoded together."""
    window_seconds: float = 300.0
    """Files are decoded and transcribed in windows of at most this many seconds, so memory stays bounded."""

    max_upload_bytes: int = 512 * 1024 * 1024
    """Largest file or request body accepted (REST and multipart)."""
    max_audio_seconds: float = Field(default=4 * 3600.0, gt=0)
    """Longest audio a file may decode to (``audio_too_long``), from its header or while it is decoded."""
    max_audio_channels: int = Field(default=32, ge=1, le=64)
    """Most channels a file may have (``too_many_channels``)."""
    min_audio_sample_rate: int = Field(default=4000, ge=1)
    max_audio_sample_rate: int = Field(default=192_000, ge=1)
    """Sample rates a file may have (``unsupported_sample_rate``)."""
    min_audio_bitrate: int = Field(default=2000, ge=0)
    """Bits of file each second of its audio must average, past its first 30 s (``audio_too_long``; 0: no bound):
    refuses decompression bombs such as an hour of silent FLAC in 657 KB. Speech codecs need 4.75 kbit/s and more."""
    decode_isolation: bool = True
    """Decode uploaded files in worker processes, so that a crash or hang inside FFmpeg ends one request, not the
    server (costs a few ms and ~50 MB per busy worker; ``voxgate.audio.isolate``)."""
    request_timeout_seconds: float = 3600.0
    """A transcription taking longer than this is cancelled with a ``timeout`` error."""

    stream_idle_timeout_seconds: float = 30.0
    """A stream that sends nothing for this long is closed with an ``idle_timeout`` error."""
    stream_max_seconds: float = 4 * 3600.0
    """Longest stream, in seconds of audio; past it the stream is flushed and closed (``max_duration``)."""
    stream_max_chunk_bytes: int = 1024 * 1024
    """Largest WebSocket message (an ``audioChunk`` with its base64) accepted."""
    stream_batching: bool = True
    """Batch streaming partials of all sessions on the same model into one decode."""
    max_streams: int = 64
    """Streams served at once; more are refused with ``resource_exhausted``."""

    language_id_model: str = "whisper/base"
    """Model whose language identification feeds the voice profile (and its accent cue)."""
    profile_models: dict[str, ProfileModel] = Field(default_factory=dict)
    """Your own ONNX classifiers for voice-profile dimensions, e.g.
    ``VOXGATE_PROFILE_MODELS='{"emotion": {"path": "/models/ser.onnx", "labels": ["angry", "happy", ...]}}'``.
    Input: 16 kHz float32 waveform ``[1, samples]``; output: one score (logit or probability) per label."""
    profile_heads: list[str] = Field(default_factory=lambda: ["emotion", "gender", "age"])
    """The trained voice-profile heads in use (``voxgate/analysis/data/profile_heads``). The emotion head is trained
    on RAVDESS and carries its non-commercial licence (CC BY-NC-SA 4.0): ``VOXGATE_PROFILE_HEADS='["gender", "age"]'``
    leaves it out (emotion then answers ``unclear``, unless ``profile_models`` names a classifier of your own)."""

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    """Key and base URL of any cloud provider by name, one added with ``register()`` included:
    ``VOXGATE_PROVIDERS='{"acme": {"api_key": "...", "base_url": "https://api.acme.example"}}'`` or one variable
    per value, ``VOXGATE_PROVIDERS__ACME__API_KEY=...``. For the built-in providers the flat variables below work as
    well; a value given here wins over them."""

    # Cloud providers built in: a key per provider (VOXGATE_<PROVIDER>_API_KEY); the base URL may point at a gateway
    # or a self-hosted deployment speaking the vendor's API. Any provider can also be set in ``providers``.
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    groq_api_key: SecretStr | None = None
    groq_base_url: str = "https://api.groq.com/openai/v1"
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str = "https://api.deepgram.com"
    assemblyai_api_key: SecretStr | None = None
    assemblyai_base_url: str = "https://api.assemblyai.com"
    soniox_api_key: SecretStr | None = None
    soniox_base_url: str = "https://api.soniox.com"
    provider_timeout_seconds: float = Field(default=30.0, gt=0)
    """One attempt of a call to a cloud provider, from connecting to the last byte of its answer (a vendor that
    answers a byte at a time is cut off too); a call that carries more than 30 s of audio gets one more second per
    further second. A vendor's async job is polled for this long plus one second per second of audio."""
    provider_deadline_seconds: float = Field(default=90.0, gt=0)
    """The whole call, its retries and the waits between them included (plus the same allowance for audio)."""
    provider_max_retries: int = 3
    """Retries (with exponential backoff) of an idempotent provider call after a 429, a 5xx or a network error."""

    def provider(self, name: str, base_url: str = "") -> ProviderConfig:
        """The key and base URL configured for cloud provider ``name``: its entry in :attr:`providers`, else the
        built-in provider's own ``<name>_api_key`` / ``<name>_base_url`` fields, else ``base_url`` (the engine's
        default) for the URL."""
        entry = self.providers.get(name) or ProviderSettings()
        flat = f"{name}_api_key" in type(self).model_fields
        key = entry.api_key if entry.api_key is not None else getattr(self, f"{name}_api_key") if flat else None
        url = entry.base_url or (getattr(self, f"{name}_base_url") if flat else None) or base_url
        nested = f"VOXGATE_PROVIDERS__{name.upper()}__"
        return ProviderConfig(
            name=name,
            api_key=key.get_secret_value() if key is not None else None,
            base_url=url.rstrip("/"),
            key_variable=f"VOXGATE_{name.upper()}_API_KEY" if flat else nested + "API_KEY",
            url_variable=f"VOXGATE_{name.upper()}_BASE_URL" if flat else nested + "BASE_URL",
            timeout=self.provider_timeout_seconds,
            deadline=self.provider_deadline_seconds,
            max_retries=self.provider_max_retries,
        )

    api_keys: list[SecretStr] = Field(default_factory=list)
    """Accepted API keys. Empty: no authentication (the default on localhost). Set them here (the environment) or in
    :attr:`api_keys_file`, never on a command line, where every user of the machine can read them."""
    api_keys_file: Path | None = None
    """A file of accepted API keys, one per line (blank lines and ``#`` comments ignored), added to :attr:`api_keys`."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names the server answers to besides the loopback names and the address it is bound to; ``*``: any. When
    bound to every interface (``0.0.0.0``) with none listed, any Host is answered (a warning says so)."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Web page origins (``https://app.example.com``) allowed to call the API and open streams from a browser, besides
    the service's own pages; ``*``: any. Clients that are not browsers send no Origin and are not affected."""
    metrics_public: bool = False
    """Serve ``/metrics`` without a key when API keys are set (for a scraper on a trusted network)."""

    @model_validator(mode="after")
    def _read_keys_file(self) -> Settings:
        if self.api_keys_file is None:
            return self
        try:
            text = self.api_keys_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read VOXGATE_API_KEYS_FILE {self.api_keys_file}: {exc.strerror or exc}") from None
        keys = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not keys:
            raise ValueError(f"VOXGATE_API_KEYS_FILE {self.api_keys_file} holds no key")
        known = {k.get_secret_value() for k in self.api_keys}
        self.api_keys = [*self.api_keys, *(SecretStr(k) for k in keys if k not in known)]
        self.api_keys_file = None  # read once: a copy of these settings must not add the keys again
        return self

    # Async jobs (``POST /stt/v1/transcribe:async``): a durable queue in the home directory, run below streams and
    # synchronous requests on the same scheduler.
    job_store: str = ""
    """Where jobs, their audio and their results live: empty for SQLite at ``home/jobs/jobs.sqlite3`` (audio files
    beside it), ``sqlite:///path/to/jobs.sqlite3``, or ``postgresql://user:password@host/db`` for one store shared by
    several servers or Ray replicas (audio kept in the database; ``pip install 'voxgate[postgres]'``)."""
    job_workers: int = Field(default=1, ge=0, le=64)
    """Jobs this server runs at once (0: it accepts and answers jobs but runs none; another server sharing the store
    does)."""
    job_max_queued: int = Field(default=1000, ge=1)
    """Jobs waiting or running at once, in the whole store; a submit past it is refused with ``resource_exhausted``."""
    job_retention_seconds: float = Field(default=24 * 3600.0, gt=0)
    """How long a finished job, its result and its operation are kept; then they are deleted (its audio goes as soon
    as the job ends)."""
    job_window_seconds: float = Field(default=30.0, gt=0)
    """Windows of a job's audio: what a kill costs at most (the window in flight is redone), and the grain at which a
    job is checkpointed. (A stream's final does not wait for a window in flight: it runs on the urgent lane.)"""
    job_timeout_seconds: float = Field(default=4 * 3600.0, gt=0)
    """A job running longer than this fails with ``timeout``."""
    job_lease_seconds: float = Field(default=30.0, gt=0)
    """A running job's claim lasts this long and is renewed every third of it; a server that dies holding one (SIGKILL,
    power loss) leaves it to be claimed again once the lease runs out."""
    job_max_attempts: int = Field(default=3, ge=1)
    """Claims of one job before it is failed (a job that kills its server every time is not retried for ever)."""
    job_url_allow_http: bool = False
    """Let ``audioUri`` and ``callbackUrl`` be plain ``http://`` URLs (default: https only)."""
    job_url_allow_private: bool = False
    """Let ``audioUri`` and ``callbackUrl`` reach private, loopback, link-local and other non-public addresses (default:
    refused after DNS resolution, so a client cannot make the server fetch from or post into its own network)."""
    job_fetch_max_bytes: int | None = Field(default=None, ge=1)
    """Largest audio fetched from an ``audioUri`` (default: ``max_upload_bytes``)."""
    job_fetch_timeout_seconds: float = Field(default=60.0, gt=0)
    """Total time to fetch an ``audioUri``, connection and body."""
    job_webhook_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 signature on completion callbacks (header ``X-Voxgate-Signature``). A job may ask for a
    ``callbackUrl`` only when it is set."""
    job_webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    """Deliveries of one callback tried before it is given up (a 2xx answer ends them)."""
    job_webhook_backoff_seconds: float = Field(default=2.0, ge=0)
    """Wait before the second delivery; doubled before each next one."""
    job_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """Time one delivery may take."""
    job_result_secret: SecretStr | None = None
    """Key that signs ``resultUri`` links (default: a random key made once and kept in ``home/jobs/secret``)."""
    public_url: str | None = None
    """This server's URL as clients reach it (``https://stt.example.com``), for ``resultUri`` links; default: the
    URL of the request asking."""

    console: bool = True
    """Serve the web console at ``/`` (static files; it uses the public API and so needs a key when one is set)."""
