"""Metrics: several processes' expositions merged into one (a cluster's replicas behind one ``/metrics``)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from voxgate.metrics import Metrics, merge_expositions


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_merged_expositions_keep_every_sample_labelled_with_its_replica() -> None:
    ingress, model = Metrics(), Metrics()
    ingress.requests.labels("/stt/v1/transcribe", "200").inc(2)
    ingress.stream_final_seconds.observe(0.2)
    model.models_loaded.set(1)
    model.inference_seconds.labels("whisper/tiny.en").observe(0.4)
    merged = samples(merge_expositions({"ingress/a": ingress.exposition(), "model-x/b": model.exposition()}))
    for replica, metrics in (("ingress/a", ingress), ("model-x/b", model)):
        for (name, labels), value in samples(metrics.exposition()).items():
            if name.endswith("_created"):
                continue
            assert merged[(name, tuple(sorted((*labels, ("replica", replica)))))] == value
    request = ("voxgate_requests_total", (("replica", "ingress/a"), ("route", "/stt/v1/transcribe"), ("status", "200")))
    assert merged[request] == 2
    assert merged[("voxgate_models_loaded", (("replica", "model-x/b"),))] == 1


def test_one_help_and_type_per_metric_however_many_replicas_report_it() -> None:
    parts = {f"model/{i}": Metrics().exposition() for i in range(3)}
    text = merge_expositions(parts).decode()
    assert text.count("# TYPE voxgate_models_loaded gauge") == 1
    assert text.count("voxgate_models_loaded{") == 3
