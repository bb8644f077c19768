"""Template tags of the dead-letter pages, one library per part of a letter's page."""
