"""ASGI entry point: servestatic chains to it with SERVESTATIC_APP=mysite.asgi:application.

The same project under ASGI (Django's async views, or channels later); servestatic
tells it from wsgi.py's application by itself.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_asgi_application()
