"""voxgate on a Ray cluster (``pip install 'voxgate[ray]'``): Ray Serve runs the same FastAPI app as the single process
in ingress replicas, and each model in a deployment of its own whose replicas decode for every ingress replica.

* :mod:`.engine` — :class:`~voxgate.cluster.engine.ClusterEngine`, the :class:`~voxgate.engines.base.Engine` an
  ingress replica holds for a deployed model: each decode is a call to the model deployment's handle, retried on
  another replica when the one it went to died.
* :mod:`.model` — :class:`~voxgate.cluster.model.ModelServer`, one model's replica: the model loaded as in the single
  process, its decodes queued on the same :class:`~voxgate.scheduler.Scheduler` (finals first, drafts from every
  ingress replica batched together).
* :mod:`.app` — the Serve application (:func:`~voxgate.cluster.app.build`, for ``serve run`` and ``deploy/serve.yaml``)
  and :func:`~voxgate.cluster.app.run_local` (``voxgate serve --ray``).

Only :mod:`.app` imports Ray at import time; the rest is plain voxgate and is tested without a cluster too.
"""
