"""Who may do what: API tokens for scripts, users with argon2 passwords and signed sessions for the form,
CSRF tokens on every form post, single-use login links, and rate limits on logins."""
