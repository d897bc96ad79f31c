"""Prometheus instruments, one registry per service instance (so tests can build many apps side by side)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

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
