"""Input that no form or protocol may store: NUL characters, and ids too big for an id column.

PostgreSQL's text cannot hold ``\\x00`` (SQLite can, which is worse: it cuts C strings short), so
a NUL is refused wherever a stranger or an admin can type one. Forms refuse it with the field's
own error (``RefusesNul``); the linkback engine refuses it in URLs (``linkback.urls.url_problem``);
the trackback reader in every field. No Flask here: the linkback engine uses it too.
"""
from __future__ import annotations

NUL = "\x00"
NUL_MESSAGE = "This field cannot contain a NUL character (%00)."
# The largest id an Integer column holds (PostgreSQL); bigger ones make SQLite raise OverflowError.
MAX_ID = 2**31 - 1
BIGINT_MAX = 2**63 - 1  # what a BIGINT column holds (an imported site's ids)


def contains_nul(value: object) -> bool:
    return isinstance(value, str) and NUL in value


def parse_id(value: object, *, maximum: int = MAX_ID) -> int | None:
    """``value`` as a row id (1 to ``maximum``, written in ASCII digits), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= maximum else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if 1 <= number <= maximum else None


class RefusesNul:
    """A form mixin (``class LoginForm(RefusesNul, FlaskForm)``): any field sent with a NUL fails
    with ``NUL_MESSAGE``, and keeps what was typed, minus the NUL, to show it again.

    The NUL is taken out before the other validators run, so none of them (nor anything they
    look up) ever sees it.
    """

    def validate(self, extra_validators=None):
        refused = []
        for field in self:
            if any(contains_nul(value) for value in field.raw_data or ()):
                refused.append(field)
                if contains_nul(field.data):
                    field.data = field.data.replace(NUL, "")
        valid = super().validate(extra_validators)
        for field in refused:
            field.errors = [*field.errors, NUL_MESSAGE]
        return valid and not refused
