"""Deployment files and the tools that generate them (not installed with the package)."""
