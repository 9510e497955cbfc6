//! Every route of the admin API in one table: what `GET /api` lists, what
//! the OpenAPI document at [`OPENAPI_PATH`] describes, and what a request
//! with the wrong method is told (405 with `Allow`). The dispatcher in
//! `mod.rs` serves the same routes; a test walks this table against it.

use serde_json::{json, Map, Value as Json};

/// Where the OpenAPI 3.0 document of the admin API is served.
pub(crate) const OPENAPI_PATH: &str = "/api/openapi.json";

/// One route: its method, its path (`{name}` one segment, `{path}` the
/// rest), who may call it, and what it does.
pub(super) struct Route {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) summary: &'static str,
    /// Its body is JSON (else none, or the repository's own media type).
    pub(super) json_body: bool,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        summary,
        json_body: matches!(method.as_bytes(), b"PUT" | b"POST"),
    }
}

pub(super) const ROUTES: &[Route] = &[
    route("GET", "/api", "The routes of this API."),
    route("GET", OPENAPI_PATH, "This API's OpenAPI 3.0 document."),
    route(
        "GET",
        "/api/devices",
        "Every device: DevID, MOS, sessions, last session, queue size.",
    ),
    route("GET", "/api/devices/{dev}", "One device."),
    route(
        "DELETE",
        "/api/devices/{dev}",
        "Forgets a device: queue, results, alerts, repository, registrations, credentials.",
    ),
    route(
        "POST",
        "/api/devices/{dev}/commands",
        "Queues a command in its Package#2 form (spec 7.2.1.2).",
    ),
    route(
        "DELETE",
        "/api/devices/{dev}/commands/{id}",
        "Takes back a command not yet sent (409 once sent).",
    ),
    route(
        "GET",
        "/api/devices/{dev}/results",
        "Every command sent and its status, data and asynchronous result.",
    ),
    route(
        "GET",
        "/api/devices/{dev}/results/{id}",
        "One command's result.",
    ),
    route(
        "GET",
        "/api/devices/{dev}/alerts",
        "Every Generic Alert received.",
    ),
    route(
        "PUT",
        "/api/devices/{dev}/notification",
        "The device's Auth/Noti credentials and UDP address (spec 5.2.1).",
    ),
    route(
        "POST",
        "/api/devices/{dev}/notify",
        "Sends a DM Notification (Package#0).",
    ),
    route(
        "GET",
        "/api/devices/{dev}/registrations",
        "DEFAULT and SUB registrations.",
    ),
    route(
        "POST",
        "/api/devices/{dev}/registrations",
        "Adds a DEFAULT or SUB registration (queues its command).",
    ),
    route(
        "DELETE",
        "/api/devices/{dev}/registrations/{id}",
        "Removes a registration (a SUB queues its UNSUB).",
    ),
    route(
        "GET",
        "/api/devices/{dev}/repository",
        "The device's Data Repository resources.",
    ),
    route(
        "GET",
        "/api/devices/{dev}/repository/{path}",
        "One resource.",
    ),
    Route {
        json_body: false,
        ..route(
            "PUT",
            "/api/devices/{dev}/repository/{path}",
            "Stores a resource, in its own media type.",
        )
    },
    route(
        "DELETE",
        "/api/devices/{dev}/repository/{path}",
        "Removes a resource.",
    ),
    route(
        "POST",
        "/api/devices/{dev}/show",
        "Queues a SHOW of a confirm/decline page (spec 5.3.7).",
    ),
    route("GET", "/api/ui/{uiid}", "The answer to a SHOW page."),
    route(
        "PUT",
        "/api/devices/{dev}/credentials",
        "The device's password and/or certificate binding (spec 9.2.1).",
    ),
    route(
        "PUT",
        "/api/devices/{dev}/bootstrap",
        "The device's bootstrap profile (spec 8.3, 8.4).",
    ),
    route(
        "GET",
        "/api/devices/{dev}/bootstrap",
        "The device's bootstrap profile.",
    ),
    Route {
        json_body: false,
        ..route(
            "POST",
            "/api/devices/{dev}/bootstrap/push",
            "Pushes a fresh bootstrap to the device (spec 8.4).",
        )
    },
];

/// Does `pattern` match the path `segments` (without the leading `/`)?
fn matches(pattern: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let mut i = 0;
    for (n, p) in parts.iter().enumerate() {
        if *p == "{path}" {
            // The rest, at least one segment; only last.
            return n == parts.len() - 1 && segments.len() > i;
        }
        let Some(seg) = segments.get(i) else {
            return false;
        };
        if !(p.starts_with('{') || p == seg) {
            return false;
        }
        i += 1;
    }
    i == segments.len()
}

/// The methods the routes at `segments` take (empty: no such path).
pub(super) fn allowed(segments: &[&str]) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|r| matches(r.path, segments))
        .map(|r| r.method)
        .collect();
    methods.dedup();
    methods
}

/// `GET /api`: the routes.
pub(super) fn listing() -> Json {
    Json::Array(
        ROUTES
            .iter()
            .map(|r| json!({ "method": r.method, "path": r.path, "summary": r.summary }))
            .collect(),
    )
}

/// The OpenAPI 3.0 document of the routes.
pub(super) fn openapi() -> Json {
    let error = json!({
        "description": "Refused: {\"error\": reason}",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!("{} {}", r.method, r.path)),
        );
        let params: Vec<Json> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
            })
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Json::Array(params));
        }
        if r.json_body {
            op.insert(
                "requestBody".into(),
                json!({ "content": { "application/json": { "schema": {} } } }),
            );
        } else if r.method == "PUT" {
            op.insert(
                "requestBody".into(),
                json!({ "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } }),
            );
        }
        let ok = if r.method == "POST" && r.path.ends_with("/commands") {
            "201"
        } else {
            "200"
        };
        op.insert(
            "responses".into(),
            json!({
                ok: { "description": "Done", "content": { "application/json": { "schema": {} } } },
                "400": error.clone(), "401": error.clone(), "403": error.clone(),
                "404": error.clone(), "405": error.clone(), "409": error.clone(),
                "415": error.clone(), "500": error.clone(), "502": error.clone(),
            }),
        );
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(methods) = entry {
            methods.insert(r.method.to_ascii_lowercase(), Json::Object(op));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "dmctl server admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The admin API of the reference OMA DM 2.0 DM Server (README \"Admin API\"). Every request needs a bearer token; bodies are application/json.",
        },
        "security": [ { "bearer": [] } ],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "string" } },
                },
            },
        },
        "paths": Json::Object(paths),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_their_segments_only() {
        assert!(matches("/api/devices/{dev}", &["api", "devices", "IMEI:1"]));
        assert!(!matches("/api/devices/{dev}", &["api", "devices"]));
        assert!(!matches(
            "/api/devices/{dev}",
            &["api", "devices", "a", "b"]
        ));
        let repo = "/api/devices/{dev}/repository/{path}";
        assert!(matches(
            repo,
            &["api", "devices", "d", "repository", "a", "b"]
        ));
        assert!(!matches(repo, &["api", "devices", "d", "repository"]));
        assert_eq!(
            allowed(&["api", "devices", "d"]),
            ["GET", "DELETE"],
            "one path, two methods"
        );
        assert!(allowed(&["api", "nothing"]).is_empty());
    }

    #[test]
    fn the_document_has_every_route_once() {
        let doc = openapi();
        let mut n = 0;
        for (_, methods) in doc["paths"].as_object().into_iter().flatten() {
            n += methods.as_object().map_or(0, |m| m.len());
        }
        assert_eq!(n, ROUTES.len());
        assert_eq!(doc["openapi"], "3.0.3");
    }
}
