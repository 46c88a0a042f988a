"""Messaging (end-to-end encrypted): key directory, relay, MLS delivery service, calls."""
