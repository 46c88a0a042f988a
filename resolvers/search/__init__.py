"""Search: one query across users, posts, takes, hashtags and places; hashtags and trends."""
