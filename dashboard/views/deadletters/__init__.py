"""Dead-letter pages. Part A: the dead-letter queues across clusters (manage / let go)."""
