"""User-facing errors: one line that says what is wrong and how to fix it."""


class UserError(ValueError):
    """Bad input from the user (a path, a count, an option).  Entry points print it as one line."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
