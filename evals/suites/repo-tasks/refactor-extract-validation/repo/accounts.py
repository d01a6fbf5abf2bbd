class InvalidEmail(ValueError):
    pass


USERS = {}


def register(username, email):
    email = email.strip().lower()
    if email.count("@") != 1:
        raise InvalidEmail(email)
    local, domain = email.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise InvalidEmail(email)
    USERS[username] = email
    return email


def change_email(username, email):
    if username not in USERS:
        raise KeyError(username)
    email = email.strip().lower()
    if email.count("@") != 1:
        raise InvalidEmail(email)
    local, domain = email.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise InvalidEmail(email)
    USERS[username] = email
    return email
