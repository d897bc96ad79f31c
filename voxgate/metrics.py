"""Prometheus instruments, one registry per service instance (so tests can build many apps side by side), and the
merge of several processes' expositions into one (a cluster's replicas behind one ``/metrics``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["Metrics", "merge_expositions"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "voxgate_requests", "Requests handled, by route and status.", ["route", "status"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "voxgate_request_duration_seconds",
            "Wall time of a request, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "voxgate_audio_seconds", "Seconds of audio transcribed, by model.", ["model"], registry=self.registry
        )
        self.inference_seconds = Histogram(
            "voxgate_inference_seconds",
            "Wall time of one engine call, by model.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_load_seconds = Gauge(
            "voxgate_model_load_seconds", "Time the last load of a model took.", ["model"], registry=self.registry
        )
        self.models_loaded = Gauge("voxgate_models_loaded", "Models held in memory.", registry=self.registry)
        self.decode_retries = Counter(
            "voxgate_decode_retries",
            "Decodes sent again because the model replica running them died (Ray Serve), by model.",
            ["model"],
            registry=self.registry,
        )
        self.streams = Gauge("voxgate_streams", "WebSocket streams open now.", registry=self.registry)
        self.stream_final_seconds = Histogram(
            "voxgate_stream_final_latency_seconds",
            "From the end of a turn to its final result being sent.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry,
        )
        self.errors = Counter("voxgate_errors", "Errors returned, by code.", ["code"], registry=self.registry)
        self.decodes_queued = Gauge(
            "voxgate_decodes_queued",
            "Decodes waiting in the scheduler (not counting those running).",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """This registry in Prometheus's text format."""
        return generate_latest(self.registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_expositions(parts: Mapping[str, bytes], label: str = "replica") -> bytes:
    """Several processes' expositions as one: each sample gains ``label`` = its process's key, and a metric that
    several report is one family (one HELP and TYPE) with all their samples."""
    families: dict[str, Metric] = {}
    for key, text in sorted(parts.items()):
        for family in text_string_to_metric_families(text.decode()):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                merged.add_sample(sample.name, {**sample.labels, label: key}, sample.value, sample.timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)
