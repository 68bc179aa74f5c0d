"""Flowgate settings. Every value comes from the environment (see ``env.py``) with a
default that is safe for a developer's machine; production sets the environment."""

from __future__ import annotations

import re
from pathlib import Path

from celery.schedules import crontab
from csp.constants import NONCE

from studio.env import (
    ConfigurationError,
    channel_layer,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_prices,
    env_str,
    env_url,
    local_secret,
)
from studio.flowgate_settings import FlowgateSettings
from studio.probes import REDIRECT_EXEMPT as PROBE_REDIRECT_EXEMPT

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("FLOWGATE_VAR_DIR", str(BASE_DIR / "var")))

# "local" (the default) generates what it lacks under var/; "production" requires every
# secret to be given and turns on the transport-security defaults.
FLOWGATE_ENV = env_choice("FLOWGATE_ENV", "local", choices=("local", "production"))
PRODUCTION = FLOWGATE_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", None if PRODUCTION else local_secret(VAR_DIR / "secret_key"))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "mozilla_django_oidc",
    "apps.core",
    "apps.shell",
    "apps.accounts",
    "apps.blocks",
    "apps.flows",
    "apps.runs",
    "apps.connectors",
    "apps.inbox",
    "apps.mlmodels",
    "apps.policies",
    "apps.audit",
    "apps.dashboard",
    "apps.monitoring",
    "apps.mcp_tools",
    "apps.evaluations",
]

MIDDLEWARE = [
    # Before anything reads the host: a scrape or probe at a pod's address (studio/probes.py).
    "studio.probes.ProbeHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last, so it sees a view's exception first: a database outage on /hooks/ and /api/.
    "studio.outage.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.workspace",
            ],
        },
    },
]

# --- data stores -----------------------------------------------------------------------
DATABASES = {
    "default": database_from_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flowgate"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss"))

CACHES = {
    "default": {
        "BACKEND": "apps.core.cache.SharedPoolRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "flowgate",
    }
}

CHANNEL_LAYERS = {"default": channel_layer(REDIS_URL)}

# --- auth ------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "shell:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Brute-force protection: lock a username+address pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("LOGIN_COOLOFF_HOURS", 0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True

# --- single sign-on: OpenID Connect (mozilla-django-oidc) -------------------------------
# On when OIDC_RP_CLIENT_ID is set. The provider's endpoints are given one by one, so any
# standard provider works (Keycloak, Entra ID, Okta, Google, Authentik, ...); the
# callback to register with it is SITE_URL + /oidc/callback/. See README, "Team
# administration and access".
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER", "")  # the id_token's "iss" must equal it
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_ROLES = env_list("OIDC_GROUP_ROLES", [])  # idp-group=workspace-slug:role,...
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_CALLBACK_CLASS = "apps.accounts.oidc.SignInCallback"
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
# Off: the log-in page offers single sign-on only and refuses passwords (API tokens work).
LOCAL_PASSWORDS = env_bool("LOCAL_PASSWORDS", True)
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.FlowgateOIDCBackend")
if not LOCAL_PASSWORDS and not OIDC_ENABLED:
    raise ConfigurationError("LOCAL_PASSWORDS=false needs single sign-on (OIDC_RP_CLIENT_ID)")
INVITATION_MAX_AGE_DAYS = env_int("INVITATION_MAX_AGE_DAYS", 7, minimum=1)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = PROBE_REDIRECT_EXEMPT  # scrapes and probes over plain HTTP
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy without 'unsafe-inline': every script and style is a file, except
# the <style> elements the policy editor (CodeMirror) creates, admitted by a per-request
# nonce that only pages reading ``request.csp_nonce`` send.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "font-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

# --- i18n, static ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static" / "dist"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.accounts.authentication.TokenScopePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.FlowgateAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.ratelimit.RedisRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flowgate API",
    "DESCRIPTION": "Governed AI automation: flows, runs, reviews, models and policies.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)

# --- Celery ----------------------------------------------------------------------------
# JSON only, late acks and one message at a time: a worker that dies mid-task leaves the
# message for another worker, and Postgres (not Redis) decides whether work is still due.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A SIGKILLed worker's message comes back after this long. Postgres, not the message,
# says what is due (the reconciler re-drives within seconds), and every task is safe to
# run twice, so this only needs to outlast a normal task (a drain: DRAIN_MAX_SECONDS).
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 120, minimum=30)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Several deployments (or test runs) can share one Redis by giving each its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The reconciler has a queue (and a worker process, studio/processes.py) of its own, so
# its ticks never wait behind a backlog of drains.
CELERY_CONTROL_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}.control"
# Housekeeping ticks (the reconciler, the audit sealer) never wait behind drains.
CELERY_TASK_ROUTES = {
    "runs.reconcile": {"queue": CELERY_CONTROL_QUEUE},
    "audit.seal": {"queue": CELERY_CONTROL_QUEUE},
    "dashboard.materialise": {"queue": CELERY_CONTROL_QUEUE},
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless
# this is set, which costs a new Postgres backend per task (the largest share of a short
# run's CPU). Workers follow Django's request rule instead: studio/celery.py closes a
# connection around each task only when it is broken or older than CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = 1_000_000
# The reconciler is what makes runs durable: it re-drives anything Postgres says is due.
CELERY_BEAT_SCHEDULE = {
    "reconcile-runs": {
        "task": "runs.reconcile",
        "schedule": env_float("RECONCILE_INTERVAL_SECONDS", 2.0),
        "options": {"expires": 10},
    },
    # Scheduled flows (trigger.schedule): their subscription rows are read every minute.
    "start-scheduled-flows": {
        "task": "runs.schedules_tick",
        "schedule": crontab(),
        "options": {"expires": 50},
    },
    # Appended audit events are chained by one sealer; a decision is sealed within this.
    "seal-audit-trail": {
        "task": "audit.seal",
        "schedule": env_float("AUDIT_SEAL_INTERVAL_SECONDS", 1.0),
        "options": {"expires": 5},
    },
    # The dashboard's rollups count what ended since the last pass (apps/dashboard/rollups.py).
    "materialise-dashboard": {
        "task": "dashboard.materialise",
        "schedule": env_float("DASHBOARD_MATERIALISE_SECONDS", 2.0),
        "options": {"expires": 10},
    },
    # Model monitoring: drift, accuracy, SLO alerts and canary analysis per workspace.
    "monitoring-check": {
        "task": "monitoring.check_all",
        "schedule": env_float("MONITORING_CHECK_SECONDS", 300.0),
        "options": {"expires": 240},
    },
    # Retention (Settings → Data): finished runs older than the workspace's limit.
    "purge-expired-runs": {
        "task": "runs.purge_expired",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 6 * 3600},
    },
}

# --- Flowgate --------------------------------------------------------------------------
FLOWGATE: FlowgateSettings = {
    # Connector credentials are encrypted with this key; losing it loses the credentials.
    "ENCRYPTION_KEY": env_str(
        "FLOWGATE_ENCRYPTION_KEY",
        None if PRODUCTION else local_secret(VAR_DIR / "encryption_key"),
    ),
    # Earlier keys, still accepted for reading until `manage.py connections rotate-keys`.
    "RETIRED_ENCRYPTION_KEYS": env_list("FLOWGATE_RETIRED_ENCRYPTION_KEYS", []),
    # Redis Streams consumer (`manage.py streams consume`): how long a message may stay
    # pending with a dead consumer before another claims it, and the read block time.
    "STREAM_CLAIM_IDLE_SECONDS": env_int("STREAM_CLAIM_IDLE_SECONDS", 60, minimum=1),
    "STREAM_BLOCK_MILLISECONDS": env_int("STREAM_BLOCK_MILLISECONDS", 1000, minimum=10),
    "MLFLOW_TRACKING_URI": env_str("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001"),
    "MODEL_SERVICE_URL": env_str("MODEL_SERVICE_URL", "http://127.0.0.1:3001"),
    # The model block's circuit breaker: open after this many consecutive failures...
    "MODEL_BREAKER_FAILURES": env_int("MODEL_BREAKER_FAILURES", 5, minimum=1),
    # ...for this long, then let one probe call through.
    "MODEL_BREAKER_COOLDOWN_SECONDS": env_float("MODEL_BREAKER_COOLDOWN_SECONDS", 30.0),
    # Model steps of one process that call the service together (a drain's runs, sync
    # webhooks) go in one /predict_rows request: a step waits at most this long for the
    # others it knows are on their way (none when it is alone), up to this many rows.
    "MODEL_BATCH_JOIN_SECONDS": env_float("MODEL_BATCH_JOIN_SECONDS", 0.005),
    "MODEL_BATCH_MAX_ROWS": env_int("MODEL_BATCH_MAX_ROWS", 64, minimum=1),
    # Estimated cost of one model.predict call, in COST_CURRENCY, recorded with each step
    # (the dashboard's cost per 1,000 inferences): MODEL_COSTS prices models by name
    # ("claim-fraud=0.0004,ticket-triage=0.0001"), MODEL_COST_PER_CALL every other model.
    "MODEL_COST_PER_CALL": env_float("MODEL_COST_PER_CALL", 0.0),
    "MODEL_COSTS": env_prices("MODEL_COSTS"),
    # Estimated cost of an ai.* step, per 1,000 tokens (prompt + completion, every retry):
    # LLM_TOKEN_COSTS prices models by name ("support-writer=0.0001"), the other every model.
    "LLM_COST_PER_1K_TOKENS": env_float("LLM_COST_PER_1K_TOKENS", 0.0),
    "LLM_TOKEN_COSTS": env_prices("LLM_TOKEN_COSTS"),
    "COST_CURRENCY": env_str("COST_CURRENCY", "USD"),
    # The dashboard's per-minute rollups are kept this long (its longest range is 7 days);
    # hourly and all-time ones are kept for ever (a few rows per hour).
    "DASHBOARD_MINUTE_ROLLUP_DAYS": env_int("DASHBOARD_MINUTE_ROLLUP_DAYS", 8, minimum=8),
    "OPA_URL": env_str("OPA_URL", ""),
    # Bounds on every policy: source size, input size, evaluation time.
    "POLICY_MAX_SOURCE_BYTES": env_int("POLICY_MAX_SOURCE_BYTES", 64 * 1024, minimum=1024),
    "POLICY_MAX_INPUT_BYTES": env_int("POLICY_MAX_INPUT_BYTES", 256 * 1024, minimum=1024),
    "POLICY_TIMEOUT_MS": env_int("POLICY_TIMEOUT_MS", 1000, minimum=10),
    # Bounds on a CEL expression with comprehension macros (evaluated in a child process).
    "EXPRESSION_TIMEOUT_MS": env_int("EXPRESSION_TIMEOUT_MS", 1000, minimum=10),
    "EXPRESSION_MAX_MEMORY_MB": env_int("EXPRESSION_MAX_MEMORY_MB", 256, minimum=16),
    # Requests per window ("<count>/<seconds>"; "0/60" switches a scope off): the REST API
    # per token (or signed-in user), each flow's webhook, the expression preview per user.
    "RATE_LIMITS": {
        "api": env_str("RATE_LIMIT_API", "600/60"),
        "webhook": env_str("RATE_LIMIT_WEBHOOK", "600/60"),
        "preview": env_str("RATE_LIMIT_PREVIEW", "60/60"),
    },
    # How many runs deep sub-flows may nest (a cycle through flows published later ends here).
    "SUBFLOW_MAX_DEPTH": env_int("SUBFLOW_MAX_DEPTH", 8, minimum=1),
    "HTTP_TIMEOUT_SECONDS": env_float("HTTP_TIMEOUT_SECONDS", 10.0),
    "SSRF_ALLOWLIST": env_list("SSRF_ALLOWLIST", []),
    "SYNC_WEBHOOK_TIMEOUT_SECONDS": env_float("SYNC_WEBHOOK_TIMEOUT_SECONDS", 10.0),
    # A web process takes the webhooks waiting together in one batch (one commit). When
    # fewer have arrived than its last batch held, the batch waits this long at most for
    # the rest (0: never waits).
    "WEBHOOK_BATCH_JOIN_SECONDS": env_float("WEBHOOK_BATCH_JOIN_SECONDS", 0.002),
    "MAX_DELIVERIES": env_int("MAX_DELIVERIES", 5, minimum=1),
    # A run's lease: renewed every third of it while its worker works on it, so a dead
    # worker's runs move again within one lease (and a reconciler tick).
    "RUN_LEASE_SECONDS": env_int("RUN_LEASE_SECONDS", 6, minimum=3),
    # Queued runs are claimed this many at a time and advanced in one transaction; a drain
    # stops claiming after DRAIN_SECONDS, or, while its runs have calls in flight, after
    # DRAIN_MAX_SECONDS or once it holds DRAIN_MAX_RUNS runs (then it waits for them).
    "DRAIN_BATCH_SIZE": env_int("DRAIN_BATCH_SIZE", 25, minimum=1),
    "DRAIN_SECONDS": env_float("DRAIN_SECONDS", 1.0),
    "DRAIN_MAX_SECONDS": env_float("DRAIN_MAX_SECONDS", 10.0),
    "DRAIN_MAX_RUNS": env_int("DRAIN_MAX_RUNS", 500, minimum=1),
    # Call-outs (HTTP, model service, SQL, mail) in flight in each worker process, in all
    # and per destination host (or connection), flow and workspace (apps/runs/engine/io.py).
    "IO_THREADS": env_int("IO_THREADS", 256, minimum=1),
    "IO_MAX_CALLS_PER_HOST": env_int("IO_MAX_CALLS_PER_HOST", 64, minimum=1),
    "IO_MAX_CALLS_PER_FLOW": env_int("IO_MAX_CALLS_PER_FLOW", 128, minimum=1),
    "IO_MAX_CALLS_PER_WORKSPACE": env_int("IO_MAX_CALLS_PER_WORKSPACE", 192, minimum=1),
    # Calls ending this close together are recorded in one transaction.
    "IO_GATHER_SECONDS": env_float("IO_GATHER_SECONDS", 0.003),
    # /metrics: a bearer token when set; otherwise only these networks may scrape it.
    "METRICS_TOKEN": env_str("METRICS_TOKEN", ""),
    "METRICS_ALLOWED_NETWORKS": env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"]),
    # OpenTelemetry traces (apps/core/tracing.py): "none" (default), "console", or "otlp"
    # (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT). The model service reads the same variables.
    "TRACING_EXPORTER": env_choice("TRACING_EXPORTER", "none", choices=("none", "console", "otlp")),
}

if not 0 < FLOWGATE["DRAIN_SECONDS"] <= FLOWGATE["DRAIN_MAX_SECONDS"]:
    raise ConfigurationError(
        f"DRAIN_SECONDS must be above 0 and at most DRAIN_MAX_SECONDS "
        f"({FLOWGATE['DRAIN_MAX_SECONDS']}), got {FLOWGATE['DRAIN_SECONDS']}"
    )

for _scope, _limit in FLOWGATE["RATE_LIMITS"].items():
    if _limit and not re.fullmatch(r"\d+/[1-9]\d*", _limit):
        raise ConfigurationError(
            f"RATE_LIMIT_{_scope.upper()} must be <requests>/<seconds>, e.g. 600/60; got {_limit!r}"
        )

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CELERY_TASK_LOG_LEVEL = env_choice("CELERY_TASK_LOG_LEVEL", "WARNING", choices=LOG_LEVELS)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", choices=LOG_LEVELS)},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A line per request of every call-out a flow makes (the step records it anyway).
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Celery's "received" / "succeeded" lines for every task and beat's "sending due
        # task" every few seconds bury what matters; failures are logged at ERROR anyway.
        **{
            name: {"level": CELERY_TASK_LOG_LEVEL}
            for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat")
        },
    },
}
