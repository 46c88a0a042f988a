"""What users fields and mutations do: validation, policy, the social graph."""
