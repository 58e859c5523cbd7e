"""Moderation: reports, content filter, moderation actions, audit log, admin dashboard."""
