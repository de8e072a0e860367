"""The one email check for addresses people type: the API schemas and the admin forms use
`Email`, the CLI and the invite service `checked_email`, so an address one of them accepts is
accepted by all. (Pool participants get synthetic addresses under the reserved .invalid
domain, which this check would refuse; they are made by the code, not typed.)"""

from typing import Annotated

from pydantic import AfterValidator, Field

from pickwise.core.errors import InvalidInput


def valid_email(value: str) -> str:
    """The address as stored: trimmed, the domain in its normalised form (what pydantic's
    EmailStr gives). ValueError, with the reason, when it is not an address."""
    # Imported here: only the paths that take an address need it.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc


def checked_email(value: str) -> str:
    """`valid_email` for the CLI and services: a bad address is an InvalidInput on `email`."""
    try:
        return valid_email(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="email") from exc


# For request schemas: the same check, documented as an email in the OpenAPI schema.
Email = Annotated[str, AfterValidator(valid_email), Field(json_schema_extra={"format": "email"})]
