"""GraphQL types of the posts domain: posts, comments, takes, templates, trends."""
