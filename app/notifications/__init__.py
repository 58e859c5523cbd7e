"""In-app notifications (issue 18): "your turn", "someone continued your story", "your
invitation was used". Stored rows (kept for users who were away), a bell with the unread
count, delivered live over one per-user stream. No e-mail."""
