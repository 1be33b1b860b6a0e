"""Running the service: the daily report (build, render, send), metrics for Prometheus, the log file,
and demo data. Reads through domain.stats; writes nothing but the report's e-mail and the logs."""
