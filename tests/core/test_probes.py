"""A scrape or probe at a pod's address gets its answer (the Helm chart's ServiceMonitor
scrapes the web pods by IP over plain HTTP); every other path still checks the host."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

POD = "10.42.0.7:8000"  # a Host header only: no request leaves the test process


@pytest.fixture
def production_like(settings):
    settings.ALLOWED_HOSTS = ["flowgate.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.FLOWGATE = {**settings.FLOWGATE, "METRICS_TOKEN": "scrape-token"}


def test_prometheus_scrapes_metrics_at_the_pods_address(production_like):
    response = Client().get("/metrics", HTTP_HOST=POD, HTTP_AUTHORIZATION="Bearer scrape-token")
    assert response.status_code == 200
    assert b"flowgate_" in response.content


def test_a_probe_at_the_pods_address_is_answered_over_plain_http(production_like):
    response = Client().get("/healthz", HTTP_HOST=POD)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_metrics_still_need_the_token(production_like):
    assert Client().get("/metrics", HTTP_HOST=POD).status_code == 404


def test_other_paths_still_refuse_an_unknown_host_and_redirect_to_https(production_like):
    assert Client().get("/login/", HTTP_HOST=POD).status_code == 400
    redirected = Client().get("/login/", HTTP_HOST="flowgate.example.com")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://flowgate.example.com/")
