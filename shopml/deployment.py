"""Refuse to start a deployment on placeholder secrets: ``python -m shopml.deployment check-secrets``.

docker-compose's ``airflow-init`` runs it before migrating the metadata database, so the stack does not
come up with ``change-me`` from ``.env.example`` (a JWT secret anyone can guess lets anyone forge tokens)
or with a Fernet key Airflow cannot use to encrypt connections.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
from collections.abc import Mapping

# Secrets the stack reads from .env, each at least this long and never a known placeholder.
SECRETS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
)
FERNET_KEY = "AIRFLOW_FERNET_KEY"
MIN_LENGTH = 16
PLACEHOLDERS = {"change-me", "changeme", "admin", "password", "secret", "airflow", "postgres"}
HOW_TO = (
    "generate them with: python -c 'import secrets; print(secrets.token_urlsafe(32))' and, for the Fernet key, "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def _fernet_key_valid(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def secret_problems(environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the deployment's secrets, one line each (empty: all usable)."""
    problems = []
    for name in SECRETS:
        value = environ.get(name, "")
        if not value:
            problems.append(f"{name} is not set")
        elif value.lower() in PLACEHOLDERS:
            problems.append(f"{name} is the placeholder {value!r}")
        elif len(value) < MIN_LENGTH:
            problems.append(f"{name} has {len(value)} characters; at least {MIN_LENGTH} are required")
    if not _fernet_key_valid(environ.get(FERNET_KEY, "")):
        problems.append(f"{FERNET_KEY} is not a Fernet key (32 url-safe base64-encoded bytes)")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args != ["check-secrets"]:
        sys.stderr.write("usage: python -m shopml.deployment check-secrets\n")
        return 2
    problems = secret_problems(os.environ)
    if problems:
        sys.stderr.write("refusing to start: " + "; ".join(problems) + f"\n{HOW_TO}\n")
        return 1
    sys.stdout.write("secrets: ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
