"""Fire drills: every alert of monitoring/thresholds.yaml provoked on the running system."""
