"""OpenTelemetry export: :func:`shutdown_telemetry`, as icechunk 2.x offers it.

icechunk 2.x can export its tracing spans over OTLP when built with that feature and given an
endpoint (``ICECHUNK_OTLP_ENDPOINT``); ``shutdown_telemetry`` flushes the exporter and runs at
exit. pyicechunk exports no spans, so there is never anything to flush.
"""

from __future__ import annotations

__all__ = ["shutdown_telemetry"]


def shutdown_telemetry() -> None:
    """Flush and stop telemetry export (nothing to do: pyicechunk exports no spans)."""
