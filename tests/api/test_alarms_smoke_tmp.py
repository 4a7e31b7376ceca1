import json
def test_smoke(client, as_role):
    h = as_role("operator")
    body = {"version":"4","receiver":"noc","status":"firing","alerts":[
     {"status":"firing","labels":{"alertname":"LinkDown","instance":"SITE-1:9100","severity":"critical"},"annotations":{"summary":"down"},"startsAt":"2026-11-20T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z"},
     {"status":"firing","labels":{},"startsAt":"x"}]}
    r = client.post("/api/v1/alarms/alertmanager", json=body, headers=h)
    print(r.status_code, r.get_json())
    r = client.post("/api/v1/alarms/alertmanager", data=b"garbage", headers=h)
    print(r.status_code, r.get_json())
    r = client.get("/api/v1/alarms?state=active", headers=as_role("viewer"))
    print(r.status_code, json.dumps(r.get_json(), indent=1))
    doc = client.get("/api/v1/openapi.json", headers=h).get_json()
    print(json.dumps(doc["paths"]["/api/v1/alarms/alertmanager"]["post"]["requestBody"])[:1500])
