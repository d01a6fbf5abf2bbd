class InvalidEmail(ValueError):
    pass


USERS = {}


def validate_email(address):
    """The normalized address (stripped, lower-cased), or InvalidEmail."""
    email = address.strip().lower()
    if email.count("@") != 1:
        raise InvalidEmail(email)
    local, domain = email.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise InvalidEmail(email)
    return email


def register(username, email):
    email = validate_email(email)
    USERS[username] = email
    return email


def change_email(username, email):
    if username not in USERS:
        raise KeyError(username)
    email = validate_email(email)
    USERS[username] = email
    return email
