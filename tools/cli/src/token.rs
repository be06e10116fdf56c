//! `bouncer token`: a signed test token for a consumer of a configuration.

use crate::{read_text, Failure};
use bouncer::config::raw::RawJwtSecret;
use bouncer::config::Policy;
use bouncer_token::SigningKey;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TokenArgs {
    /// The Bouncer configuration (JSON)
    #[arg(long)]
    pub config: PathBuf,
    /// The consumer's username (or id)
    #[arg(long)]
    pub consumer: String,
    /// Private key (PEM: PKCS#8, or PKCS#1 for RSA) for RS*, PS*, ES256, ES384, EdDSA
    #[arg(long, value_name = "PEM")]
    pub key_file: Option<PathBuf>,
    /// Use the consumer's credential of this algorithm (default: its first credential)
    #[arg(long)]
    pub alg: Option<String>,
    /// Use the consumer's credential with this `key`
    #[arg(long)]
    pub credential: Option<String>,
    /// Claims (a JSON object) added to, or replacing, the defaults; `null` removes one
    #[arg(long, value_name = "JSON")]
    pub claims: Option<String>,
    /// Lifetime: `exp` = now + SECONDS (negative for an expired token)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    pub exp: i64,
    /// Put this `kid` in the JOSE header
    #[arg(long)]
    pub kid: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The credential to sign for: by `key`, else by algorithm, else the first.
fn pick<'a>(
    secrets: &'a [RawJwtSecret],
    args: &TokenArgs,
    who: &str,
) -> Result<&'a RawJwtSecret, Failure> {
    let listed = || {
        secrets
            .iter()
            .map(|s| format!("{} ({})", s.key, s.algorithm))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if secrets.is_empty() {
        return Err(Failure::refused(format!(
            "consumer '{who}' has no jwt_secrets"
        )));
    }
    let found = secrets.iter().find(|s| {
        args.credential.as_ref().is_none_or(|k| &s.key == k)
            && args.alg.as_ref().is_none_or(|a| &s.algorithm == a)
    });
    found.ok_or_else(|| {
        Failure::refused(format!(
            "consumer '{who}' has no such credential (it has: {})",
            listed()
        ))
    })
}

pub fn run(args: &TokenArgs) -> Result<(), Failure> {
    let text = read_text(&args.config)?;
    let policy = Policy::from_json(&text).map_err(|e| {
        Failure::refused(format!(
            "{}: invalid configuration: {e}",
            args.config.display()
        ))
    })?;
    let raw: Consumers = serde_json::from_str(if text.trim().is_empty() { "{}" } else { &text })
        .map_err(|e| Failure::refused(format!("{}: {e}", args.config.display())))?;
    let consumer = raw
        .consumers
        .iter()
        .find(|c| c.username == args.consumer)
        .or_else(|| {
            raw.consumers
                .iter()
                .find(|c| c.id.as_deref() == Some(args.consumer.as_str()))
        })
        .ok_or_else(|| {
            let names: Vec<&str> = raw.consumers.iter().map(|c| c.username.as_str()).collect();
            Failure::refused(format!(
                "no consumer '{}' (consumers: {})",
                args.consumer,
                names.join(", ")
            ))
        })?;
    let cred = pick(&consumer.jwt_secrets, args, &consumer.username)?;
    let alg = cred.algorithm.as_str();

    let mut claims = Map::new();
    claims.insert(policy.key_claim_name.clone(), json!(cred.key));
    let now = now();
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(args.exp)));
    if let Some(extra) = &args.claims {
        let extra: Value = serde_json::from_str(extra)
            .map_err(|e| Failure::io(format!("--claims: not JSON: {e}")))?;
        let Value::Object(extra) = extra else {
            return Err(Failure::io("--claims: must be a JSON object"));
        };
        for (k, v) in extra {
            if v.is_null() {
                claims.remove(&k);
            } else {
                claims.insert(k, v);
            }
        }
    }
    let claims = Value::Object(claims);

    let secret;
    let pem;
    let key = if alg.starts_with("HS") {
        if args.key_file.is_some() {
            return Err(Failure::io(format!(
                "--key-file: {alg} signs with the credential's secret"
            )));
        }
        secret = match (&cred.secret, &cred.jwk) {
            (Some(s), _) if cred.secret_is_base64 => bouncer::config::decode_base64_secret(s)
                .ok_or_else(|| Failure::refused("the secret is not valid base64"))?,
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(jwk)) => jwk
                .get("k")
                .and_then(Value::as_str)
                .and_then(bouncer::config::decode_base64_secret)
                .ok_or_else(|| Failure::refused("the credential's jwk has no usable \"k\""))?,
            (None, None) => return Err(Failure::refused("the credential has no secret")),
        };
        SigningKey::Secret(&secret)
    } else {
        let Some(path) = &args.key_file else {
            return Err(Failure::io(format!(
                "credential '{}' is {alg}: give its private key with --key-file PEM",
                cred.key
            )));
        };
        pem = read_text(path)?;
        SigningKey::PrivatePem(&pem)
    };
    let token = bouncer_token::sign(alg, &key, args.kid.as_deref(), &claims)
        .map_err(|e| Failure::refused(e.to_string()))?;

    // The filter's own key must verify it: a private key that is not the consumer's is refused
    // here, not at the gateway.
    let verified = policy.jwt_credentials.get(&cred.key).is_some_and(|c| {
        token.rsplit_once('.').is_some_and(|(input, sig)| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .is_ok_and(|sig| c.key.verify(c.alg, input.as_bytes(), &sig))
        })
    });
    if !verified {
        return Err(Failure::refused(format!(
            "the token does not verify with credential '{}' of the configuration: \
             is the key file the private half of its public key?",
            cred.key
        )));
    }
    println!("{token}");
    Ok(())
}

/// The consumers of a configuration with their JWT credentials, as written (the filter's own
/// parse keeps no secret it does not need; the configuration was checked before).
#[derive(serde::Deserialize)]
struct Consumers {
    #[serde(default)]
    consumers: Vec<ConsumerEntry>,
}

#[derive(serde::Deserialize)]
struct ConsumerEntry {
    username: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    jwt_secrets: Vec<RawJwtSecret>,
}
