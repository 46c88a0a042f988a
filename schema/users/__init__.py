"""The users subgraph: User, the social graph, sign-up and sessions."""
