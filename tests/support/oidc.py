"""A real OpenID Connect provider for the sign-in tests: node ``oidc-provider`` (from
npm, see package.json) run on a loopback port by ``tests/support/oidc_provider.mjs``."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .processes import REPOSITORY_ROOT, stop_process_group, wait_for_http

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str

    def settings(self, **extra: str) -> dict[str, str]:
        """The studio's environment for signing in through this provider."""
        return {
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/auth",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/me",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "OIDC_RP_SCOPES": "openid email profile groups",
            "OIDC_PROVIDER_NAME": "Corp SSO",
            **extra,
        }


@contextmanager
def oidc_provider(
    *, port: int, redirect_uri: str, accounts: dict | None = None
) -> Iterator[OidcProvider]:
    """Serve the provider on ``port`` (choose it with ``free_ports`` together with the
    studio's, whose callback ``redirect_uri`` is)."""
    provider = OidcProvider(f"http://127.0.0.1:{port}", "flowgate", "test-only-client-secret")
    log = Path(tempfile.mkstemp(prefix="flowgate-oidc-", suffix=".log")[1])
    environment = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "PORT": str(port),
        "CLIENT_ID": provider.client_id,
        "CLIENT_SECRET": provider.client_secret,
        "REDIRECT_URI": redirect_uri,
        "ACCOUNTS": json.dumps(accounts or {}),
        "NODE_ENV": "development",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["node", str(SCRIPT)],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_http(
            f"{provider.issuer}/.well-known/openid-configuration",
            process=process,
            seconds=30,
            log=log,
        )
        yield provider
    finally:
        stop_process_group(process)
