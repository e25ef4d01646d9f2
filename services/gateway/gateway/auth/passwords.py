"""Password hashing with scrypt (a memory-hard KDF), via werkzeug."""
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the KDF's input; nobody types more

# A fixed hash to compare against when the user does not exist, so a login for an
# unknown username costs the same time as a wrong password (no user enumeration by timing).
_DUMMY = generate_password_hash("timing-equaliser-not-a-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        check_password_hash(_DUMMY, password)
        return False
    return check_password_hash(password_hash, password)
