"""Django template tags; `"servestatic"` in INSTALLED_APPS makes `{% load servestatic %}` find them."""
