"""The overview: every cluster's health, version, nodes and counts, as a page and as JSON."""
