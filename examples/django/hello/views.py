from django.http import HttpResponse
from django.shortcuts import render


def home(request):
    return render(request, "hello/home.html")


def hello(request):
    name = request.GET.get("name", "world")
    return HttpResponse(f"Hello from Django, {name}!\n", content_type="text/plain; charset=utf-8")
