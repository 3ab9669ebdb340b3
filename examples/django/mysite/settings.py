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
]

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
STORAGES = {
    # Django's ManifestStaticFilesStorage, then `servestatic compress` over STATIC_ROOT.
    "staticfiles": {"BACKEND": "servestatic.django.CompressedManifestStaticFilesStorage"},
}
