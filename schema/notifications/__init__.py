"""GraphQL types and root fields of notifications."""
