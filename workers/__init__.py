"""Celery tasks: thin glue between the queue, ml/ and scans.services."""
