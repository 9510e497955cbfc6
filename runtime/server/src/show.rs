//! The Web Server Component of SHOW (spec 5.3.7): the page a SHOW's
//! ServerURI points at (`/ui?uiid=N`), a confirm/decline prompt whose
//! answer is stored with the UI session, where the admin API reads it
//! (the "internal interface" of step 4).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode as HttpStatus};

use dm_core::{Command, ServerUri};

use crate::http::{form_pairs, percent_encode, read_body, reply};
use crate::signing::{ui_target, SHOW_METHOD, SHOW_TTL};
use crate::state::{lock, Core};
use crate::{now, ServerError, UI_PATH};

/// The answers the prompt offers.
pub const CHOICES: [&str; 2] = ["confirm", "decline"];

/// Escapes text for HTML content and attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:3em}}button{{font-size:1.2em;margin:0.5em}}</style>\
         </head><body>\n{body}\n</body></html>\n",
        html_escape(title)
    )
}

fn html(status: HttpStatus, body: String) -> Response<Full<Bytes>> {
    reply(status, "text/html; charset=utf-8", body)
}

fn uiid_of(pairs: &[(String, String)]) -> Option<u64> {
    pairs
        .iter()
        .find(|(k, _)| k == "uiid")
        .and_then(|(_, v)| v.parse().ok())
}

pub(crate) async fn handle(core: &Core, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = form_pairs(req.uri().query().unwrap_or(""));
    match (req.method().clone(), path.as_str()) {
        (Method::GET, UI_PATH) => {
            let Some(uiid) = uiid_of(&query) else {
                return html(
                    HttpStatus::BAD_REQUEST,
                    page("Bad request", "<p>No <code>uiid</code> in the address.</p>"),
                );
            };
            match core.storage.ui_session(uiid) {
                Ok(Some(s)) => {
                    // Issue 19, item 6: the signed link of the SHOW, or
                    // the session's device's own credentials.
                    if let Err(refused) =
                        core.authorize(&req, &s.dev_id, SHOW_METHOD, &ui_target(uiid))
                    {
                        return *refused;
                    }
                    // The form carries the same signature on.
                    let get = |k: &str| {
                        query
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| html_escape(&percent_encode(v)))
                    };
                    let token = match (get("exp"), get("sig")) {
                        (Some(exp), Some(sig)) => format!("&amp;exp={exp}&amp;sig={sig}"),
                        _ => String::new(),
                    };
                    let answered = s
                        .choice
                        .as_deref()
                        .map(|c| {
                            format!("<p id=\"answered\">Answered: <b>{}</b></p>", html_escape(c))
                        })
                        .unwrap_or_default();
                    let buttons: String = CHOICES
                        .iter()
                        .map(|c| {
                            format!(
                                "<button type=\"submit\" name=\"choice\" value=\"{c}\" id=\"{c}\">{}</button>",
                                if *c == "confirm" { "Confirm" } else { "Decline" }
                            )
                        })
                        .collect();
                    html(
                        HttpStatus::OK,
                        page(
                            "Device management",
                            &format!(
                                "<h1>Device management</h1>\n<p id=\"prompt\">{}</p>\n{answered}\n\
                                 <form method=\"post\" action=\"{UI_PATH}/choice?uiid={uiid}{token}\">\
                                 <input type=\"hidden\" name=\"uiid\" value=\"{uiid}\">{buttons}</form>",
                                html_escape(&s.prompt)
                            ),
                        ),
                    )
                }
                Ok(None) => html(
                    HttpStatus::NOT_FOUND,
                    page("Not found", "<p>No such UI session.</p>"),
                ),
                Err(e) => core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (Method::POST, p) if p == format!("{UI_PATH}/choice") => {
            let (parts, body) = req.into_parts();
            let body = match read_body(body).await {
                Ok(b) => b,
                Err(reason) => return core.reject(HttpStatus::BAD_REQUEST, reason),
            };
            let head = Request::from_parts(parts, ());
            let form = form_pairs(&String::from_utf8_lossy(&body));
            let choice = form
                .iter()
                .find(|(k, _)| k == "choice")
                .map(|(_, v)| v.as_str())
                .filter(|c| CHOICES.contains(c));
            // The uiid the link signs (the form's action) wins; a body
            // naming another session is refused.
            let uiid = match (uiid_of(&query), uiid_of(&form)) {
                (Some(q), Some(f)) if q != f => None,
                (q, f) => q.or(f),
            };
            let (Some(uiid), Some(choice)) = (uiid, choice) else {
                return html(
                    HttpStatus::BAD_REQUEST,
                    page("Bad request", "<p>A uiid and a choice are needed.</p>"),
                );
            };
            let owner = match core.storage.ui_session(uiid) {
                Ok(Some(s)) => s.dev_id,
                Ok(None) => {
                    return html(
                        HttpStatus::NOT_FOUND,
                        page("Not found", "<p>No such UI session.</p>"),
                    )
                }
                Err(e) => return core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            // Before the answer is stored: an anonymous one changes nothing.
            if let Err(refused) = core.authorize(&head, &owner, SHOW_METHOD, &ui_target(uiid)) {
                return *refused;
            }
            match core.storage.set_ui_choice(uiid, choice) {
                Ok(true) => html(
                    HttpStatus::OK,
                    page(
                        "Thank you",
                        &format!("<p id=\"done\">Thank you: <b>{choice}</b> recorded.</p>"),
                    ),
                ),
                Ok(false) => html(
                    HttpStatus::NOT_FOUND,
                    page("Not found", "<p>No such UI session.</p>"),
                ),
                Err(e) => core.reject(HttpStatus::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (m, p) => core.reject(HttpStatus::NOT_FOUND, format!("no UI page for {m} {p}")),
    }
}

impl Core {
    /// Opens a SHOW UI session and queues the SHOW that points at it;
    /// returns the uiid and the signed URL of its page.
    pub(crate) fn show(&self, dev_id: &str, prompt: &str) -> Result<(u64, String), ServerError> {
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        let uiid = self.storage.add_ui_session(dev_id, prompt)?;
        // Signed now: the user may open it any time in the next day, and
        // the admin API hands out this very URL.
        let target = ui_target(uiid);
        let token = self
            .signer
            .query(SHOW_METHOD, &target, now().saturating_add(SHOW_TTL));
        let url = format!("{}{target}&{token}", self.base_url);
        let server_uri = ServerUri::new(url.clone());
        self.storage
            .add_entry(dev_id, &Command::Show { server_uri })?;
        Ok((uiid, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_escaped() {
        assert_eq!(
            html_escape("<b onclick='x'>&"),
            "&lt;b onclick=&#39;x&#39;&gt;&amp;"
        );
    }
}
