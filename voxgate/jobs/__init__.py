"""Async jobs: a durable queue of files to transcribe (:mod:`.store`, :mod:`.sqlite`), the runner that claims and runs
them on the service's scheduler (:mod:`.runner`), and the two places a job talks to the network: fetching its
``audioUri`` and posting its completion callback (:mod:`.fetch`, :mod:`.webhook`).

The core knows nothing of the wire: a job's request and its result document are bytes the edge
(:mod:`voxgate.server.jobs`) writes and reads.
"""

from voxgate.jobs.backends import open_store
from voxgate.jobs.store import CallbackState, JobRecord, JobState, JobStore, NewJob

__all__ = ["CallbackState", "JobRecord", "JobState", "JobStore", "NewJob", "open_store"]
