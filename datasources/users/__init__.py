"""Users, credentials and the social graph, in the relational store."""
