"""User-facing errors: one line that says what is wrong and how to fix it."""


class UserError(ValueError):
    """Bad input from the user (a path, a count, an option).  Entry points print it as one line."""
