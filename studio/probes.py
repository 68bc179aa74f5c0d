"""Scrapes and probes that reach a pod by its address still get an answer.

Prometheus scrapes ``/metrics`` (and a kubelet may probe ``/healthz``, ``/readyz``) at the
pod's IP over plain HTTP, with that IP as the Host header. Django would refuse the host
(``ALLOWED_HOSTS`` names the site, not every pod address) and, in production, redirect to
HTTPS. For these paths only, a Host that is an IP literal is read as the first host the
site allows, and the HTTPS redirect is waived (``SECURE_REDIRECT_EXEMPT``). They build no
links from the host, so nothing learns the substitute; every other path is checked as before.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

PROBE_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
# SecurityMiddleware matches these against the path without its leading slash.
REDIRECT_EXEMPT = [rf"^{path.lstrip('/')}$" for path in sorted(PROBE_PATHS)]


def _is_address(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _site_host() -> str | None:
    """The first host ``ALLOWED_HOSTS`` names outright (no wildcard, no leading dot)."""
    return next(
        (host for host in settings.ALLOWED_HOSTS if host != "*" and not host.startswith(".")),
        None,
    )


class ProbeHostMiddleware:
    """First in the chain, before SecurityMiddleware and CommonMiddleware read the host."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in PROBE_PATHS and _is_address(request.META.get("HTTP_HOST", "")):
            site = _site_host()
            if site is not None:
                request.META["HTTP_HOST"] = site
        return self.get_response(request)
