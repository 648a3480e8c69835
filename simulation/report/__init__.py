"""The run's report: ``report.json`` (the facts, ``RunReport.to_dict()``), ``junit.xml`` (a case
per assertion) and a self-contained ``report.html`` with the timeline; plus the summary printed on
the terminal. ``build`` makes the typed ``RunReport`` once; every face reads it."""

from .build import CLIENT_MODEL, build, histogram
from .fleet import FleetReport, LbSwapRow, LbTraffic, SkewRow, build_fleet
from .model import Bucket, Latency, LongRequest, LongRequests, Requests, RunReport, Swap, Timings, WebSockets
from .output import junit, summary_lines, write

__all__ = [
    "CLIENT_MODEL",
    "Bucket",
    "FleetReport",
    "Latency",
    "LbSwapRow",
    "LbTraffic",
    "LongRequest",
    "LongRequests",
    "Requests",
    "RunReport",
    "SkewRow",
    "Swap",
    "Timings",
    "WebSockets",
    "build",
    "build_fleet",
    "histogram",
    "junit",
    "summary_lines",
    "write",
]
