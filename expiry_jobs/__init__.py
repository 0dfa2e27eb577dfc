"""The worker and its scheduled sweeps. PostgreSQL is the source of truth; the queue only schedules."""
