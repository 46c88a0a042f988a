"""What media fields and mutations do: upload rules, ownership, URLs."""
