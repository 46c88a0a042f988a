"""Domain events: the transactional outbox, the event bus, the relay between them."""
