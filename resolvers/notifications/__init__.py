"""Notifications: the list, read state, preferences and push devices of the viewer."""
