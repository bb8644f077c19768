"""Dead letters: the dead-letter queues, the inbox, requeue and discard."""
