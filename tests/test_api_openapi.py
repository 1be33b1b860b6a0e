"""The API's OpenAPI document: valid by the specification (openapi-spec-validator), every reference
resolved, the same routes as the application serves (both ways), served by `mailer api` as built from
the code; and /docs, whose Swagger UI loads only from this server (no CDN: there is no internet)."""
import re

from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from api import ROUTERS, create_app


def served_routes():
    """Every route of the routers the application includes (with their prefixes)."""
    return {(method, route.path) for router in ROUTERS for route in router.routes
            if isinstance(route, APIRoute) for method in route.methods}


def documented(doc):
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


def references(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_the_document_is_valid_and_matches_the_routes():
    app = create_app()
    doc = app.openapi()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    for ref in set(references(doc)):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    assert documented(doc) == served_routes()
    # Beside the routers, the application serves only the document and its viewer.
    assert {getattr(r, "path", None) for r in app.routes if getattr(r, "path", None)} == {
        "/openapi.json", "/docs", "/docs/oauth2-redirect", "/static-offline-docs"}
    assert doc["components"]["securitySchemes"] == {"HTTPBearer": {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["HTTPBearer"]["description"]}}
    operation_ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            assert op["security"] == [{"HTTPBearer": []}], (method, path)
            assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
            error = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Errors"}, (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            assert op.get("summary"), (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's shape is not ours


def test_the_server_serves_that_document_and_docs_that_load_nothing_from_elsewhere(api_server):
    api = api_server
    served = api.http.get(api.url + "/openapi.json", timeout=10).json()
    assert served == create_app().openapi()
    page = api.http.get(api.url + "/docs", timeout=10)
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        response = api.http.get(api.url + asset, timeout=10)
        assert response.status_code == 200 and response.content, asset
    bundle = api.http.get(api.url + next(a for a in assets if a.endswith("swagger-ui-bundle.js")), timeout=10).text
    # Swagger UI 5 reads OpenAPI 3.1 (4.x, which some packages ship, cannot).
    assert re.search(r'"5\.\d+\.\d+"', bundle)
