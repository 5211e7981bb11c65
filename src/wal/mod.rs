//! The write-ahead log in Prometheus 2.x format (format brief §1.9–1.11).
