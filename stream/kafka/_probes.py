"""The worker's web pages on faust's web server (``BPSTREAM_WEB_PORT``; off when 0).

``/healthz``  liveness: 200 while the process and its event loop answer (served from the start,
              recovery included, so a long changelog recovery is not mistaken for a hung worker).
``/readyz``   readiness: 200 once the assigned partitions' tables are recovered and the consumer is
              fetching; 503 with the reasons while starting, rebalancing, recovering or paused.
``/metrics``  Prometheus text format (``_prometheus``).

Only these pages and faust's production index are served: faust's table and router pages are off,
since they would answer patient state by patient key.
"""

from __future__ import annotations

from typing import Any

from ._prometheus import CONTENT_TYPE, ServiceMetrics

__all__ = ["DEPLOY_WEB_PORT", "PROBE_PATHS", "install", "readiness", "web_options"]

PROBE_PATHS = {"liveness": "/healthz", "readiness": "/readyz", "metrics": "/metrics"}
DEPLOY_WEB_PORT = 6066  # the port deploy/ sets in BPSTREAM_WEB_PORT (faust's usual web port); the code's default is off


def web_options(settings: Any) -> dict[str, Any]:
    """faust's web settings: the server on ``web_port`` when it is set, off otherwise."""
    if not settings.web_port:
        return {"web_enabled": False}
    return {"web_enabled": True, "web_port": settings.web_port, "web_bind": settings.web_bind,
            "web_tables_enabled": False, "web_router_enabled": False, "web_stats_enabled": False,
            "web_graph_enabled": False, "web_metrics_enabled": False}


def readiness(app: Any, started: bool) -> list[str]:
    """Why the worker is not ready (empty: ready). ``started``: the first recovery finished."""
    if not started:
        return ["starting"]
    why = []
    if getattr(app, "rebalancing", False):
        why.append("rebalancing")
    if getattr(app, "in_recovery", False):
        why.append("recovering")
    recovery = getattr(app.tables, "recovery", None)
    if recovery is not None and not recovery.completed.is_set():
        why.append("recovery not completed")
    if not app.consumer.flow_active:
        why.append("consumer paused")
    return why


def install(app: Any, processor: Any, table: Any) -> ServiceMetrics:
    """Register the three pages (call only with the web server on)."""
    metrics = ServiceMetrics(processor, table, app)
    state = {"started": False}

    @app.task
    async def _mark_started() -> None:  # app tasks start after the first table recovery has completed
        state["started"] = True

    @app.page(PROBE_PATHS["liveness"])
    async def healthz(view: Any, request: Any) -> Any:
        return view.json({"status": "alive"})

    @app.page(PROBE_PATHS["readiness"])
    async def readyz(view: Any, request: Any) -> Any:
        why = readiness(app, state["started"])
        return view.json({"ready": not why, "reasons": why}, status=503 if why else 200)

    @app.page(PROBE_PATHS["metrics"])
    async def metrics_page(view: Any, request: Any) -> Any:
        # the header itself: aiohttp refuses a charset in its content_type argument
        return view.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return metrics
