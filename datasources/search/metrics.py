"""Search metrics for operators, in `/metrics` (server/app.py registers this
registry into the app's): latency per search type and searches that found
nothing. The type label is bounded: a SearchType, ALL (unfiltered) or MIXED
(several types asked), and AUTOCOMPLETE for prefix suggestions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class SearchMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.seconds = Histogram(
            "entativa_search_seconds",
            "Time to answer a search (index and privacy checks), by search type",
            ["platform", "type"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.zero_results = Counter(
            "entativa_search_zero_results",
            "Searches that found nothing, by search type",
            ["platform", "type"],
            registry=self.registry,
        )

    def observe(self, platform: str, type_label: str, seconds: float, found: int) -> None:
        self.seconds.labels(platform, type_label).observe(seconds)
        if found == 0:
            self.zero_results.labels(platform, type_label).inc()
        else:  # the series exists from the first search, so rates start at 0
            self.zero_results.labels(platform, type_label).inc(0)
