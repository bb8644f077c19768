"""Dead-letter pages: the dead-letter queues across clusters (manage / let go) and the inbox."""
