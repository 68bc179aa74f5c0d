#!/usr/bin/env python
"""Django's command-line utility for Flowgate."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.base")
    from studio.env import ConfigurationError

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ConfigurationError as error:
        sys.stderr.write(f"flowgate: configuration error: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
