//! The web listener's routes: static assets, the mail-client setup documents (autoconfig,
//! autodiscover), login and logout, and the webmail pages (webmail.rs, compose.rs). Every response
//! carries the security headers: a Content-Security-Policy, `nosniff`, no framing, no referrer;
//! every change of state is a POST with the session's CSRF token; a user reaches only their own
//! folders, through their own IMAP session, whatever the URL says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::state::{self, Session};
use crate::auth::sasl::Login;
use crate::config::UsersSpec;
use crate::server::context::{ConnBackend, Context};
use crate::server::pool::Blocker;
use crate::web::autoconfig::{self, Endpoint, Offer, Security};
use crate::web::http::{Method, Request, Response};
use crate::web::pages;

/// The session cookie, and the login form's own (double-submitted) CSRF cookie.
pub const SESSION_COOKIE: &str = "buzon_session";
pub const LOGIN_COOKIE: &str = "buzon_login";

/// Our own pages: nothing from elsewhere, no inline script or style, frames only our own
/// (the message iframe), forms only to us, never framed.
const CSP_APP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                       frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// One request and what it may use.
pub struct Call<'a> {
    pub ctx: &'a Arc<Context>,
    pub req: &'a Request,
    pub sid: &'a str,
    pub peer: SocketAddr,
    /// Over HTTPS (or a local proxy's): cookies are Secure.
    pub secure: bool,
    pub blocker: Option<&'a Arc<Blocker>>,
}

impl Call<'_> {
    /// A cookie's Set-Cookie value: HttpOnly, SameSite=Strict, Secure over HTTPS.
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if let Some(a) = max_age {
            c.push_str(&format!("; Max-Age={a}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// A form field: from the urlencoded body (multipart forms are read by compose.rs).
    pub fn field(&self, name: &str) -> Option<String> {
        self.req.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.req.query_param(name)
    }

    /// The logged-in session, if the cookie names a live one.
    pub fn session(&self) -> Option<(String, Arc<Session>)> {
        let key = self.req.cookie(SESSION_COOKIE)?;
        let web = self.ctx.web.as_ref()?;
        let s = web.get(key, self.ctx.config.web.session_timeout)?;
        Some((key.to_string(), s))
    }
}

/// Answers one request: the response, and how long to hold it back (a failed login).
pub fn handle(call: &Call) -> (Response, Duration) {
    let (resp, delay) = route(call);
    (secure_headers(resp, &call.req.path), delay)
}

fn route(call: &Call) -> (Response, Duration) {
    let req = call.req;
    let path = req.path.as_str();
    let get = matches!(req.method, Method::Get | Method::Head);
    let post = req.method == Method::Post;
    let resp = match path {
        "/static/style.css" if get => asset(pages::STYLE, "text/css; charset=utf-8"),
        "/static/app.js" if get => asset(pages::SCRIPT, "text/javascript; charset=utf-8"),
        "/.well-known/autoconfig/mail/config-v1.1.xml" | "/mail/config-v1.1.xml" if get => thunderbird(call),
        p if p.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") && post => autodiscover(call),
        "/" if get => match call.session() {
            Some(_) => Response::redirect("/folder?f=INBOX"),
            None => Response::redirect("/login"),
        },
        "/login" if get => login_page(call, None, ""),
        "/login" if post => return login(call),
        "/logout" if post => logout(call),
        "/folder"
        | "/msg"
        | "/msg/html"
        | "/msg/part"
        | "/msg/raw"
        | "/compose"
        | "/setup"
        | "/setup/buzon.mobileconfig"
            if get =>
        {
            super::webmail::get(call)
        }
        "/msg/action" | "/compose" if post => super::webmail::post(call),
        "/static/style.css"
        | "/static/app.js"
        | "/.well-known/autoconfig/mail/config-v1.1.xml"
        | "/mail/config-v1.1.xml"
        | "/"
        | "/folder"
        | "/msg"
        | "/msg/html"
        | "/msg/part"
        | "/msg/raw"
        | "/setup"
        | "/setup/buzon.mobileconfig" => not_allowed("GET, HEAD"),
        "/logout" | "/msg/action" => not_allowed("POST"),
        "/login" | "/compose" => not_allowed("GET, HEAD, POST"),
        p if p.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") => not_allowed("POST"),
        _ => error(404, "There is no such page."),
    };
    (resp, Duration::ZERO)
}

/// The headers every response gets; the message's own HTML (webmail.rs) brings its stricter CSP.
fn secure_headers(mut resp: Response, path: &str) -> Response {
    let has = |r: &Response, n: &str| r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has(&resp, "Content-Security-Policy") {
        resp = resp.with("Content-Security-Policy", CSP_APP);
    }
    if !has(&resp, "X-Frame-Options") {
        resp = resp.with("X-Frame-Options", "DENY");
    }
    if !has(&resp, "Cache-Control") {
        let cache = if path.starts_with("/static/") { "max-age=3600" } else { "no-store" };
        resp = resp.with("Cache-Control", cache);
    }
    resp.with("X-Content-Type-Options", "nosniff").with("Referrer-Policy", "same-origin")
}

fn asset(body: &str, kind: &str) -> Response {
    let mut r = Response::new(200).with("Content-Type", kind);
    r.body = body.as_bytes().to_vec();
    r
}

pub fn error(status: u16, text: &str) -> Response {
    Response::html(status, pages::error(status, text))
}

fn not_allowed(allow: &str) -> Response {
    error(405, "That method is not allowed here.").with("Allow", allow)
}

/// The address a user sends from: the login name when it is an address, else the name at the
/// first local domain that is not `localhost` (the host name when there is none).
pub fn address_of(ctx: &Context, user: &str) -> String {
    if user.contains('@') {
        return user.to_string();
    }
    let domain = ctx
        .config
        .local_domains
        .iter()
        .find(|d| !d.eq_ignore_ascii_case("localhost"))
        .cloned()
        .unwrap_or_else(|| ctx.config.hostname.clone());
    format!("{user}@{domain}")
}

/// What this configuration offers `email`'s owner: the ports it listens on, TLS where it can.
pub fn offer<'a>(ctx: &'a Context, email: &'a str) -> Offer<'a> {
    let c = &ctx.config;
    let tls = c.tls_cert.is_some();
    let ports = |implicit: &[SocketAddr], plain: &[SocketAddr]| {
        let mut v: Vec<Endpoint> =
            implicit.iter().map(|a| Endpoint { port: a.port(), security: Security::Tls }).collect();
        let s = if tls { Security::StartTls } else { Security::Plain };
        v.extend(plain.iter().map(|a| Endpoint { port: a.port(), security: s }));
        autoconfig::rank(v)
    };
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, c.hostname.as_str()));
    let by_address = !matches!(c.users, UsersSpec::System);
    Offer {
        hostname: &c.hostname,
        domain,
        email,
        username: if by_address { email } else { local },
        username_is_address: by_address,
        imap: ports(&c.imaps_listen, &c.imap_listen),
        pop3: ports(&c.pop3s_listen, &c.pop3_listen),
        smtp: ports(&c.submissions_listen, &c.submission_listen),
    }
}

fn xml(body: String) -> Response {
    let mut r = Response::new(200).with("Content-Type", "application/xml; charset=utf-8");
    r.body = body.into_bytes();
    r
}

/// Thunderbird asks with `?emailaddress=`; without one the document names the host's domain.
fn thunderbird(call: &Call) -> Response {
    let email = call
        .param("emailaddress")
        .filter(|e| e.len() <= 254 && e.contains('@'))
        .unwrap_or_else(|| address_of(call.ctx, "%EMAILLOCALPART%"));
    xml(autoconfig::thunderbird(&offer(call.ctx, &email)))
}

fn autodiscover(call: &Call) -> Response {
    match autoconfig::autodiscover_address(&call.req.body) {
        Some(email) => xml(autoconfig::autodiscover(&offer(call.ctx, &email))),
        None => error(400, "The request names no e-mail address (EMailAddress)."),
    }
}

/// The login form, with a fresh CSRF token in its cookie and in the form.
fn login_page(call: &Call, failed: Option<&str>, user: &str) -> Response {
    let token = state::token();
    Response::html(if failed.is_some() { 403 } else { 200 }, pages::login(failed, &token, user))
        .with("Set-Cookie", &call.cookie(LOGIN_COOKIE, &token, None))
}

fn login(call: &Call) -> (Response, Duration) {
    let form_token = call.field("csrf").unwrap_or_default();
    let cookie_token = call.req.cookie(LOGIN_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !state::same(&form_token, cookie_token) {
        return (
            error(403, "The login form has expired or did not come from this site: reload it."),
            Duration::ZERO,
        );
    }
    let user = call.field("user").unwrap_or_default().trim().to_string();
    let password = call.field("password").unwrap_or_default();
    let backend = ConnBackend {
        ctx: call.ctx,
        ip: call.peer.ip(),
        sid: call.sid,
        delay: std::cell::Cell::new(Duration::ZERO),
    };
    if backend.auth_blocked() {
        return (login_page(call, Some("Too many failed logins: try again later."), &user), Duration::ZERO);
    }
    if user.is_empty() || user.len() > 256 || password.is_empty() || user.chars().any(char::is_control) {
        return (login_page(call, Some("Enter your user name and password."), &user), Duration::ZERO);
    }
    let verified = match backend.credentials().map(|c| c.verify(&user, password.as_bytes())) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            log::warn!("session={} event=auth_error error=\"{e}\"", call.sid);
            return (error(503, "Logins are not possible right now: try again later."), Duration::ZERO);
        }
        None => None,
    };
    let Some(account) = verified else {
        backend.auth_failed(&user);
        return (login_page(call, Some("Wrong user name or password."), &user), backend.delay.get());
    };
    backend.auth_succeeded(&account, "web");
    let Some(web) = call.ctx.web.as_ref() else {
        return (error(503, "The webmail is not available in this mode."), Duration::ZERO);
    };
    let _waiting = call.blocker.map(|b| b.enter());
    let client = match super::mail::open(call.ctx, &account, call.sid, call.peer, call.secure) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("session={} event=webmail_open_failed user={account} error=\"{e}\"", call.sid);
            return (error(503, "Your mailbox cannot be opened right now: try again later."), Duration::ZERO);
        }
    };
    let email = address_of(call.ctx, &account);
    let key = web.create(&account, &email, client, call.ctx.config.web.session_timeout);
    log::info!("session={} event=web_login user={account} client={}", call.sid, call.peer);
    let resp = Response::redirect("/folder?f=INBOX")
        .with("Set-Cookie", &call.cookie(SESSION_COOKIE, &key, None))
        .with("Set-Cookie", &call.cookie(LOGIN_COOKIE, "", Some(0)));
    (resp, Duration::ZERO)
}

/// Ends the session (its IMAP session with it) and forgets the cookie.
fn logout(call: &Call) -> Response {
    if let Some((key, session)) = call.session() {
        if !state::same(&call.field("csrf").unwrap_or_default(), &session.csrf) {
            return error(403, "That form did not come from this session.");
        }
        if let Some(web) = call.ctx.web.as_ref() {
            web.end(&key);
        }
        let _ = session.mail().logout();
        log::info!("session={} event=web_logout user={}", call.sid, session.user);
    }
    Response::redirect("/login").with("Set-Cookie", &call.cookie(SESSION_COOKIE, "", Some(0)))
}
