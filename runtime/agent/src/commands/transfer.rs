//! Transfers between the device and a Data Repository over HTTP: HGET
//! (5.3.1) stores what a ServerURI gives, HPUT and HPOST (5.3.2, 5.3.3)
//! send what ClientURIs address.

use dm_core::package::{header, media_type};
use dm_core::{ClientUri, Format, MoDataItem, NodeData, ServerUri, Status, StatusCode, Value};
use hyper::Method;

use super::read::choose_format;
use super::status;
use crate::access::Principal;
use crate::client::{Device, SessionCtx};
use crate::http::HttpClient;
use crate::repository::RepositoryPolicy;

/// Media types this client reads in HGET responses, best first.
const HGET_ACCEPT: &str = concat!(
    "application/dmmo+json, application/json;q=0.9, text/plain;q=0.5, ",
    "application/xml;q=0.5, application/octet-stream;q=0.5"
);

impl Device {
    /// HPUT and HPOST (5.3.2, 5.3.3): the data of every ClientURI, sent to
    /// the ServerURI with HTTP PUT or POST.
    pub(crate) async fn cmd_send(
        &mut self,
        ctx: &SessionCtx,
        method: Method,
        server_uri: &ServerUri,
        uris: &[ClientUri],
    ) -> Status {
        let mut items = Vec::new();
        let mut last_error = StatusCode::NOT_FOUND;
        let mut all_not_modified = true;
        for uri in uris {
            match self.read_nodes(ctx, uri) {
                Ok(found) => {
                    all_not_modified = false;
                    items.extend(found);
                }
                Err(StatusCode::NOT_MODIFIED) => {}
                Err(code) => {
                    all_not_modified = false;
                    last_error = code;
                }
            }
        }
        if items.is_empty() {
            // 404 "all specified ClientURIs were not found"; 304 when every
            // one was unchanged; else the reason the only one failed.
            return status(if all_not_modified {
                StatusCode::NOT_MODIFIED
            } else {
                last_error
            });
        }
        let wildcard = uris.len() > 1 || uris.iter().any(ClientUri::has_wildcard);
        let Some((content_type, body)) =
            choose_format(&items, wildcard, ctx.server_accept.as_deref())
        else {
            return status(StatusCode::NOT_ACCEPTABLE);
        };
        let target = server_uri.resolve(&self.uri_params());
        let headers = [
            ("Content-Type", content_type),
            (header::DEV_ID, self.dev_id().to_owned()),
        ];
        let http = self.repository_http(home_server(ctx)).await;
        // Appendix C 419 for a refused address, an unreachable one and a
        // non-2xx answer alike: the status does not tell them apart.
        match http.call(method, &target, &headers, body).await {
            Ok(exchange) => {
                self.observe_exchange(&exchange);
                let code = crate::http::status_of(&exchange.response);
                if (200..300).contains(&code) {
                    status(StatusCode::OK)
                } else {
                    status(StatusCode::SERVER_URI_ERROR)
                }
            }
            Err(_) => status(StatusCode::SERVER_URI_ERROR),
        }
    }

    /// The HTTP client for a Data Repository named by a command of the
    /// server at `home` (its SrvURI; `None` for a command without an
    /// account): loopback, link-local and private addresses only in that
    /// server's own range or on `--repository-allow` (docs/architecture.md
    /// "Data Repository addresses").
    pub(crate) async fn repository_http(&self, home: Option<&str>) -> HttpClient {
        let config = self.config();
        let allow = config.repository_allow.clone().into();
        let policy = RepositoryPolicy::for_server(home, allow, config.timeout).await;
        self.http().for_repository(policy)
    }

    /// HGET (5.3.1): fetch MO data from the ServerURI and store it at the
    /// ClientURI, or, without one, where the client chooses (new instances
    /// get MIIDs the client assigns); every stored ClientURI is returned.
    pub(crate) async fn cmd_hget(
        &mut self,
        ctx: &SessionCtx,
        server_uri: &ServerUri,
        uri: Option<&ClientUri>,
    ) -> Status {
        self.hget_for(ctx, home_server(ctx), server_uri, uri).await
    }

    /// HGET for `ctx` under the repository addresses of the server whose
    /// SrvURI is `home` (a DEFAULT fetch runs for an application, under
    /// the rules of the server that registered it).
    pub(crate) async fn hget_for(
        &mut self,
        ctx: &SessionCtx,
        home: Option<&str>,
        server_uri: &ServerUri,
        uri: Option<&ClientUri>,
    ) -> Status {
        let target = server_uri.resolve(&self.uri_params());
        let headers = [
            ("Accept", HGET_ACCEPT.to_owned()),
            (header::DEV_ID, self.dev_id().to_owned()),
        ];
        let http = self.repository_http(home).await;
        // 419 for a refused address as for an unreachable one (Appendix
        // C: "HTTP GET to the ServerURI is failed, and no data is received").
        let exchange = match http.call(Method::GET, &target, &headers, Vec::new()).await {
            Ok(e) => e,
            Err(_) => return status(StatusCode::SERVER_URI_ERROR),
        };
        self.observe_exchange(&exchange);
        if !(200..300).contains(&crate::http::status_of(&exchange.response)) {
            return status(StatusCode::SERVER_URI_ERROR);
        }
        let content_type = exchange
            .response
            .header("content-type")
            .unwrap_or("")
            .to_owned();
        let body = exchange.response.body;
        match uri {
            Some(uri) => self.hget_at(ctx, uri, &content_type, &body),
            None => {
                let code = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                // Logged without its query: a server may sign its URLs
                // there, and a signature is a credential.
                let target = target.split('?').next().unwrap_or_default();
                if media_type::essence(&content_type) != media_type::MO_DATA {
                    return status(self.refuse(
                        code,
                        format_args!(
                            "HGET {target}: `{content_type}` is not {} (5.3.1 without ClientURI)",
                            media_type::MO_DATA
                        ),
                    ));
                }
                match MoDataItem::parse_list(&body) {
                    Ok(items) => self.store_items(ctx, &items),
                    Err(e) => status(self.refuse(code, format_args!("HGET {target}: {e}"))),
                }
            }
        }
    }

    /// Stores HGET data at a ClientURI: an existing node is replaced
    /// (interior nodes merged), a missing one created below its parent.
    fn hget_at(
        &mut self,
        ctx: &SessionCtx,
        uri: &ClientUri,
        content_type: &str,
        body: &[u8],
    ) -> Status {
        if uri.has_wildcard() {
            return status(StatusCode::BAD_REQUEST);
        }
        let target = match self.write_target(ctx, uri) {
            Ok(t) => t,
            Err(code) => return status(code),
        };
        let Some(schema) = self
            .registry()
            .schema_at(target.instance, target.path.names())
        else {
            return status(StatusCode::NOT_FOUND);
        };
        // 415 with the node and the rule (Appendix C: "the retrieved data
        // by the HTTP GET is unrecognized").
        let unrecognized = |reason: String| {
            self.refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format_args!("HGET into {uri}: {reason}"),
            )
        };
        let data = match media_type::essence(content_type).as_str() {
            media_type::MO_DATA => {
                let items = match MoDataItem::parse_list(body) {
                    Ok(items) => items,
                    Err(e) => return status(unrecognized(e.to_string())),
                };
                // One item whose MOData has one member: the node's data
                // (a receiver accepts any member name, docs/architecture.md).
                let value = match items.as_slice() {
                    [item] if item.mo_data.len() == 1 => item.mo_data.values().next().cloned(),
                    _ => None,
                };
                match value.map(|v| NodeData::from_json(&v, schema)) {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return status(unrecognized(e.to_string())),
                    None => {
                        return status(unrecognized(
                            "not one MO data item with one MOData member (7.2.1.4)".into(),
                        ))
                    }
                }
            }
            // The node's MOData value alone (7.2.1.4), any format.
            media_type::JSON => {
                let value = serde_json::from_slice::<serde_json::Value>(body)
                    .map_err(|e| e.to_string())
                    .and_then(|v| NodeData::from_json(&v, schema).map_err(|e| e.to_string()));
                match value {
                    Ok(d) => d,
                    Err(e) => return status(unrecognized(e)),
                }
            }
            // A bare leaf value (Appendix I.2), in a media type that fits
            // the leaf's format; anything else is 415 and the leaf keeps
            // its value.
            essence => match bare_value(essence, schema.format, body) {
                Some(v) => NodeData::Leaf(v),
                None => {
                    return status(unrecognized(format!(
                        "`{content_type}` with these bytes is no `{}` value (docs/architecture.md \"What HGET accepts\")",
                        schema.format
                    )))
                }
            },
        };
        let changes = self.replacing(target.instance, target.path.into_owned(), data);
        status(self.write(ctx, target.instance, changes))
    }
}

/// The SrvURI of the server a command runs for, whose address range its
/// Data Repositories may share; `None` for the device's own commands and
/// a local application's.
pub(crate) fn home_server(ctx: &SessionCtx) -> Option<&str> {
    match &ctx.principal {
        Principal::Server(account) => Some(&account.server_uri),
        Principal::App(_) | Principal::Local => None,
    }
}

/// A bare leaf value fetched by HGET (5.3.1, Appendix I.2) with Content-Type
/// `essence`, when that media type fits the leaf's `format` (5.5; Appendix
/// C 415 "the retrieved data by the HTTP GET is unrecognized"):
///
/// | format | media types |
/// |---|---|
/// | chr, int, float, bool, date, time, null | `text/plain` |
/// | xml | `text/xml`, `application/xml`, `text/plain` |
/// | bin | `application/octet-stream` (the bytes as they are) |
/// | b64 | `application/octet-stream` (the bytes), `text/plain` (Base64 text) |
/// | node | none: an interior node comes as MO data |
///
/// `application/dmmo+json` (an MO data item) and `application/json` (the
/// node's MOData value) serve every format and are read before this.
fn bare_value(essence: &str, format: Format, body: &[u8]) -> Option<Value> {
    let text = essence == "text/plain";
    match format {
        Format::Node => None,
        Format::Bin if essence == "application/octet-stream" => Value::from_bare(body, format),
        Format::B64 if essence == "application/octet-stream" => Some(Value::B64(body.to_vec())),
        Format::B64 if text => Value::from_bare(body, format),
        Format::Xml if text || matches!(essence, "text/xml" | "application/xml") => {
            Value::from_bare(body, format)
        }
        Format::Chr
        | Format::Int
        | Format::Float
        | Format::Bool
        | Format::Date
        | Format::Time
        | Format::Null
            if text =>
        {
            Value::from_bare(body, format)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_value_needs_a_media_type_that_fits_its_format() {
        let fits = |essence: &str, format: Format, body: &[u8]| bare_value(essence, format, body);
        assert_eq!(
            fits("text/plain", Format::Chr, b"x"),
            Some(Value::Chr("x".into()))
        );
        assert_eq!(
            fits("text/plain", Format::Int, b" 42\n"),
            Some(Value::Int(42))
        );
        assert_eq!(fits("application/octet-stream", Format::Chr, b"x"), None);
        assert_eq!(fits("image/png", Format::Chr, b"x"), None);
        assert_eq!(
            fits("application/octet-stream", Format::Bin, &[0, 255]),
            Some(Value::Bin(vec![0, 255]))
        );
        assert_eq!(fits("text/plain", Format::Bin, b"x"), None);
        assert_eq!(
            fits("text/plain", Format::B64, b"AAE="),
            Some(Value::B64(vec![0, 1]))
        );
        assert_eq!(
            fits("application/octet-stream", Format::B64, &[7]),
            Some(Value::B64(vec![7]))
        );
        assert_eq!(
            fits("application/xml", Format::Xml, b"<a/>"),
            Some(Value::Xml("<a/>".into()))
        );
        assert_eq!(fits("text/plain", Format::Node, b"x"), None);
        // A right type with content the format cannot hold is still refused.
        assert_eq!(fits("text/plain", Format::Int, b"many"), None);
    }
}
