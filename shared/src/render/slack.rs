//! The Slack Block Kit message of a Slack action (DESIGN §7), kept within Slack's limits so a
//! long message or a producer's odd URL never turns into an `invalid_blocks` answer:
//!
//! - a `header` block (plain text, ≤ 150 chars) with the severity emoji and the title;
//! - the message as `mrkdwn` `section` blocks of ≤ 3000 chars each, split at a line break or a
//!   space when one is in the second half of the chunk, never inside a `<link|text>` or an
//!   `&amp;`-style entity, and cut with `…` where the block budget ends;
//! - a `context` block with team, project, event type and author;
//! - an `actions` block of link buttons (≤ 25, Slack's limit for one block; text ≤ 75 chars;
//!   URLs that are not http(s), hold whitespace or exceed 3000 chars are left out);
//! - a top-level `text` fallback (notifications, clients without blocks), ≤ 3000 chars.
//!
//! At most 50 blocks in all. Lengths are counted in chars (Unicode scalar values).
//!
//! The title is plain text; the message is mrkdwn as given, so a Slack action's message should
//! be rendered with [`escape_mrkdwn`] applied to its variables (see
//! [`TextTemplate::render`](super::template::TextTemplate::render)) and the title without.

pub use crate::domain::automation::Severity;
use serde_json::{Value, json};

/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a header block's text.
pub const MAX_HEADER_CHARS: usize = 150;
/// Slack's limit on a section block's text.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Slack's limit on a button's text.
pub const MAX_BUTTON_TEXT_CHARS: usize = 75;
/// Slack's limit on a button's URL.
pub const MAX_URL_CHARS: usize = 3000;
/// Slack's limit on elements of one actions block.
pub const MAX_BUTTONS: usize = 25;
/// Slack accepts 40 000; a notification shows a line or two, so more only costs bytes.
const MAX_FALLBACK_CHARS: usize = 3000;
/// Context values are names (team, project, user); longer ones are cut.
const MAX_CONTEXT_VALUE_CHARS: usize = 200;
const ELLIPSIS: char = '…';

impl Severity {
    /// The Slack emoji shortcode shown before the title.
    pub fn emoji(self) -> &'static str {
        match self {
            Severity::Info => ":information_source:",
            Severity::Warn => ":warning:",
            Severity::Error => ":rotating_light:",
        }
    }
}

/// One message, already rendered: `title` is plain text, `message` is mrkdwn.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub severity: Severity,
    pub team: &'a str,
    pub project: &'a str,
    pub event_type: &'a str,
    pub author: &'a str,
    /// (label, url), shown as buttons in this order: ("View run", run.url), ("View artifact",
    /// artifact.url).
    pub links: Vec<(String, String)>,
}

/// The body for a Slack incoming webhook: `{"text": fallback, "blocks": [...]}`.
pub fn build_message(m: &SlackMessage) -> Value {
    let header = header_text(m);
    let context = context_block(m);
    let actions = actions_block(&m.links);
    let reserved = 1 + usize::from(context.is_some()) + usize::from(actions.is_some());

    let mut blocks = Vec::with_capacity(MAX_BLOCKS);
    blocks.push(json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true}
    }));
    for chunk in split_mrkdwn(m.message, MAX_SECTION_CHARS, MAX_BLOCKS - reserved) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": chunk}}));
    }
    blocks.extend(context);
    blocks.extend(actions);

    json!({"text": fallback_text(&header, m.message), "blocks": blocks})
}

/// Escapes the three characters Slack gives a meaning in mrkdwn (`&`, `<`, `>`), so a value
/// cannot open a link or mention (`<!channel>`) or an entity. Nothing else is escaped: Slack
/// asks for exactly these.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

fn header_text(m: &SlackMessage) -> String {
    let title = single_line(m.title);
    let title = if !title.is_empty() {
        title
    } else if !m.event_type.trim().is_empty() {
        single_line(m.event_type)
    } else {
        "Automation".to_owned()
    };
    truncate_plain(&format!("{} {title}", m.severity.emoji()), MAX_HEADER_CHARS)
}

fn context_block(m: &SlackMessage) -> Option<Value> {
    let elements: Vec<Value> =
        [("Team", m.team), ("Project", m.project), ("Event", m.event_type), ("Author", m.author)]
            .into_iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(label, value)| {
                let value = truncate_plain(&single_line(value), MAX_CONTEXT_VALUE_CHARS);
                json!({"type": "mrkdwn", "text": format!("*{label}:* {}", escape_mrkdwn(&value))})
            })
            .collect();
    (!elements.is_empty()).then(|| json!({"type": "context", "elements": elements}))
}

fn actions_block(links: &[(String, String)]) -> Option<Value> {
    let buttons: Vec<Value> = links
        .iter()
        .filter(|(_, url)| is_link_url(url))
        .take(MAX_BUTTONS)
        .enumerate()
        .map(|(index, (label, url))| {
            let label = single_line(label);
            let label = if label.is_empty() { "Open link".to_owned() } else { label };
            json!({
                "type": "button",
                "text": {
                    "type": "plain_text",
                    "text": truncate_plain(&label, MAX_BUTTON_TEXT_CHARS),
                    "emoji": true
                },
                "url": url,
                "action_id": format!("link-{index}")
            })
        })
        .collect();
    (!buttons.is_empty()).then(|| json!({"type": "actions", "elements": buttons}))
}

/// An absolute http(s) URL Slack will take as a button's `url`; anything else (`javascript:`,
/// `slack://`, relative, too long) would make Slack reject the whole message.
fn is_link_url(url: &str) -> bool {
    let after = |scheme: &str| {
        url.get(..scheme.len()).filter(|prefix| prefix.eq_ignore_ascii_case(scheme)).map(|_| &url[scheme.len()..])
    };
    let Some(rest) = after("https://").or_else(|| after("http://")) else {
        return false;
    };
    !rest.is_empty()
        && !rest.starts_with('/')
        && url.chars().count() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn fallback_text(header: &str, message: &str) -> String {
    let mut text = escape_mrkdwn(header);
    if !message.trim().is_empty() {
        text.push('\n');
        text.push_str(message);
    }
    truncate_mrkdwn(&text, MAX_FALLBACK_CHARS)
}

/// Header and button texts hold one line.
fn single_line(s: &str) -> String {
    let replaced: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    replaced.trim().to_owned()
}

/// The byte index just after the first `chars` chars of `s` (`s.len()` if it is shorter).
fn byte_index_after(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn truncate_plain(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out = s[..byte_index_after(s, max_chars - 1)].trim_end().to_owned();
    out.push(ELLIPSIS);
    out
}

fn truncate_mrkdwn(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let end = avoid_breaking_markup(s, byte_index_after(s, max_chars - 1));
    let mut out = s[..end].trim_end().to_owned();
    out.push(ELLIPSIS);
    out
}

/// Splits mrkdwn `text` into at most `max_chunks` non-blank chunks of at most `max_chars` chars;
/// the last one is cut with `…` when the text does not fit.
fn split_mrkdwn(text: &str, max_chars: usize, max_chunks: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while chunks.len() < max_chunks && !rest.trim().is_empty() {
        if rest.chars().count() <= max_chars {
            chunks.push(rest.to_owned());
            break;
        }
        if chunks.len() + 1 == max_chunks {
            chunks.push(truncate_mrkdwn(rest, max_chars));
            break;
        }
        let (end, skip) = split_point(rest, max_chars);
        let chunk = &rest[..end];
        if !chunk.trim().is_empty() {
            chunks.push(chunk.to_owned());
        }
        rest = &rest[end + skip..];
    }
    chunks
}

/// Where to end a chunk of `s` (which is longer than `max_chars`): the byte index of the end
/// and how many bytes of separator to drop after it. Prefers the last line break, then the last
/// space, in the second half of the allowed length.
fn split_point(s: &str, max_chars: usize) -> (usize, usize) {
    let hard = byte_index_after(s, max_chars);
    let lower = byte_index_after(s, max_chars / 2);
    let window = &s[lower..hard];
    let (end, skip) = window.rfind('\n').or_else(|| window.rfind(' ')).map_or((hard, 0), |at| (lower + at, 1));
    let adjusted = avoid_breaking_markup(s, end);
    if adjusted == end { (end, skip) } else { (adjusted, 0) }
}

/// Moves a cut at byte `idx` back to before a `<link|text>` / `<@mention>` or an entity it would
/// split, unless that would leave nothing before the cut.
fn avoid_breaking_markup(s: &str, idx: usize) -> usize {
    let head = &s[..idx];
    if let Some(open) = head.rfind('<')
        && open > 0
        && !head[open..].contains('>')
        && s[idx..].contains('>')
    {
        return open;
    }
    if let Some(amp) = head.rfind('&')
        && amp > 0
        && let Some(entity) = ["&amp;", "&lt;", "&gt;"].into_iter().find(|entity| s[amp..].starts_with(entity))
        && idx < amp + entity.len()
    {
        return amp;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(title: &'a str, text: &'a str, links: Vec<(String, String)>) -> SlackMessage<'a> {
        SlackMessage {
            title,
            message: text,
            severity: Severity::Error,
            team: "ml-team",
            project: "llm-pretrain",
            event_type: "RUN_METRIC",
            author: "bob",
            links,
        }
    }

    fn blocks(body: &Value) -> &Vec<Value> {
        body["blocks"].as_array().unwrap()
    }

    fn sections(body: &Value) -> Vec<String> {
        blocks(body)
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    /// Every limit this module promises, checked on any message it builds.
    fn assert_within_limits(body: &Value) {
        let blocks = blocks(body);
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        assert!(chars(body["text"].as_str().unwrap()) <= MAX_FALLBACK_CHARS);
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "header" => {
                    let text = block["text"]["text"].as_str().unwrap();
                    assert!(!text.is_empty() && chars(text) <= MAX_HEADER_CHARS);
                }
                "section" => {
                    let text = block["text"]["text"].as_str().unwrap();
                    assert!(!text.trim().is_empty() && chars(text) <= MAX_SECTION_CHARS);
                }
                "context" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(!elements.is_empty() && elements.len() <= 10);
                }
                "actions" => {
                    let buttons = block["elements"].as_array().unwrap();
                    assert!(!buttons.is_empty() && buttons.len() <= MAX_BUTTONS);
                    for button in buttons {
                        let text = button["text"]["text"].as_str().unwrap();
                        assert!(!text.is_empty() && chars(text) <= MAX_BUTTON_TEXT_CHARS);
                        let url = button["url"].as_str().unwrap();
                        assert!(url.to_ascii_lowercase().starts_with("http") && chars(url) <= MAX_URL_CHARS);
                    }
                }
                other => panic!("unexpected block {other}"),
            }
        }
    }

    #[test]
    fn slack_message_snapshot() {
        let body = build_message(&SlackMessage {
            title: "Loss diverged",
            message: "*ablation-7* loss 4.5 (threshold 4) &lt;see&gt; <https://wandb.example/r/42|the run>",
            severity: Severity::Error,
            team: "ml-team",
            project: "llm-pretrain",
            event_type: "RUN_METRIC",
            author: "bob",
            links: vec![
                ("View run".to_owned(), "https://wandb.example/ml-team/llm-pretrain/runs/r-42".to_owned()),
                ("Not a link".to_owned(), "javascript:alert(1)".to_owned()),
            ],
        });
        assert_within_limits(&body);
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!("slack_message", body);
        });
    }

    #[test]
    fn escape_mrkdwn_escapes_exactly_ampersand_and_angle_brackets() {
        assert_eq!(
            escape_mrkdwn("<!channel> & <@U1|x> *b* _i_ `c` \"q\""),
            "&lt;!channel&gt; &amp; &lt;@U1|x&gt; *b* _i_ `c` \"q\""
        );
        assert_eq!(escape_mrkdwn("&amp;"), "&amp;amp;");
    }

    #[test]
    fn severity_serializes_in_upper_case_and_picks_the_emoji() {
        for (severity, text, emoji) in [
            (Severity::Info, "\"INFO\"", ":information_source:"),
            (Severity::Warn, "\"WARN\"", ":warning:"),
            (Severity::Error, "\"ERROR\"", ":rotating_light:"),
        ] {
            assert_eq!(serde_json::to_string(&severity).unwrap(), text);
            assert_eq!(serde_json::from_str::<Severity>(text).unwrap(), severity);
            let mut m = message("t", "m", vec![]);
            m.severity = severity;
            let header = &build_message(&m)["blocks"][0];
            assert_eq!(header["type"], "header");
            assert_eq!(header["text"]["text"], format!("{emoji} t"));
        }
        assert!(serde_json::from_str::<Severity>("\"info\"").is_err());
    }

    #[test]
    fn long_titles_are_cut_to_the_header_limit() {
        let title = "é".repeat(400);
        let body = build_message(&message(&title, "m", vec![]));
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(chars(header), MAX_HEADER_CHARS);
        assert!(header.starts_with(":rotating_light: éé") && header.ends_with('…'));
        assert_within_limits(&body);
    }

    #[test]
    fn an_empty_title_falls_back_to_the_event_type_and_newlines_are_flattened() {
        let body = build_message(&message("  ", "", vec![]));
        assert_eq!(body["blocks"][0]["text"]["text"], ":rotating_light: RUN_METRIC");
        let body = build_message(&message("a\nb", "", vec![]));
        assert_eq!(body["blocks"][0]["text"]["text"], ":rotating_light: a b");
        // No message, no section.
        assert!(sections(&body).is_empty());
        assert_eq!(body["text"], ":rotating_light: a b");
    }

    #[test]
    fn a_4000_char_message_is_split_into_two_sections() {
        let text = "x".repeat(4000);
        let body = build_message(&message("t", &text, vec![]));
        let parts = sections(&body);
        assert_eq!(parts.iter().map(|p| chars(p)).collect::<Vec<_>>(), [3000, 1000]);
        assert_eq!(parts.concat(), text);
        assert_within_limits(&body);
    }

    #[test]
    fn splits_prefer_line_breaks_then_spaces_and_keep_multibyte_chars_whole() {
        let line = format!("{}\n", "ü".repeat(99)); // 100 chars
        let text = line.repeat(40); // 4000 chars, 40 lines
        let parts = sections(&build_message(&message("t", &text, vec![])));
        assert_eq!(parts.len(), 2);
        assert!(chars(&parts[0]) <= MAX_SECTION_CHARS);
        assert!(parts[0].ends_with('ü') && parts[1].starts_with('ü'));
        assert_eq!(format!("{}\n{}", parts[0], parts[1]), text);

        let words = "word ".repeat(800); // 4000 chars, no line break
        let parts = sections(&build_message(&message("t", &words, vec![])));
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with("word") && parts[1].starts_with("word"));
        assert_eq!(format!("{} {}", parts[0], parts[1]), words);
    }

    #[test]
    fn splits_never_cut_a_link_or_an_entity() {
        let link = "<https://wandb.example/runs/abc|run abc>";
        // A link straddling the 3000-char boundary, no spaces or newlines to split at before it.
        let text = format!("{}{link}{}", "a".repeat(2990), "b".repeat(500));
        let parts = sections(&build_message(&message("t", &text, vec![])));
        assert_eq!(parts[0], "a".repeat(2990));
        assert!(parts[1].starts_with(link));

        let text = format!("{}&amp;{}", "a".repeat(2998), "b".repeat(500));
        let parts = sections(&build_message(&message("t", &text, vec![])));
        assert_eq!(parts[0], "a".repeat(2998));
        assert!(parts[1].starts_with("&amp;bbb"));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn a_huge_message_is_cut_with_an_ellipsis_within_50_blocks() {
        let text = "y".repeat(200_000);
        let links = vec![("View run".to_owned(), "https://wandb.example/r".to_owned())];
        let body = build_message(&message("t", &text, links));
        assert_within_limits(&body);
        let blocks = blocks(&body);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let parts = sections(&body);
        assert_eq!(parts.len(), MAX_BLOCKS - 3); // header, context, actions
        let last = parts.last().unwrap();
        assert!(last.ends_with('…'));
        assert_eq!(chars(last), MAX_SECTION_CHARS);
        assert_eq!(blocks[MAX_BLOCKS - 2]["type"], "context");
        assert_eq!(blocks[MAX_BLOCKS - 1]["type"], "actions");
        assert!(body["text"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn sixty_links_are_capped_at_one_actions_block() {
        let links: Vec<(String, String)> =
            (0..60).map(|i| (format!("Link {i}"), format!("https://wandb.example/{i}"))).collect();
        let body = build_message(&message("t", &"z".repeat(200_000), links));
        assert_within_limits(&body);
        let actions: Vec<&Value> = blocks(&body).iter().filter(|b| b["type"] == "actions").collect();
        assert_eq!(actions.len(), 1);
        let buttons = actions[0]["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), MAX_BUTTONS);
        assert_eq!(buttons[0]["text"]["text"], "Link 0");
        assert_eq!(buttons[24]["url"], "https://wandb.example/24");
        assert_eq!(buttons[24]["action_id"], "link-24");
    }

    #[test]
    fn only_usable_http_links_become_buttons() {
        let long_url = format!("https://wandb.example/{}", "p".repeat(3000));
        let links = vec![
            ("js".to_owned(), "javascript:alert(1)".to_owned()),
            ("slack".to_owned(), "slack://open".to_owned()),
            ("relative".to_owned(), "/runs/1".to_owned()),
            ("empty".to_owned(), String::new()),
            ("scheme only".to_owned(), "https://".to_owned()),
            ("spaces".to_owned(), "https://x.example/a b".to_owned()),
            ("too long".to_owned(), long_url),
            ("".to_owned(), "HTTPS://Upper.example/ok".to_owned()),
            ("L".repeat(100), "http://plain.example/".to_owned()),
        ];
        let body = build_message(&message("t", "m", links));
        assert_within_limits(&body);
        let buttons = blocks(&body).last().unwrap()["elements"].as_array().unwrap().clone();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["text"]["text"], "Open link");
        assert_eq!(buttons[0]["url"], "HTTPS://Upper.example/ok");
        let label = buttons[1]["text"]["text"].as_str().unwrap();
        assert_eq!(chars(label), MAX_BUTTON_TEXT_CHARS);
        assert!(label.ends_with('…'));

        let none = build_message(&message("t", "m", vec![("x".to_owned(), "ftp://x".to_owned())]));
        assert!(blocks(&none).iter().all(|b| b["type"] != "actions"));
    }

    #[test]
    fn context_escapes_values_and_skips_empty_ones() {
        let mut m = message("t", "m", vec![]);
        m.author = "";
        m.project = "<p&q>";
        let body = build_message(&m);
        let context = blocks(&body).iter().find(|b| b["type"] == "context").unwrap().clone();
        let texts: Vec<&str> =
            context["elements"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["*Team:* ml-team", "*Project:* &lt;p&amp;q&gt;", "*Event:* RUN_METRIC"]);
    }

    #[test]
    fn fallback_text_escapes_the_title_but_not_the_message() {
        let mut m = message("a < b", "*bold* <https://x.example|x>", vec![]);
        m.severity = Severity::Warn;
        assert_eq!(build_message(&m)["text"], ":warning: a &lt; b\n*bold* <https://x.example|x>");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_message_stays_within_slack_limits(
                title in "\\PC{0,300}",
                text in prop_oneof!["\\PC{0,9000}", "[a<>&; \n|]{0,7000}"],
                links in prop::collection::vec(("\\PC{0,100}", "(https?://)?[a-z/. ]{0,40}"), 0..40),
            ) {
                let body = build_message(&SlackMessage {
                    title: &title, message: &text, severity: Severity::Info, team: "t",
                    project: "p", event_type: "RUN_STATE", author: "a", links,
                });
                assert_within_limits(&body);
            }
        }
    }
}
