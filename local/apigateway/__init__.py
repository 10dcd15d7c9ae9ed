"""Stands in for API Gateway (REST API): the API of `cloudformation/api/openapi.yaml`, on loopback.

- `api.py`: the document as the gateway reads it: routes (literal segments before parameters),
  integrations by function, which operations are secured, the gateway responses it declares;
- `gateway.py`: one request: route, authorizer, proxy event, invoke, answer or gateway response;
- `authorizer.py`: the Cognito user-pool authorizer's checks of the bearer token, and its claims;
- `request_validator.py`: the request validator the document turns on (required parameters, the
  body against its model, JSON Schema draft 4 with `jsonschema`);
- `proxy_integration.py`: the Lambda proxy event (payload 1.0) and the function's answer, read;
- `mock_integration.py`: the CORS preflight's mock integration, its Velocity templates run on airspeed;
- `access_log.py`: one JSON line per request, in the fields of the stage's access log format;
- `http_messages.py` and `server.py`: HTTP/1.1 on a loopback port;
- `developer_routes.py`: the local-only token mint and Swagger UI.

Deliberately not emulated (or not yet):

- the stage in the URL: `/health`, not `/local/health` (`requestContext.path` is the path the client
  asked for, as on AWS, where an execute-api URL holds the stage);
- a 10 MB request limit: the local limit is Lambda's 6 MB synchronous payload, the smaller of the two;
- `GET /openapi.json` is a mock integration that the gateway answers itself, with the public document;
- usage plans, API keys, caching, custom domains, and the account-level and stage throttles (the
  WAF's rate rule in front of the stage is `local/wafv2/`'s);
- the authorizer's audience: the REST Cognito authorizer accepts an ID token of any app client of
  its pools; the local one wants each pool's one client's (stricter, never looser);
- headers API Gateway adds to every answer beside the configured ones (`x-amzn-ErrorType`,
  `x-amz-apigw-id`): the local gateway adds only `x-amzn-RequestId` and `X-Amzn-Trace-Id`.
"""
