//! "Where the configuration has objects, objects it must be": serde would take a JSON array
//! for a struct (fields by position), so those places are checked before the typed parse.
//!
//! The check streams over the text without building a `serde_json::Value` (which for a large
//! configuration costs several times the text), and reports exactly what a check of the
//! parsed `Value` reports: nothing unless the whole text is valid JSON (every number read as
//! `Value` reads it), the last of duplicate keys counts, and the first failing place in this
//! order: `acl`, `authz`, `revocations` (objects); `group_routes`, `permissions` (objects whose
//! values' items are objects, keys in sorted order); the items of `claims_to_headers`,
//! `jwks_providers`, `consumers`; then, consumer by consumer, the items of its
//! `jwt_secrets`, `keyauth_credentials` and `routes`. `null` is accepted wherever an object
//! is expected; a list that is no array is not looked into.

use super::consumers::Counts;
use super::ConfigError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// What a value is, as far as the check cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `null` or an object: fine where an object is expected.
    ObjectOrNull,
    Array,
    Other,
}

/// Any JSON value, read as `serde_json::Value` would read it and dropped: its kind.
struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::ObjectOrNull)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::ObjectOrNull)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element_seed(AnyValue)?.is_some() {}
        Ok(Kind::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_key_seed(KeyName(|_: &str| ()))?.is_some() {
            map.next_value_seed(AnyValue)?;
        }
        Ok(Kind::ObjectOrNull)
    }
}

/// A map key, handed to a function as `&str` (no allocation when it has no escapes).
struct KeyName<F>(F);

impl<'de, T, F: FnOnce(&str) -> T> DeserializeSeed<'de> for KeyName<F> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> T> Visitor<'de> for KeyName<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

/// A list whose items must be objects: the index of the first item that is not, if the value
/// is an array (anything else is not looked into).
struct Objects;

impl<'de> DeserializeSeed<'de> for Objects {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        Ok(d.deserialize_any(ObjectsVisitor)?.0)
    }
}

/// [`Objects`], also counting the items.
struct CountedObjects;

impl<'de> DeserializeSeed<'de> for CountedObjects {
    type Value = (Option<usize>, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectsVisitor)
    }
}

struct ObjectsVisitor;

impl<'de> Visitor<'de> for ObjectsVisitor {
    type Value = (Option<usize>, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        let mut i = 0usize;
        while let Some(kind) = seq.next_element_seed(AnyValue)? {
            if first.is_none() && kind != Kind::ObjectOrNull {
                first = Some(i);
            }
            i = i.saturating_add(1);
        }
        Ok((first, i))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((None, 0))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        AnyVisitor.visit_map(map).map(|_| (None, 0))
    }
}

/// An object of lists of objects (`group_routes`, `permissions`): whether it is an object
/// (or null), and per key (last occurrence) the first item that is no object.
struct RouteMap;

type RouteMapResult = (Kind, BTreeMap<String, Option<usize>>);

impl<'de> DeserializeSeed<'de> for RouteMap {
    type Value = RouteMapResult;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RouteMapResult, D::Error> {
        d.deserialize_any(RouteMapVisitor)
    }
}

struct RouteMapVisitor;

impl<'de> Visitor<'de> for RouteMapVisitor {
    type Value = RouteMapResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RouteMapResult, A::Error> {
        let mut lists = BTreeMap::new();
        while let Some(key) = map.next_key_seed(KeyName(str::to_owned))? {
            let first = map.next_value_seed(Objects)?;
            lists.insert(key, first);
        }
        Ok((Kind::ObjectOrNull, lists))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RouteMapResult, A::Error> {
        Ok((AnyVisitor.visit_seq(seq)?, BTreeMap::new()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<RouteMapResult, E> {
        Ok((Kind::Other, BTreeMap::new()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<RouteMapResult, E> {
        Ok((Kind::Other, BTreeMap::new()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RouteMapResult, E> {
        Ok((Kind::Other, BTreeMap::new()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RouteMapResult, E> {
        Ok((Kind::Other, BTreeMap::new()))
    }
    fn visit_str<E>(self, _: &str) -> Result<RouteMapResult, E> {
        Ok((Kind::Other, BTreeMap::new()))
    }
    fn visit_unit<E>(self) -> Result<RouteMapResult, E> {
        Ok((Kind::ObjectOrNull, BTreeMap::new()))
    }
}

/// A consumer's lists checked, in this order.
const CONSUMER_LISTS: [&str; 3] = ["jwt_secrets", "keyauth_credentials", "routes"];

/// One item of `consumers`: its kind, the first failing (list, item) of its lists, and the
/// length of each list.
struct ConsumerItem;

type ConsumerResult = (Kind, Option<(usize, usize)>, [usize; 3]);

impl<'de> DeserializeSeed<'de> for ConsumerItem {
    type Value = ConsumerResult;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ConsumerResult, D::Error> {
        d.deserialize_any(ConsumerVisitor)
    }
}

struct ConsumerVisitor;

impl<'de> Visitor<'de> for ConsumerVisitor {
    type Value = ConsumerResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConsumerResult, A::Error> {
        let mut lists: [(Option<usize>, usize); 3] = [(None, 0); 3];
        while let Some(field) = map.next_key_seed(KeyName(|k: &str| {
            CONSUMER_LISTS.iter().position(|f| *f == k)
        }))? {
            match field.and_then(|f| lists.get_mut(f)) {
                Some(slot) => *slot = map.next_value_seed(CountedObjects)?,
                None => {
                    map.next_value_seed(AnyValue)?;
                }
            }
        }
        let first = lists
            .iter()
            .enumerate()
            .find_map(|(f, (i, _))| i.map(|i| (f, i)));
        Ok((Kind::ObjectOrNull, first, lists.map(|(_, n)| n)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ConsumerResult, A::Error> {
        Ok((AnyVisitor.visit_seq(seq)?, None, [0; 3]))
    }
    fn visit_bool<E>(self, _: bool) -> Result<ConsumerResult, E> {
        Ok((Kind::Other, None, [0; 3]))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ConsumerResult, E> {
        Ok((Kind::Other, None, [0; 3]))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ConsumerResult, E> {
        Ok((Kind::Other, None, [0; 3]))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ConsumerResult, E> {
        Ok((Kind::Other, None, [0; 3]))
    }
    fn visit_str<E>(self, _: &str) -> Result<ConsumerResult, E> {
        Ok((Kind::Other, None, [0; 3]))
    }
    fn visit_unit<E>(self) -> Result<ConsumerResult, E> {
        Ok((Kind::ObjectOrNull, None, [0; 3]))
    }
}

/// `consumers`: the error its value gives, if any, and what it holds.
struct Consumers;

type ConsumersResult = (Option<ConfigError>, Counts);

impl<'de> DeserializeSeed<'de> for Consumers {
    type Value = ConsumersResult;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ConsumersResult, D::Error> {
        d.deserialize_any(ConsumersVisitor)
    }
}

struct ConsumersVisitor;

impl<'de> Visitor<'de> for ConsumersVisitor {
    type Value = ConsumersResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConsumersResult, A::Error> {
        let mut not_object = None;
        let mut in_lists = None;
        let mut counts = Counts::default();
        while let Some((kind, first, [jwt, api, _])) = seq.next_element_seed(ConsumerItem)? {
            let i = counts.consumers;
            if not_object.is_none() && kind != Kind::ObjectOrNull {
                not_object = Some(i);
            }
            if in_lists.is_none() {
                in_lists = first.map(|(f, j)| (i, f, j));
            }
            counts.consumers = i.saturating_add(1);
            counts.jwt_secrets = counts.jwt_secrets.saturating_add(jwt);
            counts.api_keys = counts.api_keys.saturating_add(api);
        }
        let error = match (not_object, in_lists) {
            (Some(i), _) => Some(not_an_object(format!("consumers[{i}]"))),
            (None, Some((i, f, j))) => {
                let field = CONSUMER_LISTS.get(f).copied().unwrap_or_default();
                Some(not_an_object(format!("consumers[{i}].{field}[{j}]")))
            }
            (None, None) => None,
        };
        Ok((error, counts))
    }
    fn visit_bool<E>(self, _: bool) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_str<E>(self, _: &str) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_unit<E>(self) -> Result<ConsumersResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ConsumersResult, A::Error> {
        AnyVisitor.visit_map(map).map(|_| (None, Counts::default()))
    }
}

fn not_an_object(path: String) -> ConfigError {
    ConfigError::new(path, "must be a JSON object")
}

/// The top-level fields checked, in the order they are reported.
const FIELDS: [&str; 8] = [
    "acl",
    "authz",
    "revocations",
    "group_routes",
    "permissions",
    "claims_to_headers",
    "jwks_providers",
    "consumers",
];

/// The document: the first error (per checked field, its last occurrence counts), and what
/// `consumers` holds.
struct Document;

type DocumentResult = (Option<ConfigError>, Counts);

impl<'de> DeserializeSeed<'de> for Document {
    type Value = DocumentResult;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DocumentResult, D::Error> {
        d.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl DocumentVisitor {
    fn field<'de, A: MapAccess<'de>>(
        map: &mut A,
        name: &str,
        counts: &mut Counts,
    ) -> Result<Option<ConfigError>, A::Error> {
        let object = |kind: Kind| (kind == Kind::Other || kind == Kind::Array).then_some(());
        Ok(match name {
            "acl" | "authz" | "revocations" => {
                object(map.next_value_seed(AnyValue)?).map(|()| not_an_object(name.to_owned()))
            }
            "group_routes" | "permissions" => {
                let (kind, lists) = map.next_value_seed(RouteMap)?;
                match object(kind) {
                    Some(()) => Some(not_an_object(name.to_owned())),
                    None => lists.iter().find_map(|(k, first)| {
                        first.map(|i| not_an_object(format!("{name}.{k}[{i}]")))
                    }),
                }
            }
            "claims_to_headers" | "jwks_providers" => map
                .next_value_seed(Objects)?
                .map(|i| not_an_object(format!("{name}[{i}]"))),
            _ => {
                let (error, found) = map.next_value_seed(Consumers)?;
                *counts = found;
                error
            }
        })
    }
}

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = DocumentResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DocumentResult, A::Error> {
        let mut errors: [Option<ConfigError>; 8] = Default::default();
        let mut counts = Counts::default();
        while let Some(field) =
            map.next_key_seed(KeyName(|k: &str| FIELDS.iter().position(|f| *f == k)))?
        {
            match field.and_then(|f| Some((f, FIELDS.get(f)?))) {
                Some((f, name)) => {
                    let e = Self::field(&mut map, name, &mut counts)?;
                    if let Some(slot) = errors.get_mut(f) {
                        *slot = e;
                    }
                }
                None => {
                    map.next_value_seed(AnyValue)?;
                }
            }
        }
        Ok((errors.into_iter().flatten().next(), counts))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DocumentResult, A::Error> {
        AnyVisitor.visit_seq(seq).map(|_| (None, Counts::default()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_str<E>(self, _: &str) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
    fn visit_unit<E>(self) -> Result<DocumentResult, E> {
        Ok((None, Counts::default()))
    }
}

/// The first place that must be an object and is not; nothing when the text is no valid
/// JSON (the typed parse reports that). Also how many consumers and credentials the text
/// holds (zero when it is no valid JSON).
pub(super) fn check_objects(text: &str) -> Result<Counts, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Document
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    match found {
        Ok((Some(e), _)) => Err(e),
        Ok((None, counts)) => Ok(counts),
        Err(_) => Ok(Counts::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check of the parsed document this module replaces, kept as the oracle.
    fn oracle(text: &str) -> Result<(), ConfigError> {
        use serde_json::Value;
        fn object(v: Option<&Value>, path: &str) -> Result<(), ConfigError> {
            match v {
                None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
                Some(_) => Err(ConfigError::new(path, "must be a JSON object")),
            }
        }
        fn objects(v: Option<&Value>, path: &str) -> Result<(), ConfigError> {
            for (i, item) in v
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                object(Some(item), &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        fn route_map(v: Option<&Value>, path: &str) -> Result<(), ConfigError> {
            object(v, path)?;
            for (k, list) in v.and_then(Value::as_object).into_iter().flatten() {
                objects(Some(list), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            return Ok(());
        };
        for field in ["acl", "authz", "revocations"] {
            object(doc.get(field), field)?;
        }
        route_map(doc.get("group_routes"), "group_routes")?;
        route_map(doc.get("permissions"), "permissions")?;
        objects(doc.get("claims_to_headers"), "claims_to_headers")?;
        objects(doc.get("jwks_providers"), "jwks_providers")?;
        objects(doc.get("consumers"), "consumers")?;
        for (i, c) in doc
            .get("consumers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for field in ["jwt_secrets", "keyauth_credentials", "routes"] {
                objects(c.get(field), &format!("consumers[{i}].{field}"))?;
            }
        }
        Ok(())
    }

    #[test]
    fn agrees_with_the_value_check() {
        let cases = [
            r#"{}"#,
            r#"[]"#,
            r#"5"#,
            r#"{"acl": []}"#,
            r#"{"acl": null, "authz": 1}"#,
            r#"{"revocations": "x", "acl": [1]}"#,
            r#"{"acl": [1], "acl": {}}"#,
            r#"{"acl": {}, "acl": [1]}"#,
            r#"{"acl": [1], "x": 1e400}"#,
            r#"{"acl": [1]} x"#,
            r#"{"acl": [1], "x": "\ud800"}"#,
            r#"{"group_routes": []}"#,
            r#"{"group_routes": {"b": [1], "a": [{}, 2]}}"#,
            r#"{"group_routes": {"b": [1], "b": [{}]}}"#,
            r#"{"group_routes": {"a": 5, "b": [null, {}]}}"#,
            r#"{"permissions": {"v": [[]]}, "group_routes": {"g": [{}]}}"#,
            r#"{"claims_to_headers": [{}, []], "jwks_providers": [1]}"#,
            r#"{"jwks_providers": {"a": 1}}"#,
            r#"{"consumers": [{}, 1, {"routes": [1]}]}"#,
            r#"{"consumers": [{"routes": [{}, 1]}, {"jwt_secrets": [1]}]}"#,
            r#"{"consumers": [{"routes": [1], "jwt_secrets": [{}, 2]}]}"#,
            r#"{"consumers": [{"routes": [1], "routes": []}]}"#,
            r#"{"consumers": [null, {"keyauth_credentials": [[]]}]}"#,
            r#"{"consumers": [{"routes": 5, "keyauth_credentials": "x"}], "acl": {}}"#,
            r#"{"consumers": [{"routes": [1]}], "consumers": []}"#,
            r#"{"consumers": [{"routes": [1]}], "authz": 1}"#,
            r#"{"consumers": {"a": [1]}}"#,
            r#"{"consumers": [{"r\u006futes": [1]}]}"#,
            r#"{"a\u0063l": 1}"#,
        ];
        for text in cases {
            assert_eq!(check_objects(text).map(|_| ()), oracle(text), "{text}");
        }
        assert!(check_objects(r#"{"acl": []}"#).is_err());
        let counts = check_objects(
            r#"{"consumers": [{"jwt_secrets": [{}, {}], "keyauth_credentials": [{}]},
                {"jwt_secrets": [{}], "jwt_secrets": [{}, {}, {}]}, {}]}"#,
        )
        .unwrap();
        assert_eq!(
            (counts.consumers, counts.jwt_secrets, counts.api_keys),
            (3, 5, 1)
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"acl": 1, "x": {deep}}}"#);
        assert_eq!(check_objects(&text).map(|_| ()), oracle(&text));
    }
}
