"""TaskQueue's scheduler service: APScheduler jobs that keep Postgres and Redis in step."""
