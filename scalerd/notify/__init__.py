"""Notifications out: CloudEvents webhooks, Slack and Teams, through a durable outbox."""
