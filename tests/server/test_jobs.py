"""Async jobs end to end: the real app and its lifespan (store, runner), the packaged ``whisper/tiny.en``, real speech
from ``tests/data``, real local HTTP servers for ``audioUri`` and callbacks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.jobs.localhttp import LocalHttp
from tests.speech import reference, wer
from voxgate.jobs.webhook import SIGNATURE_HEADER, verify
from voxgate.server.app import create_app
from voxgate.service import Service

SUBMIT = "/stt/v1/transcribe:async"
TINY = "whisper/tiny.en"
SECRET = "webhook-test-secret"
MS = "0123456789"


@contextmanager
def jobs_client(service: Service, home: Path, **overrides: Any) -> Iterator[TestClient]:
    """A server of its own (its own job store in ``home``) over the shared service and its loaded models."""
    settings = service.settings.model_copy(update={"home": home, **overrides})
    with TestClient(
        create_app(settings, service=service), raise_server_exceptions=False, base_url="http://127.0.0.1"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def client(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("jobs-home")
    with jobs_client(service, home, job_url_allow_http=True, job_url_allow_private=True) as c:
        yield c


@pytest.fixture(scope="module")
def files(data: Path) -> Iterator[LocalHttp]:
    with LocalHttp(data) as server:
        yield server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def wait_done(client: TestClient, name: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll the operation until it is done (the hang guard is not a timing assertion)."""
    guard = time.monotonic() + 600
    seen: list[int] = []
    while time.monotonic() < guard:
        response = client.get(f"/lro/v1alpha/{name}", headers=headers)
        assert response.status_code == 200, response.text
        op: dict[str, Any] = response.json()
        seen.append(op["metadata"]["progressPercent"])
        if op["done"]:
            assert seen == sorted(seen)  # progress never goes back
            return op
        time.sleep(0.1)
    raise AssertionError(f"{name} did not finish")


def result_of(client: TestClient, op: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in op, op
    response = client.get(op["response"]["resultUri"])  # a signed link: no key needed
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def check_reference_shape(document: dict[str, Any], model_id: str) -> None:
    """``transcript``, ``segments[{startTimeMs, endTimeMs, transcript}]`` with int64 as strings, ``language``,
    ``usage{transcribedAudioMs, modelId}`` (api-notes.md, async jobs)."""
    assert isinstance(document["transcript"], str)
    assert document["segments"]
    for segment in document["segments"]:
        assert isinstance(segment["startTimeMs"], str)
        assert isinstance(segment["endTimeMs"], str)
        assert segment["startTimeMs"].strip(MS) == ""
        assert int(segment["startTimeMs"]) <= int(segment["endTimeMs"])
        assert isinstance(segment["transcript"], str)
    assert document["language"] == "en"
    assert isinstance(document["usage"]["transcribedAudioMs"], int)
    assert document["usage"]["modelId"] == model_id


# -- the three submit forms ---------------------------------------------------------------------------------------


def test_json_submit_polls_to_a_result_in_the_reference_shape(client: TestClient, data: Path) -> None:
    audio = (data / "en" / "jfk.flac").read_bytes()
    response = client.post(SUBMIT, json={"transcribeConfig": {"modelId": TINY}, "audioData": {"content": b64(audio)}})
    assert response.status_code == 200, response.text
    op = response.json()
    assert op["name"].startswith("operations/")
    assert op["done"] is False
    assert op["metadata"]["state"] in ("QUEUED", "RUNNING")
    done = wait_done(client, op["name"])
    assert done["metadata"]["state"] == "SUCCEEDED"
    assert done["metadata"]["progressPercent"] == 100
    assert done["response"]["expireTime"].endswith("Z")
    document = result_of(client, done)
    check_reference_shape(document, TINY)
    assert wer(reference(data, "en/jfk.flac"), document["transcript"]) < 0.15
    assert 10_000 < document["usage"]["transcribedAudioMs"] < 12_000
    words = document["segments"][0]["words"]  # includeWordTimestamps (on by default): ms strings too
    assert words[0]["word"].lower() == "and"
    assert all(isinstance(w["startTimeMs"], str) for w in words)


def test_multipart_submit_with_the_config_before_the_file(client: TestClient, data: Path) -> None:
    audio = (data / "en" / "spk1_snt1.wav").read_bytes()
    config = json.dumps({"modelId": TINY, "includeWordTimestamps": False})
    files = [("transcribeConfig", (None, config, "application/json")), ("file", ("a.wav", audio, "audio/wav"))]
    response = client.post(SUBMIT, files=files)
    assert response.status_code == 200, response.text
    document = result_of(client, wait_done(client, response.json()["name"]))
    check_reference_shape(document, TINY)
    assert wer(reference(data, "en/spk1_snt1.wav"), document["transcript"]) < 0.3
    assert all("words" not in s for s in document["segments"])


def test_audio_uri_submit_fetches_the_file(client: TestClient, files: LocalHttp, data: Path) -> None:
    url = f"{files.url}/files/en/spk2_snt1.wav"
    response = client.post(SUBMIT, json={"transcribeConfig": {"modelId": TINY}, "audioUri": url})
    assert response.status_code == 200, response.text
    document = result_of(client, wait_done(client, response.json()["name"]))
    assert wer(reference(data, "en/spk2_snt1.wav"), document["transcript"]) < 0.3
    assert files.gets[-1].headers["Host"] == f"127.0.0.1:{files.port}"
    # Google's spelling, audioData.uri, is the same thing.
    again = client.post(SUBMIT, json={"transcribeConfig": {"modelId": TINY}, "audioData": {"uri": url}})
    assert result_of(client, wait_done(client, again.json()["name"]))["transcript"] == document["transcript"]


def test_voxgate_additions_when_asked_for(client: TestClient, data: Path) -> None:
    """Voice profile (file and segments) and speakers, as the sync route gives them, in the result document."""
    audio = (data / "en" / "spk1_snt2.wav").read_bytes()
    config = {
        "modelId": TINY,
        "voiceProfileConfig": {"enableVoiceProfile": True, "topN": 2},
        "diarizationConfig": {"enableSpeakerDiarization": True},
    }
    response = client.post(SUBMIT, json={"transcribeConfig": config, "audioData": {"content": b64(audio)}})
    document = result_of(client, wait_done(client, response.json()["name"]))
    check_reference_shape(document, TINY)
    assert len(document["voiceProfile"]["emotion"]) == 2
    assert document["segments"][0]["speakerTag"] == 1
    assert document["utterances"][0]["speakerTag"] == 1
    assert document["speakers"][0]["voiceProfile"]["age"]
    assert all("speakerTag" in w for s in document["segments"] for w in s["words"])


# -- what a submit refuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"transcribeConfig": {"modelId": TINY}}, "invalid_argument"),  # no audio
        ({"audioData": {"content": "AAAA"}, "audioUri": "https://example.com/a.wav"}, "invalid_argument"),  # two
        ({"audioData": {"content": "not base64!"}}, "invalid_base64"),
        ({"audioData": {"content": ""}}, "empty_audio"),
        ({"transcribeConfig": {"modelId": "whisper/nonesuch"}, "audioData": {"content": "AAAA"}}, "model_not_found"),
        ({"transcribeConfig": {"audioEncoding": "LINEAR16"}, "audioData": {"content": "AAAA"}}, "invalid_argument"),
        (
            {"audioData": {"content": "AAAA"}, "callbackUrl": "https://example.com/hook"},
            "invalid_argument",
        ),  # no secret
    ],
)
def test_bad_submits_fail_at_once(client: TestClient, body: dict[str, Any], code: str) -> None:
    response = client.post(SUBMIT, json=body)
    assert response.json()["error"]["code"] == code, response.text


def test_audio_uri_refusals_by_default(service: Service, tmp_path: Path, files: LocalHttp) -> None:
    """https only, public addresses only (after resolution), nothing fetched."""
    with jobs_client(service, tmp_path) as strict:
        for url in (
            f"{files.url}/files/en/jfk.flac",  # http
            f"https://127.0.0.1:{files.port}/files/en/jfk.flac",  # loopback
            f"https://localhost:{files.port}/files/en/jfk.flac",  # a name that resolves to loopback
            "https://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
            "https://10.0.0.1/a.wav",  # private
            "https://[::ffff:127.0.0.1]/a.wav",  # loopback mapped into IPv6
            "https://224.0.0.1/a.wav",  # multicast
            "https://user:pw@example.com/a.wav",  # credentials
            "file:///etc/passwd",
            "ftp://example.com/a.wav",
        ):
            response = strict.post(SUBMIT, json={"audioUri": url})
            assert response.status_code == 400, (url, response.text)
            assert response.json()["error"]["code"] == "invalid_argument"
        gets = len(files.gets)
    assert len(files.gets) == gets


def test_audio_uri_redirects_errors_and_size(service: Service, tmp_path: Path, files: LocalHttp) -> None:
    with jobs_client(service, tmp_path, job_url_allow_http=True, job_url_allow_private=True,
                     job_fetch_max_bytes=50_000) as small:  # fmt: skip
        redirect = small.post(SUBMIT, json={"audioUri": f"{files.url}/redirect"})
        assert "redirect" in redirect.json()["error"]["message"]
        missing = small.post(SUBMIT, json={"audioUri": f"{files.url}/missing"})
        assert "404" in missing.json()["error"]["message"]
        big = small.post(SUBMIT, json={"audioUri": f"{files.url}/files/en/jfk.flac"})
        assert big.json()["error"]["code"] == "payload_too_large"
        listed = small.get("/lro/v1alpha/operations").json()["operations"]
    assert listed == []  # a URL that cannot be fetched fails the submit, not a job


# -- operations ---------------------------------------------------------------------------------------------------


def test_list_newest_first_in_pages(client: TestClient, data: Path) -> None:
    audio = b64((data / "en" / "spk2_snt2.wav").read_bytes())
    names = [
        client.post(SUBMIT, json={"transcribeConfig": {"modelId": TINY}, "audioData": {"content": audio}}).json()[
            "name"
        ]
        for _ in range(3)
    ]
    first = client.get("/lro/v1alpha/operations", params={"pageSize": 2}).json()
    assert [o["name"] for o in first["operations"]] == names[::-1][:2]
    second = client.get("/lro/v1alpha/operations", params={"pageSize": 2, "pageToken": first["nextPageToken"]})
    assert second.json()["operations"][0]["name"] == names[0]
    bad = client.get("/lro/v1alpha/operations", params={"pageToken": "bm90IGEgdG9rZW4="})
    assert bad.json()["error"]["code"] == "invalid_argument"
    for name in names:
        wait_done(client, name)


def test_cancel_and_delete(service: Service, tmp_path: Path, data: Path) -> None:
    audio = b64((data / "en" / "spk1_snt3.wav").read_bytes())
    with jobs_client(service, tmp_path, job_workers=0) as idle:  # accepts jobs, runs none: they stay queued
        name = idle.post(SUBMIT, json={"audioData": {"content": audio}}).json()["name"]
        cancelled = idle.post(f"/lro/v1alpha/{name}:cancel")
        assert cancelled.status_code == 200, cancelled.text
        op = cancelled.json()
        assert op["done"] is True
        assert op["metadata"]["state"] == "CANCELLED"
        assert op["error"]["code"] == "cancelled"
        assert idle.post(f"/lro/v1alpha/{name}:cancel").json() == op  # cancelling again changes nothing
        assert idle.post(f"/lro/v1alpha/{name}:explode").json()["error"]["code"] == "not_found"
        assert not list((tmp_path / "jobs" / "audio").iterdir())  # its audio is gone at once
        other = idle.post(SUBMIT, json={"audioData": {"content": audio}}).json()["name"]
        assert idle.delete(f"/lro/v1alpha/{other}").status_code == 200
        assert idle.get(f"/lro/v1alpha/{other}").json()["error"]["code"] == "not_found"


def test_a_full_queue_is_resource_exhausted(service: Service, tmp_path: Path, data: Path) -> None:
    audio = b64((data / "en" / "spk1_snt3.wav").read_bytes())
    with jobs_client(service, tmp_path, job_workers=0, job_max_queued=2) as idle:
        for _ in range(2):
            assert idle.post(SUBMIT, json={"audioData": {"content": audio}}).status_code == 200
        full = idle.post(SUBMIT, json={"audioData": {"content": audio}})
        assert full.status_code == 429
        assert full.json()["error"]["code"] == "resource_exhausted"


def test_ids_are_checked_and_unknown_ones_are_not_found(client: TestClient) -> None:
    for path in (
        "/lro/v1alpha/operations/" + "0" * 32,
        "/lro/v1alpha/operations/not-an-id",
        "/lro/v1alpha/operations/..%2F..%2Fjobs.sqlite3",
        "/lro/v1alpha/operations/" + "A" * 32,
        "/stt/v1/results/" + "0" * 32,
        "/stt/v1/results/..%2Fsecret",
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"


def test_result_links_are_signed(client: TestClient, data: Path) -> None:
    audio = b64((data / "en" / "spk2_snt3.wav").read_bytes())
    op = wait_done(client, client.post(SUBMIT, json={"audioData": {"content": audio}}).json()["name"])
    uri = op["response"]["resultUri"]
    assert client.get(uri).status_code == 200
    forged = uri[:-4] + ("0000" if not uri.endswith("0000") else "1111")
    assert client.get(forged).json()["error"]["code"] == "permission_denied"
    stretched = uri.replace("expires=", "expires=9")
    assert client.get(stretched).json()["error"]["code"] == "permission_denied"
    unsigned = uri.split("?")[0]
    assert client.get(unsigned).status_code == 200  # no keys on this server: the id is enough, as for the operation


def test_with_keys_a_job_is_only_its_owners(service: Service, tmp_path: Path, data: Path) -> None:
    audio = b64((data / "en" / "spk2_snt4.wav").read_bytes())
    alice, bob = {"Authorization": "Basic alice-key"}, {"Authorization": "Bearer bob-key"}
    with jobs_client(service, tmp_path, api_keys=[SecretStr("alice-key"), SecretStr("bob-key")]) as keyed:
        assert keyed.post(SUBMIT, json={"audioData": {"content": audio}}).status_code == 401
        name = keyed.post(SUBMIT, json={"audioData": {"content": audio}}, headers=alice).json()["name"]
        assert keyed.get(f"/lro/v1alpha/{name}").status_code == 401
        assert keyed.get(f"/lro/v1alpha/{name}", headers=bob).json()["error"]["code"] == "not_found"
        assert keyed.post(f"/lro/v1alpha/{name}:cancel", headers=bob).json()["error"]["code"] == "not_found"
        assert keyed.get("/lro/v1alpha/operations", headers=bob).json()["operations"] == []
        op = wait_done(keyed, name, alice)
        uri = op["response"]["resultUri"]
        assert keyed.get(uri).status_code == 200  # the signed link is the credential
        unsigned = uri.split("?")[0]
        assert keyed.get(unsigned).status_code == 401
        assert keyed.get(unsigned, headers=bob).json()["error"]["code"] == "not_found"
        assert keyed.get(unsigned, headers=alice).status_code == 200


def test_results_expire_with_their_audio(service: Service, tmp_path: Path, data: Path) -> None:
    audio = b64((data / "en" / "spk1_snt4.wav").read_bytes())
    with jobs_client(service, tmp_path, job_retention_seconds=1.0) as brief:
        name = brief.post(SUBMIT, json={"audioData": {"content": audio}}).json()["name"]
        guard = time.monotonic() + 600
        while brief.get(f"/lro/v1alpha/{name}").status_code == 200:  # done, then deleted by the purge
            assert time.monotonic() < guard
            time.sleep(0.1)
        assert brief.get(f"/lro/v1alpha/{name}").json()["error"]["code"] == "not_found"
        assert brief.get(f"/stt/v1/results/{name.split('/')[1]}").json()["error"]["code"] == "not_found"
    assert not list((tmp_path / "jobs" / "audio").iterdir())


def test_webhook_is_signed_and_retried(service: Service, tmp_path: Path, data: Path, files: LocalHttp) -> None:
    audio = b64((data / "en" / "spk2_snt5.wav").read_bytes())
    with LocalHttp(tmp_path, statuses=[500]) as receiver, jobs_client(
        service, tmp_path, job_url_allow_http=True, job_url_allow_private=True, job_webhook_secret=SecretStr(SECRET),
        job_webhook_backoff_seconds=0.05,
    ) as hooked:  # fmt: skip
        callback = f"{receiver.url}/hook"
        body = {"transcribeConfig": {"modelId": TINY}, "audioData": {"content": audio}, "callbackUrl": callback}
        name = hooked.post(SUBMIT, json=body).json()["name"]
        op = wait_done(hooked, name)
        guard = time.monotonic() + 120
        while len(receiver.received) < 2:
            assert time.monotonic() < guard
            time.sleep(0.05)
    first, second = receiver.received[:2]  # the first answered 500, so it came again
    assert len(receiver.received) == 2
    for got in (first, second):
        assert got.path == "/hook"
        assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])
        assert not verify("another-secret", got.body, got.headers[SIGNATURE_HEADER])
        sent = json.loads(got.body)
        assert sent["name"] == name
        assert sent["done"] is True
        assert sent["response"]["resultUri"].split("?")[0] == op["response"]["resultUri"].split("?")[0]
    tampered = first.body.replace(b"SUCCEEDED", b"FAILED")
    assert not verify(SECRET, tampered, first.headers[SIGNATURE_HEADER])


def test_a_callback_url_is_checked_like_an_audio_uri(service: Service, tmp_path: Path) -> None:
    with jobs_client(service, tmp_path, job_webhook_secret=SecretStr(SECRET)) as strict:
        body = {"audioData": {"content": "AAAA"}, "callbackUrl": "https://127.0.0.1/hook"}
        refused = strict.post(SUBMIT, json=body)
        assert refused.json()["error"]["code"] == "invalid_argument"
        assert "not a public address" in refused.json()["error"]["message"]


def test_a_cancelled_job_calls_back_too(service: Service, tmp_path: Path, data: Path) -> None:
    audio = b64((data / "en" / "spk1_snt6.wav").read_bytes())
    with LocalHttp(tmp_path) as receiver, jobs_client(
        service, tmp_path, job_workers=0, job_url_allow_http=True, job_url_allow_private=True,
        job_webhook_secret=SecretStr(SECRET),
    ) as idle:  # fmt: skip
        body = {"audioData": {"content": audio}, "callbackUrl": f"{receiver.url}/hook"}
        name = idle.post(SUBMIT, json=body).json()["name"]
        idle.post(f"/lro/v1alpha/{name}:cancel")
        idle.post(f"/lro/v1alpha/{name}:cancel")  # once more: still one delivery
        guard = time.monotonic() + 120
        while not receiver.received:
            assert time.monotonic() < guard
            time.sleep(0.05)
    assert len(receiver.received) == 1
    sent = json.loads(receiver.received[0].body)
    assert sent["name"] == name
    assert sent["error"]["code"] == "cancelled"
    assert verify(SECRET, receiver.received[0].body, receiver.received[0].headers[SIGNATURE_HEADER])


def test_audio_that_does_not_decode_fails_the_job_with_its_code(client: TestClient) -> None:
    response = client.post(SUBMIT, json={"audioData": {"content": b64(b"this is not audio at all" * 100)}})
    assert response.status_code == 200  # accepted: what the bytes are is found out when the job runs
    op = wait_done(client, response.json()["name"])
    assert op["metadata"]["state"] == "FAILED"
    assert op["error"]["code"] == "audio_decode_error"
    assert "response" not in op
    job_id = op["name"].split("/")[1]
    assert client.get(f"/stt/v1/results/{job_id}").json()["error"]["code"] == "not_found"


def test_metrics_label_job_routes_by_their_template(client: TestClient) -> None:
    """Polling many operations adds one route label, not one per job."""
    for i in range(3):
        client.get(f"/lro/v1alpha/operations/{i:032x}")
    text = client.get("/metrics").text
    assert 'route="/lro/v1alpha/operations/{job_id}"' in text
    assert "00000000000000000000000000000001" not in text
