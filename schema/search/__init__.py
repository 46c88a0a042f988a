"""GraphQL types of search: results, suggestions, history, hashtags and trending tags."""
