//! The client behind a reverse proxy: which address a request comes from
//! when a trusted proxy forwarded it.
//!
//! Behind a reverse proxy every connection comes from the proxy, so the
//! rate limits ([`crate::limit`]) and the request log would see one
//! client. A proxy says whom it forwards for in `Forwarded: for=…`
//! (RFC 7239) or `X-Forwarded-For`, but anyone can send those headers, so
//! they are believed **only when the connection comes from a trusted
//! proxy** ([`TrustedProxies`], configured by address or network): then
//! the client is the nearest address in the chain that is not itself a
//! trusted proxy, read from the right (the hops a trusted proxy appended);
//! everything left of it was written by the client and is ignored. With
//! `Forwarded` present, `X-Forwarded-For` is not read. A hop that is not
//! an address (`unknown`, an obfuscated name) stops the walk at the proxy
//! that wrote it. From any other peer, and with no proxy configured, the
//! headers are ignored and the client is the peer.
//!
//! Never does: trust a forwarded address from a peer that is not a
//! configured proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use ipnet::IpNet;

use crate::ops::ClientIp;

/// A proxy address or network that is not one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text:?} is not an IP address or network (such as 10.0.0.1 or 10.0.0.0/8)")]
pub struct ProxyError {
    pub text: String,
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// An IPv4 address mapped into IPv6 is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// No proxy: forwarding headers are never believed.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Proxies from addresses (`10.0.0.1`, `::1`) and networks
    /// (`10.0.0.0/8`); blank items are skipped.
    pub fn parse<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<TrustedProxies, ProxyError> {
        let mut nets = Vec::new();
        for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ProxyError {
                        text: item.to_owned(),
                    })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers` (see
    /// the module documentation).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let mut client = peer;
        for hop in hops.unwrap_or_default().into_iter().rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The `for=` of each element of every `Forwarded` header, in order;
/// `None` without the header. An element without `for`, or whose `for`
/// is no address, is a `None` hop.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all(header::FORWARDED).iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            hops.push(node.and_then(hop));
        }
    }
    Some(hops)
}

/// The addresses of every `X-Forwarded-For` header, in order; `None`
/// without the header.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all("x-forwarded-for").iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',').map(|h| hop(h.trim()))),
            Err(_) => hops.push(None),
        }
    }
    Some(hops)
}

/// One hop: an address, with or without quotes, brackets and a port.
fn hop(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    text.parse::<SocketAddr>().ok().map(|a| a.ip()).or_else(|| {
        // `[2001:db8::1]` without a port.
        text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
    })
}

async fn find_client(
    State(proxies): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = proxies.client(peer.ip(), req.headers());
        req.extensions_mut().insert(ClientIp(client));
    }
    next.run(req).await
}

/// `router` with each request's client found behind `proxies` (the
/// [`ClientIp`] that [`crate::ops::client_ip`] reads). Apply it last, so
/// every other layer (the rate limits, the request log) sees the client;
/// unchanged when no proxy is trusted.
pub fn with_client_ip<S>(router: Router<S>, proxies: &TrustedProxies) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if proxies.is_empty() {
        return router;
    }
    router.layer(middleware::from_fn_with_state(
        Arc::new(proxies.clone()),
        find_client,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", " ", "::1"]).unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        // From the proxy: the forwarded client.
        assert_eq!(proxies.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        assert_eq!(proxies.client(ip("::1"), &h), ip("198.51.100.7"));
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.9"), &h),
            ip("198.51.100.7")
        );
        // From anyone else, or with no proxy configured: the peer.
        assert_eq!(proxies.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        assert_eq!(
            TrustedProxies::none().client(ip("10.1.2.3"), &h),
            ip("10.1.2.3")
        );
        // From the proxy without a header: the proxy.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop_and_what_it_wrote_is_ignored() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        // The client claims to be 1.1.1.1; the proxies append the truth.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.5"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("203.0.113.5"));
        // Every hop a proxy: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.3"));
        // A hop that is no address stops the walk at the proxy that wrote it.
        let h = headers(&[("x-forwarded-for", "203.0.113.5, unknown, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_is_read_first_with_ports_quotes_and_brackets() {
        let proxies = TrustedProxies::parse(["10.0.0.1"]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.43:8080;by=10.0.0.1")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("192.0.2.43"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn bad_proxy_entries_are_named() {
        let e = TrustedProxies::parse(["10.0.0.0/8", "proxy.example"]).unwrap_err();
        assert!(e.to_string().contains("proxy.example"), "{e}");
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["10.0.0.7/8"])
            .unwrap()
            .trusts(ip("10.200.0.1")));
    }
}
