"""Accounts: users, roles, API tokens, and the login/registration views."""
