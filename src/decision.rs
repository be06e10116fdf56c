//! What the pipeline decides about a request: the types every stage returns and the glue
//! applies with host calls. They depend on nothing else in the filter, so [`crate::engine`]
//! and [`crate::authz`] both use them without depending on each other's types.

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
pub struct Edits {
    /// Headers to blank and remove (reserved headers the client sent, hidden credentials).
    pub clear: Vec<String>,
    /// Headers to set after clearing.
    pub set: Vec<(String, String)>,
    /// A new `:path` (a hidden query credential).
    pub path: Option<String>,
}

/// The request may go on.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    pub edits: Edits,
    /// Username of the consumer (None for a preflight pass-through).
    pub consumer: Option<String>,
}

/// An authorization callout to make before the request may go on.
#[derive(Debug, Clone, PartialEq)]
pub struct CalloutNeeded {
    /// What to send upstream if the callout allows.
    pub allowed: Allowed,
    /// The JSON body of the callout.
    pub body: String,
    /// The decision cache key: a digest of the configuration and of `body`.
    pub cache_key: [u8; 32],
}

/// The pipeline's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Allow(Allowed),
    Deny(Denial),
    /// Ask the authorization service, then the authorization module finishes.
    Callout(CalloutNeeded),
    /// A remote provider has no keys yet: wait for its first fetch, then evaluate again.
    WaitForKeys(usize),
}
