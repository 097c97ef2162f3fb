#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as refused:
        # A setting refused (e.g. DEBUG off with the default SECRET_KEY): say what to set, without a traceback.
        sys.exit(f"manage.py: {refused}")


if __name__ == "__main__":
    main()
