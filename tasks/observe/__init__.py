"""Observability: metrics for Prometheus, OpenTelemetry traces, and pictures of results."""
