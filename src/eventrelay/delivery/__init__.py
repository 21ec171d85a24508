"""delivery/: workers that claim due work, send it, classify the outcome and settle the job."""
