"""The posts domain: posts, comments, takes, Behind-the-Takes, templates, trends."""
