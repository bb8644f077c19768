"""Live metrics: charts over websockets, history from the database, consumers seen."""
