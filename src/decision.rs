//! What the pipeline decides about a request: the types every stage returns and the glue
//! applies with host calls. They depend on nothing else in the filter, so [`crate::engine`]
//! and [`crate::authz`] both use them without depending on each other's types.
//!
//! An allowed request's edits borrow what they can from the configuration and the request
//! (`'a`: the header names and the consumer's values), so that the common answer allocates
//! nothing per header; [`Outcome::into_owned`] detaches one that must outlive them (a
//! callout's answer arrives in a later host callback).

use std::borrow::Cow;

/// A local response that ends the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub status: u16,
    /// The JSON body.
    pub body: String,
    pub www_authenticate: Option<String>,
    /// For the info log: why (never a token or secret).
    pub reason: String,
    /// Username of the consumer, when one was identified.
    pub consumer: Option<String>,
}

/// Header edits for the upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edits<'a> {
    /// Headers to blank and remove (reserved headers the client sent, hidden credentials).
    pub clear: Vec<Cow<'a, str>>,
    /// Headers to set after clearing.
    pub set: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// A new `:path` (a hidden query credential).
    pub path: Option<String>,
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

impl Edits<'_> {
    /// The same edits, owning their strings.
    pub fn into_owned(self) -> Edits<'static> {
        Edits {
            clear: self.clear.into_iter().map(owned).collect(),
            set: self
                .set
                .into_iter()
                .map(|(n, v)| (owned(n), owned(v)))
                .collect(),
            path: self.path,
        }
    }
}

/// The request may go on.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed<'a> {
    pub edits: Edits<'a>,
    /// Username of the consumer (None for a preflight pass-through).
    pub consumer: Option<Cow<'a, str>>,
}

impl Allowed<'_> {
    /// The same answer, owning its strings.
    pub fn into_owned(self) -> Allowed<'static> {
        Allowed {
            edits: self.edits.into_owned(),
            consumer: self.consumer.map(owned),
        }
    }
}

/// An authorization callout to make before the request may go on.
#[derive(Debug, Clone, PartialEq)]
pub struct CalloutNeeded<'a> {
    /// What to send upstream if the callout allows.
    pub allowed: Allowed<'a>,
    /// The JSON body of the callout.
    pub body: String,
    /// The decision cache key: a digest of the configuration and of `body`.
    pub cache_key: [u8; 32],
}

/// The pipeline's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<'a> {
    Allow(Allowed<'a>),
    Deny(Denial),
    /// Ask the authorization service, then the authorization module finishes.
    Callout(CalloutNeeded<'a>),
    /// A remote provider has no keys yet: wait for its first fetch, then evaluate again.
    WaitForKeys(usize),
}

impl Outcome<'_> {
    /// The same answer, owning its strings.
    pub fn into_owned(self) -> Outcome<'static> {
        match self {
            Outcome::Allow(a) => Outcome::Allow(a.into_owned()),
            Outcome::Deny(d) => Outcome::Deny(d),
            Outcome::Callout(c) => Outcome::Callout(CalloutNeeded {
                allowed: c.allowed.into_owned(),
                body: c.body,
                cache_key: c.cache_key,
            }),
            Outcome::WaitForKeys(p) => Outcome::WaitForKeys(p),
        }
    }
}
