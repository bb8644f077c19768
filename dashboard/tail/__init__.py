"""Live tails: the messages flowing through one queue or topic now."""
