//! A tiny HTTP/1.1 server and client over `std::net`, enough for the examples: one request per
//! connection (`Connection: close`), `Content-Length` bodies, no chunked encoding, no TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest body read (requests and answers).
pub const MAX_BODY: usize = 1 << 20;

/// An HTTP request or response head plus body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Request: method; response: status code as text.
    pub first: String,
    /// Request: target (path and query); response: reason phrase.
    pub second: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one message. `head_response`: the answer to a HEAD request, which has no body
/// whatever its `Content-Length` says (RFC 9110 9.3.2); 1xx, 204 and 304 answers have none
/// either.
fn read_message(stream: &mut impl BufRead, head_response: bool) -> std::io::Result<Message> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut line = Vec::new();
    stream.read_until(b'\n', &mut line)?;
    let text = String::from_utf8_lossy(&line);
    let mut parts = text.trim_end().splitn(3, ' ');
    let a = parts.next().unwrap_or_default().to_owned();
    let b = parts.next().unwrap_or_default().to_owned();
    let c = parts.next().unwrap_or_default().to_owned();
    if a.is_empty() {
        return Err(bad("empty request"));
    }
    let mut msg = Message::default();
    // Request line: METHOD TARGET VERSION; status line: VERSION CODE REASON.
    let is_response = a.starts_with("HTTP/");
    if is_response {
        msg.first = b;
        msg.second = c;
    } else {
        msg.first = a;
        msg.second = b;
    }
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let l = String::from_utf8_lossy(&line);
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if msg.headers.len() > 200 {
            return Err(bad("too many headers"));
        }
        if let Some((k, v)) = l.split_once(':') {
            msg.headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let bodiless = is_response
        && (head_response
            || msg.first.starts_with('1')
            || msg.first == "204"
            || msg.first == "304");
    if bodiless {
        return Ok(msg);
    }
    if let Some(len) = msg.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if len > MAX_BODY {
            return Err(bad("body too large"));
        }
        msg.body = vec![0; len];
        stream.read_exact(&mut msg.body)?;
    } else if is_response {
        // A response without a length: read to the end.
        stream.take(MAX_BODY as u64).read_to_end(&mut msg.body)?;
    }
    Ok(msg)
}

/// Write one message; `head`: the answer to a HEAD request (its length, not its body).
fn write_message(
    stream: &mut impl Write,
    first_line: &str,
    headers: &[(String, String)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(first_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers {
        let lk = k.to_ascii_lowercase();
        if k.starts_with(':') || lk == "content-length" || lk == "connection" {
            continue;
        }
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    // A HEAD answer passes on the length of the body it leaves out (the upstream's, if given).
    let length = headers
        .iter()
        .find(|(k, _)| head && k.eq_ignore_ascii_case("content-length"))
        .map_or_else(|| body.len().to_string(), |(_, v)| v.clone());
    out.extend_from_slice(
        format!("content-length: {length}\r\nconnection: close\r\n\r\n").as_bytes(),
    );
    if !head {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Serve forever on `listener`, one connection at a time, with `handler(request) -> response`
/// (response `first` is the status code).
pub fn serve(listener: TcpListener, mut handler: impl FnMut(Message) -> Message) {
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => continue,
        });
        let Ok(req) = read_message(&mut reader, false) else {
            let _ = write_message(&mut stream, "HTTP/1.1 400 Bad Request", &[], b"", false);
            continue;
        };
        let head = req.first.eq_ignore_ascii_case("HEAD");
        let resp = handler(req);
        let line = format!("HTTP/1.1 {} {}", resp.first, reason(&resp.first));
        let _ = write_message(&mut stream, &line, &resp.headers, &resp.body, head);
    }
}

fn reason(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "400" => "Bad Request",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "Not Found",
        "502" => "Bad Gateway",
        "503" => "Service Unavailable",
        _ => "Status",
    }
}

/// Send one request to `addr` (`host:port`) and read the answer, within `timeout`.
pub fn request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Message> {
    let sock = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write_message(
        &mut stream,
        &format!("{method} {target} HTTP/1.1"),
        headers,
        body,
        false,
    )?;
    let mut reader = BufReader::new(stream);
    read_message(&mut reader, method.eq_ignore_ascii_case("HEAD"))
}

/// A response with a JSON body.
pub fn json_response(status: u16, body: &serde_json::Value) -> Message {
    Message {
        first: status.to_string(),
        second: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// Read one request from a connection.
pub fn read_request(stream: &mut impl BufRead) -> std::io::Result<Message> {
    read_message(stream, false)
}

/// Write a response (`first` is the status code); `head`: it answers a HEAD request, so the
/// body is left out (its length is still sent).
pub fn write_response(stream: &mut impl Write, resp: &Message, head: bool) -> std::io::Result<()> {
    let line = format!("HTTP/1.1 {} {}", resp.first, reason(&resp.first));
    write_message(stream, &line, &resp.headers, &resp.body, head)
}
