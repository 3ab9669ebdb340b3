"""`{% sri %}`: the integrity and crossorigin attributes of a static file, for a page that
loads it from another host (a CDN) and wants the browser to check every byte.

    {% load static servestatic %}
    <link rel="stylesheet" href="{% static 'css/site.css' %}" {% sri 'css/site.css' %}>

writes `integrity="sha384-..." crossorigin="anonymous"`, the value `servestatic compress`
recorded for the hashed file the `static` tag names (`CompressedManifestStaticFilesStorage.
integrity`). With another storage, or no value recorded, it writes nothing, so a page
renders the same in development.
"""

from __future__ import annotations

from django import template
from django.contrib.staticfiles.storage import staticfiles_storage
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def sri(path: str) -> SafeString:
    integrity = getattr(staticfiles_storage, "integrity", None)
    value = integrity(path) if integrity is not None else ""
    if not value:
        return mark_safe("")
    return format_html('integrity="{}" crossorigin="anonymous"', value)
