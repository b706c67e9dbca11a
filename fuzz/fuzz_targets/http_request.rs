//! Fuzz target: any bytes as pipelined HTTP/1.1 requests through the web listener's codec (RFC 9112),
//! then each complete request's form body, cookies, query and multipart/form-data body (RFC 7578)
//! and an answer written back: never a panic; a complete request takes no more bytes than it was
//! given, every shorter prefix of it is Partial, and errors are the statuses the codec documents.
#![no_main]

use buzon::web::http::{self, Limits, Parsed, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head: 2048, max_body: 8192, max_headers: 16 };
    let mut rest = data;
    for _ in 0..8 {
        match http::parse(rest, &limits) {
            Parsed::Complete(request, n) => {
                assert!(n > 0 && n <= rest.len());
                assert!(request.path.starts_with('/') && !request.path.contains('\0'));
                assert!(request.minor <= 1);
                assert_eq!(http::parse(&rest[..n], &limits), Parsed::Complete(request.clone(), n));
                for cut in [0, n / 2, n - 1] {
                    assert_eq!(http::parse(&rest[..cut], &limits), Parsed::Partial, "cut at {cut}");
                }
                let _ = request.form();
                let _ = request.keep_alive();
                let _ = request.host();
                for (name, value) in &request.headers {
                    let _ = request.header(name);
                    let _ = request.cookie(&String::from_utf8_lossy(value));
                    let _ = request.query_param(name);
                }
                let _ = request.cookie("sid");
                let _ = request.query_param("q");
                if let Some(content_type) = request.header("content-type")
                    && let Ok(parts) = http::multipart(content_type, &request.body, 8)
                {
                    assert!(parts.len() <= 8);
                }
                let mut out = Vec::new();
                let location = http::url_encode(&request.path);
                Response::redirect(&location).write_to(&mut out, request.method == http::Method::Head, false);
                assert_eq!(http::url_decode(&location), request.path);
                rest = &rest[n..];
            }
            Parsed::Partial => break,
            Parsed::Error(status) => {
                assert!([400, 411, 413, 431, 505].contains(&status), "{status}");
                break;
            }
        }
    }
    // The bytes as a multipart body under a fixed boundary too.
    let _ = http::multipart("multipart/form-data; boundary=b", data, 8);
});
