"""A stand-in for "the next release" in the rolling-upgrade test: an app with no models whose
one migration changes a hot table (``runs_run``) the way a real release does. Installed only
under test settings, so the test can roll it back (the previous release) and apply it under
load without going back through the project's own migration history, which today's code
depends on in full."""
