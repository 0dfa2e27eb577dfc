"""Every domain's scheduled jobs, gathered for the worker (server/worker.py). PostgreSQL is the source of truth; the queue only schedules."""
