"""Which search index a process uses, picked by settings (server/settings.py
`ENTATIVA_SEARCH_BACKEND`): the embedded Tantivy index under the data directory
(default), or Elasticsearch / an OpenSearch-API server at a URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasources.search.store import SearchIndex


@dataclass(frozen=True)
class SearchConfig:
    backend: str = "tantivy"  # tantivy | elasticsearch
    path: Path = Path("data/search")  # the Tantivy index directory
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_index: str = "entativa-search"  # the alias every read and write uses
    # OpenSearch (and osmem-server) refuse the Elasticsearch client's compatibility
    # media type: send plain JSON (datasources/search/elastic.py).
    opensearch_compatible: bool = False


def build_search_index(config: SearchConfig) -> SearchIndex:
    if config.backend == "elasticsearch":
        from datasources.search.elastic import ElasticSearchIndex

        return ElasticSearchIndex(
            config.elasticsearch_url,
            config.elasticsearch_index,
            opensearch_compatible=config.opensearch_compatible,
        )
    if config.backend != "tantivy":
        raise ValueError(f"unknown search backend {config.backend!r} (tantivy, elasticsearch)")
    from datasources.search.tantivy_index import TantivySearchIndex

    return TantivySearchIndex(config.path)
