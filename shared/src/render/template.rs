//! Payload templates (DESIGN §6): compiled when an automation is saved, rendered per delivery.
//!
//! Syntax, inside JSON string values only (object keys, numbers, booleans and `null` are sent as
//! they are):
//!
//! - `${name}`: a variable of [`KNOWN_VARIABLES`] or `${artifact_metadata.KEY}`; one that does
//!   not apply to the event renders as "". Any other `${name}` is a compile error at its path.
//! - `${NAME}` or `$NAME`: the webhook's payload secret, when `NAME` is its name.
//! - `${ACCESS_TOKEN}` or `$ACCESS_TOKEN`: the webhook's access token; a compile error when the
//!   webhook has none.
//! - A bare `$name` that is neither is literal text (`$5`, `$HOME`, `$run_name` stay as they
//!   are); the name is read greedily (`$TOKENS` is not the secret `TOKEN`).
//! - `$$` is a literal `$` (so `$${run_name}` sends `${run_name}`).
//! - A `${` without a closing `}` is a compile error.
//!
//! When a secret is named like a variable (`event_id`), `${event_id}` is the variable and only
//! the bare `$event_id` is the secret: a clash never sends a secret where a variable was meant.
//! The name `ACCESS_TOKEN` belongs to the access token; a payload secret of that name is reached
//! through it only when the webhook has no access token (the `secrets` callback then answers
//! `"ACCESS_TOKEN"` with the payload secret).
//!
//! Values are substituted into the string, never spliced into JSON text, and the result is built
//! as a [`serde_json::Value`], so quotes, backslashes and newlines in event values are escaped by
//! serialization and the body is always valid JSON. Every substituted value is a string: a
//! payload of `"${metric_value}"` sends `"4"`, not `4`.
//!
//! Error paths are relative to the payload: `client_payload.text`,
//! `sections[0].facts[1].value`, `""` for a string payload. Callers prefix them with where the
//! payload lives (`action.payload` + `.` or directly before `[`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::variables::{ARTIFACT_METADATA_PREFIX, KNOWN_VARIABLES, Variables, is_variable_name};

/// The secret name of the webhook's access token, in templates and in the `secrets` callback.
pub const ACCESS_TOKEN: &str = "ACCESS_TOKEN";

/// What [`Template::render_masked`] shows instead of a secret value.
pub const MASK: &str = "***";

/// Names usable as secrets in a payload: the webhook's payload-secret name (if any) and whether
/// an access token is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretNames<'a> {
    pub secret: Option<&'a str>,
    pub has_access_token: bool,
}

/// A fault in a template, at a JSON path inside the payload (dotted, `[i]` for array elements,
/// `""` for the root).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
    Secret(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Sent as is: non-strings and strings without any substitution (`$$` already folded).
    Fixed(Value),
    Text(Vec<Segment>),
    Array(Vec<Node>),
    /// A `Vec`, not a map, so the payload's key order survives whatever `Map` is built from it.
    Object(Vec<(String, Node)>),
}

/// A payload with every string value pre-split into literal / variable / secret segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    root: Node,
}

/// Where a template is used, which decides what a secret reference means.
#[derive(Clone, Copy)]
enum Secrets<'a> {
    Webhook(&'a SecretNames<'a>),
    /// Slack title and message: no secrets at all.
    None,
}

impl Template {
    /// Checks and pre-splits every string value of `payload`; every fault is reported, each at
    /// its path.
    pub fn compile(payload: &Value, secrets: &SecretNames) -> Result<Template, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let mut path = String::new();
        let root = compile_node(payload, Secrets::Webhook(secrets), &mut path, &mut errors);
        if errors.is_empty() { Ok(Template { root }) } else { Err(errors) }
    }

    /// The body to send. `secrets` answers a secret's value by name: [`ACCESS_TOKEN`] for the
    /// access token, the secret's own name for the payload secret; `None` renders as "".
    pub fn render(&self, vars: &Variables, secrets: &dyn Fn(&str) -> Option<String>) -> Value {
        render_node(&self.root, vars, &|name| secrets(name).unwrap_or_default())
    }

    /// Same, with every secret replaced by `***`: what execution records and previews show.
    pub fn render_masked(&self, vars: &Variables) -> Value {
        render_node(&self.root, vars, &|_| MASK.to_owned())
    }

    /// Whether rendering needs any secret value.
    pub fn uses_secrets(&self) -> bool {
        !self.secrets_used().is_empty()
    }

    /// The secret names the payload refers to, so a caller fetches only those.
    pub fn secrets_used(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        collect_secrets(&self.root, &mut names);
        names
    }
}

/// Slack title or message: the same syntax as a payload string, with no secrets (`$NAME` stays
/// literal; `${ACCESS_TOKEN}` and `$ACCESS_TOKEN` are errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTemplate {
    segments: Vec<Segment>,
}

impl TextTemplate {
    /// The first fault of `text`, with path `""` (the caller knows which field it compiled).
    pub fn compile(text: &str) -> Result<Self, TemplateError> {
        parse(text, Secrets::None)
            .map(|segments| TextTemplate { segments })
            .map_err(|mut messages| TemplateError { path: String::new(), message: messages.swap_remove(0) })
    }

    /// The text with variables substituted; `escape` is applied to the substituted values only
    /// (Slack mrkdwn escaping), never to the literal text, which is the user's own markup.
    pub fn render(&self, vars: &Variables, escape: fn(&str) -> String) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Variable(name) => out.push_str(&escape(vars.get(name).unwrap_or(""))),
                // `parse` with `Secrets::None` never produces a secret segment.
                Segment::Secret(_) => {}
            }
        }
        out
    }
}

/// The body a webhook action without a payload sends: every variable of [`KNOWN_VARIABLES`] as a
/// string (present even when empty, so a receiver can rely on the keys), then the event document
/// as received under `"event"`:
///
/// ```json
/// {"event_type": "ADD_ARTIFACT_ALIAS", "event_id": "evt_01J…", "automation_name": "…",
///  "entity_name": "ml-team", "project_name": "wandb-registry-models", "event_author": "alice",
///  "alias": "production", "tag": "", "artifact_collection_name": "churn-model",
///  "artifact_version": "v7", "artifact_version_string": "ml-team/wandb-registry-models/churn-model:v7",
///  "run_id": "", "run_name": "", "run_state": "", "run_url": "", "metric_name": "",
///  "metric_value": "", "event": {…}}
/// ```
pub fn default_body(event: &Value, vars: &Variables) -> Value {
    const LEADING: [&str; 3] = ["event_type", "event_id", "automation_name"];
    let mut body = Map::new();
    let names = LEADING.iter().chain(KNOWN_VARIABLES.iter().filter(|name| !LEADING.contains(name)));
    for name in names {
        body.insert((*name).to_owned(), Value::String(vars.get(name).unwrap_or("").to_owned()));
    }
    body.insert("event".to_owned(), event.clone());
    Value::Object(body)
}

fn compile_node(value: &Value, secrets: Secrets, path: &mut String, errors: &mut Vec<TemplateError>) -> Node {
    match value {
        Value::String(text) => match parse(text, secrets) {
            Ok(segments) => match segments.as_slice() {
                [] => Node::Fixed(Value::String(String::new())),
                [Segment::Literal(literal)] => Node::Fixed(Value::String(literal.clone())),
                _ => Node::Text(segments),
            },
            Err(messages) => {
                errors.extend(messages.into_iter().map(|message| TemplateError { path: path.clone(), message }));
                Node::Fixed(Value::Null)
            }
        },
        Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                nodes.push(compile_node(item, secrets, path, errors));
                path.truncate(len);
            }
            Node::Array(nodes)
        }
        Value::Object(fields) => {
            let mut nodes = Vec::with_capacity(fields.len());
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                nodes.push((key.clone(), compile_node(item, secrets, path, errors)));
                path.truncate(len);
            }
            Node::Object(nodes)
        }
        other => Node::Fixed(other.clone()),
    }
}

fn render_node(node: &Node, vars: &Variables, secret: &dyn Fn(&str) -> String) -> Value {
    match node {
        Node::Fixed(value) => value.clone(),
        Node::Text(segments) => {
            let mut out = String::new();
            for segment in segments {
                match segment {
                    Segment::Literal(text) => out.push_str(text),
                    Segment::Variable(name) => out.push_str(vars.get(name).unwrap_or("")),
                    Segment::Secret(name) => out.push_str(&secret(name)),
                }
            }
            Value::String(out)
        }
        Node::Array(items) => Value::Array(items.iter().map(|item| render_node(item, vars, secret)).collect()),
        Node::Object(fields) => {
            Value::Object(fields.iter().map(|(key, item)| (key.clone(), render_node(item, vars, secret))).collect())
        }
    }
}

fn collect_secrets<'t>(node: &'t Node, names: &mut BTreeSet<&'t str>) {
    match node {
        Node::Fixed(_) => {}
        Node::Text(segments) => {
            for segment in segments {
                if let Segment::Secret(name) = segment {
                    names.insert(name);
                }
            }
        }
        Node::Array(items) => items.iter().for_each(|item| collect_secrets(item, names)),
        Node::Object(fields) => fields.iter().for_each(|(_, item)| collect_secrets(item, names)),
    }
}

/// Splits one string into segments, or returns every fault in it (none after an unterminated
/// `${`, which swallows the rest of the string).
fn parse(text: &str, secrets: Secrets) -> Result<Vec<Segment>, Vec<String>> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    // `$`, `{` and `}` are ASCII, so every index compared with them is a char boundary.
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        literal.push_str(&text[start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                literal.push('$');
                i += 2;
            }
            Some(b'{') => {
                let Some(len) = text[i + 2..].find('}') else {
                    let at = text[..i].chars().count();
                    errors.push(format!(
                        "unterminated `${{` at offset {at}: close it with `}}`, or write `$${{` for a literal `${{`"
                    ));
                    break;
                };
                let name = &text[i + 2..i + 2 + len];
                match resolve_braced(name, secrets) {
                    Ok(segment) => push_segment(&mut segments, &mut literal, segment),
                    Err(message) => errors.push(message),
                }
                i += 2 + len + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let end = bytes[i + 1..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map_or(bytes.len(), |p| i + 1 + p);
                let name = &text[i + 1..end];
                match resolve_bare(name, secrets) {
                    Ok(Some(segment)) => push_segment(&mut segments, &mut literal, segment),
                    Ok(None) => literal.push_str(&text[i..end]),
                    Err(message) => errors.push(message),
                }
                i = end;
            }
            _ => {
                literal.push('$');
                i += 1;
            }
        }
        start = i;
    }
    if start < bytes.len() {
        literal.push_str(&text[start..]);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

fn push_segment(segments: &mut Vec<Segment>, literal: &mut String, segment: Segment) {
    if !literal.is_empty() {
        segments.push(Segment::Literal(std::mem::take(literal)));
    }
    segments.push(segment);
}

fn resolve_braced(name: &str, secrets: Secrets) -> Result<Segment, String> {
    if is_variable_name(name) {
        return Ok(Segment::Variable(name.to_owned()));
    }
    if name == ARTIFACT_METADATA_PREFIX.trim_end_matches('.') || name == ARTIFACT_METADATA_PREFIX {
        return Err(format!("`${{{name}}}` needs a metadata key: `${{artifact_metadata.KEY}}`"));
    }
    match resolve_secret(name, secrets)? {
        Some(segment) => Ok(segment),
        None => Err(unknown_variable(name, secrets)),
    }
}

fn resolve_bare(name: &str, secrets: Secrets) -> Result<Option<Segment>, String> {
    resolve_secret(name, secrets)
}

/// `Ok(None)`: not a secret name here.
fn resolve_secret(name: &str, secrets: Secrets) -> Result<Option<Segment>, String> {
    match secrets {
        Secrets::Webhook(names) => {
            if name == ACCESS_TOKEN {
                if names.has_access_token || names.secret == Some(ACCESS_TOKEN) {
                    Ok(Some(Segment::Secret(ACCESS_TOKEN.to_owned())))
                } else {
                    Err(format!(
                        "`{name}` is used but the webhook has no access token: set the webhook's `access_token_secret`, or write `$${name}` for the literal text"
                    ))
                }
            } else if names.secret == Some(name) {
                Ok(Some(Segment::Secret(name.to_owned())))
            } else {
                Ok(None)
            }
        }
        Secrets::None => {
            if name == ACCESS_TOKEN {
                Err(format!(
                    "secrets such as `{name}` cannot be used in a Slack message; write `$${name}` for the literal text"
                ))
            } else {
                Ok(None)
            }
        }
    }
}

fn unknown_variable(name: &str, secrets: Secrets) -> String {
    let mut candidates: Vec<&str> = KNOWN_VARIABLES.to_vec();
    if let Secrets::Webhook(names) = secrets {
        candidates.extend(names.secret);
        if names.has_access_token {
            candidates.push(ACCESS_TOKEN);
        }
    }
    let suggestion = candidates
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| {
            (*distance <= 2.max(candidate.len() / 4) && *distance < name.chars().count())
                || candidate.eq_ignore_ascii_case(name)
        })
        .min();
    if let Some((_, candidate)) = suggestion {
        return format!("unknown variable `${{{name}}}`: did you mean `${{{candidate}}}`?");
    }
    let list: Vec<String> = KNOWN_VARIABLES
        .iter()
        .map(|v| format!("${{{v}}}"))
        .chain(std::iter::once("${artifact_metadata.KEY}".to_owned()))
        .collect();
    let mut message = format!("unknown variable `${{{name}}}`: the variables are {}", list.join(", "));
    match secrets {
        Secrets::Webhook(SecretNames { secret: Some(secret), .. }) => {
            message.push_str(&format!("; the webhook's secret is `${secret}`"))
        }
        Secrets::Webhook(_) => message.push_str("; the webhook has no payload secret"),
        Secrets::None => {}
    }
    message
}

/// Levenshtein distance, case-insensitive (names are short; only used for hints).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::slack::escape_mrkdwn;
    use crate::render::variables::RenderContext;
    use serde_json::json;

    const NO_SECRETS: SecretNames = SecretNames { secret: None, has_access_token: false };
    const WITH_SECRETS: SecretNames = SecretNames { secret: Some("MY_SECRET"), has_access_token: true };

    /// The fixed ADD_ARTIFACT_ALIAS event of the snapshots (DESIGN §4's example).
    fn alias_event() -> Value {
        json!({
            "v": 1, "id": "evt_01JDX3ZQ5K8M2N4P6R8T0V2W4Y", "type": "ADD_ARTIFACT_ALIAS",
            "time": "2026-11-23T10:00:00Z", "team": "ml-team", "project": "wandb-registry-models",
            "author": "alice",
            "artifact": {"collection": "churn-model", "version": "v7", "type": "model",
                         "aliases": ["latest", "production"], "tags": ["xgb"],
                         "metadata": {"auc": 0.91},
                         "url": "https://wandb.example/ml-team/wandb-registry-models/churn-model/v7"},
            "alias": "production"
        })
    }

    fn alias_vars() -> Variables {
        Variables::from_event(
            &alias_event(),
            &RenderContext {
                automation_name: "deploy on production alias",
                event_type: "ADD_ARTIFACT_ALIAS",
                metric_name: None,
                metric_value: None,
            },
        )
    }

    fn secret_values(name: &str) -> Option<String> {
        match name {
            ACCESS_TOKEN => Some("tok-123".to_owned()),
            "MY_SECRET" => Some("s3cr3t".to_owned()),
            _ => None,
        }
    }

    fn render_str(template: &str, secrets: &SecretNames, vars: &Variables) -> Value {
        Template::compile(&json!(template), secrets).unwrap().render(vars, &secret_values)
    }

    fn compile_errors(payload: Value, secrets: &SecretNames) -> Vec<TemplateError> {
        Template::compile(&payload, secrets).unwrap_err()
    }

    #[test]
    fn github_repository_dispatch_example() {
        let payload = json!({
            "event_type": "BUILD_AND_DEPLOY",
            "client_payload": {
                "event_author": "${event_author}",
                "artifact_version": "${artifact_version}",
                "artifact_version_string": "${artifact_version_string}",
                "artifact_collection_name": "${artifact_collection_name}",
                "project_name": "${project_name}",
                "entity_name": "${entity_name}"
            }
        });
        let template = Template::compile(&payload, &NO_SECRETS).unwrap();
        assert!(!template.uses_secrets());
        let body = template.render(&alias_vars(), &secret_values);
        assert_eq!(body, template.render_masked(&alias_vars()));
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!("github_repository_dispatch", body);
        });
    }

    #[test]
    fn microsoft_teams_message_card_example() {
        let payload = json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": "New Notification",
            "sections": [{
                "activityTitle": "Notification from WANDB",
                "text": "This is an example message sent via Teams webhook.",
                "facts": [
                    {"name": "Author", "value": "${event_author}"},
                    {"name": "Event Type", "value": "${event_type}"}
                ],
                "markdown": true
            }]
        });
        let body = Template::compile(&payload, &NO_SECRETS).unwrap().render(&alias_vars(), &secret_values);
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!("microsoft_teams_message_card", body);
        });
    }

    #[test]
    fn default_body_example() {
        let body = default_body(&alias_event(), &alias_vars());
        assert_eq!(body["event"], alias_event());
        for name in KNOWN_VARIABLES {
            assert!(body[name].is_string(), "{name}");
        }
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!("default_body_add_artifact_alias", body);
        });
    }

    #[test]
    fn every_variable_renders_in_a_payload() {
        let vars = alias_vars();
        let mut payload = Map::new();
        for name in KNOWN_VARIABLES {
            payload.insert((*name).to_owned(), json!(format!("[${{{name}}}]")));
        }
        payload.insert("auc".to_owned(), json!("${artifact_metadata.auc}"));
        let body = Template::compile(&Value::Object(payload), &NO_SECRETS).unwrap().render(&vars, &secret_values);
        for name in KNOWN_VARIABLES {
            assert_eq!(body[name], json!(format!("[{}]", vars.get(name).unwrap())), "{name}");
        }
        assert_eq!(body["auc"], "0.91");
        assert_eq!(body["alias"], "[production]");
        assert_eq!(body["run_name"], "[]");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        let vars = alias_vars();
        assert_eq!(render_str("costs $$5", &NO_SECRETS, &vars), "costs $5");
        assert_eq!(render_str("$${alias} is ${alias}", &NO_SECRETS, &vars), "${alias} is production");
        assert_eq!(render_str("$$$$", &NO_SECRETS, &vars), "$$");
        assert_eq!(render_str("$$MY_SECRET", &WITH_SECRETS, &vars), "$MY_SECRET");
        assert_eq!(render_str("a$$", &NO_SECRETS, &vars), "a$");
    }

    #[test]
    fn bare_dollar_names_that_are_not_secrets_stay_literal() {
        let vars = alias_vars();
        for text in ["$5", "$HOME", "price: $", "$", "$ 5", "$run_name", "$MY_SECRETS", "{MY_SECRET}"] {
            assert_eq!(render_str(text, &WITH_SECRETS, &vars), text, "{text}");
        }
        assert_eq!(render_str("$MY_SECRET", &NO_SECRETS, &vars), "$MY_SECRET");
    }

    #[test]
    fn unknown_variable_is_an_error_at_its_path() {
        let payload = json!({
            "sections": [{"facts": [{"value": "ok ${alias}"}, {"value": "${evnt_author}"}]}],
            "client_payload": {"text": "${nope} and ${nope2}"},
            "list": ["fine", ["${x}"]]
        });
        let errors = compile_errors(payload, &NO_SECRETS);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["client_payload.text", "client_payload.text", "list[1][0]", "sections[0].facts[1].value"]);
        let typo = &errors[3];
        assert!(typo.message.starts_with("unknown variable `${evnt_author}`"));
        assert!(typo.message.contains("did you mean `${event_author}`?"), "{}", typo.message);
        assert!(errors[0].message.contains("${run_name}"), "{}", errors[0].message);
        assert_eq!(errors[3].to_string(), format!("sections[0].facts[1].value: {}", errors[3].message));
        let root = compile_errors(json!("${nope}"), &NO_SECRETS);
        assert_eq!(root[0].path, "");
        let empty = compile_errors(json!("${}"), &NO_SECRETS);
        assert!(empty[0].message.starts_with("unknown variable `${}`"));
        let no_key = compile_errors(json!("${artifact_metadata.}"), &NO_SECRETS);
        assert!(no_key[0].message.contains("needs a metadata key"));
    }

    #[test]
    fn unknown_variable_mentions_the_secret_name() {
        let errors = compile_errors(json!({"a": "${OTHER_SECRET}"}), &WITH_SECRETS);
        assert!(errors[0].message.contains("the webhook's secret is `$MY_SECRET`"));
        let errors = compile_errors(json!({"a": "${MY_SECRET}"}), &NO_SECRETS);
        assert!(errors[0].message.contains("the webhook has no payload secret"));
    }

    #[test]
    fn unterminated_placeholder_is_an_error() {
        let errors = compile_errors(json!({"text": "run ${run_name"}), &NO_SECRETS);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "text");
        assert!(errors[0].message.starts_with("unterminated `${` at offset 4"));
        assert!(compile_errors(json!(["${"]), &NO_SECRETS)[0].path == "[0]");
        let err = TextTemplate::compile("ends with ${").unwrap_err();
        assert!(err.message.starts_with("unterminated"));
    }

    #[test]
    fn secrets_are_rendered_and_masked() {
        let payload = json!({
            "auth": "Bearer ${ACCESS_TOKEN}",
            "raw": "$ACCESS_TOKEN",
            "sig": "${MY_SECRET}:$MY_SECRET/",
            "who": "${event_author}",
            "n": 3, "ok": true, "none": null
        });
        let template = Template::compile(&payload, &WITH_SECRETS).unwrap();
        assert!(template.uses_secrets());
        assert_eq!(template.secrets_used().into_iter().collect::<Vec<_>>(), ["ACCESS_TOKEN", "MY_SECRET"]);
        let vars = alias_vars();
        assert_eq!(
            template.render(&vars, &secret_values),
            json!({"auth": "Bearer tok-123", "raw": "tok-123", "sig": "s3cr3t:s3cr3t/",
                   "who": "alice", "n": 3, "ok": true, "none": null})
        );
        let masked = template.render_masked(&vars);
        assert_eq!(
            masked,
            json!({"auth": "Bearer ***", "raw": "***", "sig": "***:***/",
                   "who": "alice", "n": 3, "ok": true, "none": null})
        );
        assert!(!masked.to_string().contains("tok-123"));
        // A secret the store cannot answer renders empty rather than as its name.
        assert_eq!(template.render(&vars, &|_| None)["auth"], "Bearer ");
    }

    #[test]
    fn access_token_needs_an_access_token() {
        for text in ["Bearer ${ACCESS_TOKEN}", "Bearer $ACCESS_TOKEN"] {
            let errors = compile_errors(json!({"h": text}), &NO_SECRETS);
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "h");
            assert!(errors[0].message.contains("the webhook has no access token"), "{}", errors[0].message);
        }
        // Escaped, it is text.
        assert_eq!(render_str("$$ACCESS_TOKEN", &NO_SECRETS, &alias_vars()), "$ACCESS_TOKEN");
        // A payload secret that happens to be named ACCESS_TOKEN is still reachable.
        let named = SecretNames { secret: Some(ACCESS_TOKEN), has_access_token: false };
        assert!(Template::compile(&json!("$ACCESS_TOKEN"), &named).is_ok());
    }

    #[test]
    fn a_variable_wins_over_a_secret_of_the_same_name_in_braces() {
        let clash = SecretNames { secret: Some("event_id"), has_access_token: false };
        let template = Template::compile(&json!(["${event_id}", "$event_id"]), &clash).unwrap();
        let body = template.render(&alias_vars(), &|_| Some("SECRET".to_owned()));
        assert_eq!(body, json!(["evt_01JDX3ZQ5K8M2N4P6R8T0V2W4Y", "SECRET"]));
    }

    #[test]
    fn object_keys_and_non_strings_are_literal() {
        let payload = json!({"${alias}": {"$MY_SECRET": 1.5}, "n": [1, null, false]});
        let template = Template::compile(&payload, &WITH_SECRETS).unwrap();
        assert!(!template.uses_secrets());
        assert_eq!(template.render(&alias_vars(), &secret_values), payload);
    }

    #[test]
    fn event_values_are_json_escaped() {
        let mut event = alias_event();
        event["author"] = json!("mallory\", \"admin\": true, \"x\": \"\n\t\\ \u{0} é 🚀");
        event["alias"] = json!("</script>${run_name}");
        let vars = Variables::from_event(
            &event,
            &RenderContext {
                automation_name: "a",
                event_type: "ADD_ARTIFACT_ALIAS",
                metric_name: None,
                metric_value: None,
            },
        );
        let template =
            Template::compile(&json!({"who": "by ${event_author}", "alias": "${alias}"}), &NO_SECRETS).unwrap();
        let body = template.render(&vars, &secret_values);
        let text = serde_json::to_string(&body).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, body);
        assert_eq!(back.as_object().unwrap().len(), 2, "no injected keys: {text}");
        assert_eq!(back["who"], json!(format!("by {}", event["author"].as_str().unwrap())));
        // A value that looks like a placeholder is not expanded again.
        assert_eq!(back["alias"], "</script>${run_name}");
        assert!(text.contains(r#"mallory\", \"admin\""#), "{text}");
        assert!(text.contains(r"\n\t\\ \u0000"), "{text}");
    }

    #[test]
    fn metric_values_render_as_shortest_number_text() {
        let template = Template::compile(&json!({"v": "${metric_name}=${metric_value}"}), &NO_SECRETS).unwrap();
        let event = json!({"id": "e1", "type": "RUN_HISTORY", "team": "t", "project": "p",
                           "run": {"id": "r", "name": "n"}});
        for (value, text) in [(4.0, "loss=4"), (0.1, "loss=0.1"), (f64::NAN, "loss=NaN")] {
            let vars = Variables::from_event(
                &event,
                &RenderContext {
                    automation_name: "a",
                    event_type: "RUN_METRIC",
                    metric_name: Some("loss"),
                    metric_value: Some(value),
                },
            );
            assert_eq!(template.render(&vars, &secret_values)["v"], text);
        }
    }

    #[test]
    fn artifact_metadata_keys_render_as_json_text() {
        let mut event = alias_event();
        event["artifact"]["metadata"] = json!({
            "name": "churn \"v7\"", "auc": 0.91, "epochs": 12,
            "eval": {"f1": 0.8, "classes": ["a", "b"]}
        });
        let vars = Variables::from_event(
            &event,
            &RenderContext {
                automation_name: "a",
                event_type: "ADD_ARTIFACT_ALIAS",
                metric_name: None,
                metric_value: None,
            },
        );
        let payload = json!({
            "s": "${artifact_metadata.name}", "n": "${artifact_metadata.auc}",
            "i": "${artifact_metadata.epochs}", "o": "${artifact_metadata.eval}",
            "nested": "${artifact_metadata.eval.f1}", "missing": "[${artifact_metadata.nope}]"
        });
        let body = Template::compile(&payload, &NO_SECRETS).unwrap().render(&vars, &secret_values);
        assert_eq!(
            body,
            json!({"s": "churn \"v7\"", "n": "0.91", "i": "12",
                   "o": r#"{"classes":["a","b"],"f1":0.8}"#, "nested": "0.8", "missing": "[]"})
        );
    }

    #[test]
    fn text_template_escapes_values_only() {
        let mut event = alias_event();
        event["author"] = json!("<@U123> & co");
        let vars = Variables::from_event(
            &event,
            &RenderContext {
                automation_name: "a",
                event_type: "ADD_ARTIFACT_ALIAS",
                metric_name: None,
                metric_value: None,
            },
        );
        let template = TextTemplate::compile("*<https://x.example|${alias}>* by ${event_author} $HOME $$5").unwrap();
        assert_eq!(
            template.render(&vars, escape_mrkdwn),
            "*<https://x.example|production>* by &lt;@U123&gt; &amp; co $HOME $5"
        );
        assert_eq!(template.render(&vars, |s| s.to_owned()).matches("<@U123>").count(), 1);
    }

    #[test]
    fn text_template_rejects_unknown_variables_and_secrets() {
        let err = TextTemplate::compile("${run_nam} is ${nope}").unwrap_err();
        assert_eq!(err.path, "");
        assert!(err.message.contains("did you mean `${run_name}`?"), "{}", err.message);
        assert!(!err.message.contains("secret"), "{}", err.message);
        for text in ["${ACCESS_TOKEN}", "x $ACCESS_TOKEN"] {
            let err = TextTemplate::compile(text).unwrap_err();
            assert!(err.message.contains("cannot be used in a Slack message"), "{}", err.message);
        }
        assert_eq!(TextTemplate::compile("$MY_SECRET").unwrap().render(&alias_vars(), escape_mrkdwn), "$MY_SECRET");
    }

    #[test]
    fn compile_collects_every_error() {
        let errors = compile_errors(json!({"a": "${x}", "b": ["${y}", "${ACCESS_TOKEN}"], "c": "${z"}), &NO_SECRETS);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "b[0]", "b[1]", "c"]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "\\PC*|\\$\\{[a-z_]{0,12}\\}|\\$[A-Z_]{1,10}|\\$\\$".prop_map(Value::String),
                prop::sample::select(KNOWN_VARIABLES).prop_map(|name| Value::String(format!("x ${{{name}}} y"))),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn rendered_payloads_always_serialize_and_reparse(
                payload in any_json(),
                author in any::<String>(),
                run_name in any::<String>(),
                metric in any::<f64>(),
                secret in any::<String>(),
            ) {
                let names = SecretNames { secret: Some("MY_SECRET"), has_access_token: true };
                let event = json!({"id": "e", "type": "RUN_HISTORY", "team": "t", "project": "p",
                                   "author": author, "run": {"id": "r", "name": run_name}});
                let vars = Variables::from_event(&event, &RenderContext {
                    automation_name: "a", event_type: "RUN_METRIC",
                    metric_name: Some("loss"), metric_value: Some(metric),
                });
                if let Ok(template) = Template::compile(&payload, &names) {
                    for body in [
                        template.render(&vars, &|_| Some(secret.clone())),
                        template.render_masked(&vars),
                    ] {
                        let text = serde_json::to_string(&body).unwrap();
                        let back: Value = serde_json::from_str(&text).unwrap();
                        prop_assert_eq!(back, body);
                    }
                }
            }

            #[test]
            fn compiling_any_text_never_panics(text in "\\PC*|[$\\{\\}a-zA-Z_ ]{0,20}") {
                let _ = TextTemplate::compile(&text);
                let _ = Template::compile(&Value::String(text), &SecretNames::default());
            }

            #[test]
            fn text_without_dollars_renders_unchanged(text in "[^$]*") {
                let template = TextTemplate::compile(&text).unwrap();
                prop_assert_eq!(template.render(&Variables::new(), escape_mrkdwn), text);
            }
        }
    }
}
