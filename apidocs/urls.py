from django.urls import path

from apidocs import views

urlpatterns = [
    path("openapi.json", views.openapi_json, name="openapi"),
    path("asyncapi.json", views.asyncapi_json, name="asyncapi"),
    path("docs", views.docs, name="docs"),
]
