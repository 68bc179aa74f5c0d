"""``manage.py models train_demo``: train and register the demo models in MLflow.

Generates the demo data sets (nothing is downloaded), trains scikit-learn pipelines, logs
parameters and metrics and registers each version; versions that exist are kept, so running
it again is harmless. ``--weak`` also registers a deliberately weak version (trained on
shuffled labels) of each model, to try canary analysis with. ``--wait`` waits for the registry to come up first (the studio starts
MLflow alongside and runs this once it answers).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.demo import DEMO_WORKSPACE
from apps.mlmodels.registry import tracking_uri
from apps.mlmodels.training import DEMO_MODELS, registry_is_up, train_demo_models


class Command(BaseCommand):
    help = "Model registry tasks: train_demo trains and registers the demo models."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["train_demo"])
        parser.add_argument("--model", action="append", choices=sorted(DEMO_MODELS))
        parser.add_argument("--rows", type=int, default=None, help="rows of generated data")
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for MLflow")
        parser.add_argument(
            "--weak",
            action="store_true",
            help="also register a deliberately weak version (shuffled labels) of each model",
        )
        parser.add_argument(
            "--owner",
            default=DEMO_WORKSPACE[0],
            help="slug of the workspace that manages the models (when they have no owner yet)",
        )

    def handle(
        self, *args, action: str, model, rows, wait: float, owner: str, weak: bool, **options
    ) -> None:
        uri = tracking_uri()
        deadline = time.monotonic() + wait
        while not registry_is_up(uri):
            if time.monotonic() >= deadline:
                raise CommandError(f"the MLflow registry at {uri} is not answering")
            time.sleep(1.0)
        trained = train_demo_models(
            tracking_uri=uri, names=tuple(model or DEMO_MODELS), rows=rows, owner=owner, weak=weak
        )
        for item in trained:
            metrics = ", ".join(f"{k}={v:g}" for k, v in item.metrics.items())
            self.stdout.write(f"registered {item.name} version {item.version} ({metrics})")
        if not trained:
            self.stdout.write("the demo models are already registered")
