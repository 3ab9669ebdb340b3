"""Settings of the example Django project that servestatic serves the static files of.

Django serves the views; `collectstatic` writes hashed names into STATIC_ROOT and, through
servestatic's storage, compresses them and writes servestatic's manifest; `servestatic serve`
answers /static/ itself and hands every other request to `mysite.wsgi:application`.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example project: the key comes from the environment in any real deployment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "hello",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# What these middleware add to a page, servestatic adds to every static file too, read from
# these settings at start-up (docs/django.md, "Security headers and the https redirect").
SECURE_HSTS_SECONDS = 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
X_FRAME_OPTIONS = "SAMEORIGIN"
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"
# Off here so that the example runs over plain http; on in production behind https.
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SSL_REDIRECT", "") == "1"
if os.environ.get("DJANGO_PROXY_SSL_HEADER"):  # such as HTTP_X_FORWARDED_PROTO
    SECURE_PROXY_SSL_HEADER = (os.environ["DJANGO_PROXY_SSL_HEADER"], "https")

# Django's own log lines (a 404's "Not Found: /path") on the console, printed once.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"}},
}

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {},
    },
]

DATABASES: dict = {}
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
# User uploads: files that appear while the site runs, served by a mount declared as
# changing at run time (docs/django.md, "Media").
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Django's ManifestStaticFilesStorage, then `servestatic compress` over STATIC_ROOT.
    "staticfiles": {"BACKEND": "servestatic.django.CompressedManifestStaticFilesStorage"},
}
