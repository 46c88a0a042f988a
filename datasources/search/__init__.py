"""Search: a `SearchIndex` protocol with an embedded Tantivy and an Elasticsearch implementation."""
