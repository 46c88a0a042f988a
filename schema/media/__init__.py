"""The media subgraph: Media and its upload/delete mutations."""
