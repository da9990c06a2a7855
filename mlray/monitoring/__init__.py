"""Monitoring and the feedback loop: drift, delayed-label performance, freshness, skew, replay."""
