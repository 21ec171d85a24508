"""deliverylog/: every attempt's outcome, per-event state, statistics and samples (Event Delivery)."""
