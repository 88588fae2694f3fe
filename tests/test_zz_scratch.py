import json
def test_probe(api, source, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as cbs:
        r = api.post("/api/v1/leads", {"first_name": "A", "email": "a@example.com", "external_id": "x1", "foo": "bar", "latitude": "abc"}, token=source.plain_token)
    print(r.status_code, r.json(), len(cbs))
    with django_capture_on_commit_callbacks(execute=True) as cbs:
        r = api.post("/api/v1/leads", {"first_name": "A", "email": "a@example.com", "external_id": "x1", "foo": "bar", "latitude": 91}, token=source.plain_token)
    print(r.status_code, r.json(), len(cbs))
    with django_capture_on_commit_callbacks(execute=True) as cbs:
        r = api.post("/api/v1/leads", {"first_name": "A", "email": "a@example.com", "external_id": "x1", "foo": "bar"}, token=source.plain_token)
    print(r.status_code, r.json(), len(cbs))
    r = api.get(f"/api/v1/leads/{r.json()['id']}", token=source.plain_token)
    print(r.status_code, r.json())
    r = api.get("/healthz")
    print(r.status_code, r.json())
