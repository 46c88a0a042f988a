"""Media metadata (relational store) and media bytes (blob store)."""
