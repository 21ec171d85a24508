"""admin/: the admin API (deliveries, stats, redrive, check, Config API), the web page and /metrics."""
