"""Websocket consumers of the live pages."""
