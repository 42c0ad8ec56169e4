"""One django-ninja endpoint answering constant JSON, under /api/ like the real ones.

It answers the way qlued's views do (an HttpResponse of ready JSON bytes), so what
it measures is Django, the middleware and ninja's dispatch, and nothing else.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import NinjaAPI

BODY = b'{"job_id": "None", "status": "DONE", "detail": "floor", "error_message": "None"}'

api = NinjaAPI(title="floor", urls_namespace="floor", docs_url=None, openapi_url=None)


@api.get("/floor")
def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("api/v2/", api.urls)]
